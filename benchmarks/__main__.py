"""python -m benchmarks [--quick]: run the benchmarks and print Markdown tables."""

from __future__ import annotations

import argparse
import sys

from . import locate, scale
from .timing import machine


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test, not a measurement")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks{' --quick' if args.quick else ''}\n")
    print("### Error location: value_and_grad of the notes' function, with / without the try block\n")
    print("\n".join(locate.run(args.quick)))
    print("\n### Scale: generation time and module size against stages (named-stage file)\n")
    print("\n".join(scale.run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

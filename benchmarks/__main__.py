"""python -m benchmarks [--quick]: run the benchmarks and print Markdown tables."""

from __future__ import annotations

import argparse
import sys
import time

from . import (
    arrays,
    check,
    compiled,
    dask_bench,
    entry,
    growth,
    locate,
    loops,
    recurrence,
    scalar,
    scale,
    second,
    special,
    step,
)
from .peers import threads, versions
from .timing import machine

SECTIONS = (
    "scalar",
    "growth",
    "arrays",
    "step",
    "compiled",
    "loops",
    "recurrence",
    "locate",
    "entry",
    "scale",
    "check",
    "second",
    "dask",
    "special",
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test, not a measurement")
    parser.add_argument(
        "--only",
        metavar="A,B",
        default=",".join(SECTIONS),
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; the sections are {', '.join(SECTIONS)}")
    start = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    print(f"threads: {threads()}")
    print(f"command: python -m benchmarks{' --quick' if args.quick else ''}\n")
    headlines = []
    if "scalar" in only:
        for number, name, title in (
            (1, "notes", "the notes' function at (3, -4)"),
            (2, "neuron", "the 2-D sigmoid neuron at w = (2, -3, -3), x = (-1, -2)"),
        ):
            print(f"### Workload {number}: {title}, value and gradient per call\n")
            lines, figures = scalar.run(name, args.quick)
            print("\n".join(lines) + "\n")
            rel = figures["ratios"]
            headlines.append(
                f"workload {number}: stagegen compact {rel['stagegen compact'][0]:.2f}×, "
                f"seed {rel['stagegen seed'][0]:.2f}× the hand listing, fastest peer {best_peer(rel)}; "
                f"(value + gradient) / value {figures['cheap']['compact'][0]:.2f} (compact)"
            )
    if "growth" in only:
        print("### Workload 3: growth, f_n = the notes' function composed n times\n")
        lines, figures = growth.run(args.quick)
        print("\n".join(lines) + "\n")
        e = figures["exponents"]
        headlines.append(
            "workload 3: stagegen compact generation time ~ n^"
            f"{e.get('stagegen compact, generation time', float('nan')):.2f}, "
            f"module chars ~ n^{e.get('stagegen compact, module chars', float('nan')):.2f}"
        )
    if "arrays" in only:
        print("### Workloads 4 and 5: arrays\n")
        lines, figures = arrays.run(args.quick)
        print("\n".join(lines) + "\n")
        alone = figures["elementwise alone"].get("stagegen numpy compact")
        for number, key in ((4, "elementwise"), (5, "matrix")):
            rel = figures[key]
            ours = rel.get("stagegen numpy compact")
            headlines.append(
                f"workload {number}: stagegen numpy "
                + (f"{ours[0]:.2f}× hand NumPy" if ours else "not available")
                + (f" ({alone[0]:.2f}× in a NumPy-only process)" if number == 4 and alone else "")
                + f", fastest peer {best_peer(rel)}"
            )
    if "step" in only:
        print("### Workload 6: a two-layer net's training step (value and gradients)\n")
        lines, rel = step.run(args.quick)
        print("\n".join(lines) + "\n")
        ours = rel.get("stagegen numpy compact")
        headlines.append(
            "workload 6: stagegen numpy "
            + (f"{ours[0]:.2f}× hand NumPy" if ours else "not available")
            + f", fastest peer {best_peer(rel)}"
        )
    if "compiled" in only:
        print("### Compiled: the numba backend's compile time and cache (the notes' function)\n")
        print("\n".join(compiled.run(args.quick)) + "\n")
    if "loops" in only:
        print("### The numba backend's loops: forward + backward against value_and_grad; its cache\n")
        lines, rel = loops.run(args.quick)
        print("\n".join(lines) + "\n")
        pair, fused = rel.get("stagegen numba, forward + backward"), rel.get("stagegen numba, value_and_grad")
        if pair and fused:
            headlines.append(
                f"numba loops: forward + backward {pair[0]:.2f}×, value_and_grad {fused[0]:.2f}× hand NumPy"
            )
    if "recurrence" in only:
        print("### The 64-step recurrence: per call against CasADi, compile time against JAX\n")
        lines, rel = recurrence.run(args.quick)
        print("\n".join(lines) + "\n")
        ours, casadi = rel.get("stagegen numba compact"), rel.get("casadi SX Function")
        if ours and casadi:
            headlines.append(f"recurrence: stagegen numba {ours[0] / casadi[0]:.2f}× casadi SX Function")
    if "locate" in only:
        print("### Error location: value_and_grad of the notes' function, with / without the try block\n")
        print("\n".join(locate.run(args.quick)) + "\n")
    if "entry" in only:
        print("### Entry checks: value_and_grad with / without the checks of shapes and index inputs\n")
        print("\n".join(entry.run(args.quick)) + "\n")
    if "scale" in only:
        print("### Scale: generation time and module size against stages (named-stage file)\n")
        print("\n".join(scale.run(args.quick)) + "\n")
    if "check" in only:
        print(f"### --check: time against stages ({check.POINTS} points)\n")
        print("\n".join(check.run(args.quick)) + "\n")
    if "second" in only:
        print("### Second order and Jacobians: hvp of the notes' function, the arm's Jacobian\n")
        lines, figures = second.run(args.quick)
        print("\n".join(lines) + "\n")
        headlines.append(f"hvp / value_and_grad {figures['hvp / value_and_grad']:.2f} (compact)")
    if "dask" in only:
        print("### The array backend on Dask: a least-squares gradient over 10^7 elements\n")
        print("\n".join(dask_bench.run(args.quick)) + "\n")
    if "special" in only:
        print("### erf, erfc, lgamma, digamma on 10^6 elements: SciPy and the fallback without it\n")
        print("\n".join(special.run(args.quick)) + "\n")
    if headlines:
        print("Headlines: " + "; ".join(headlines) + ".")
    print(f"total time: {time.perf_counter() - start:.0f} s")
    return 0


def best_peer(rel: dict) -> str:
    """The timed peer (not stagegen, not a reference) with the lowest median ratio."""
    peers = {
        name: r[0]
        for name, r in rel.items()
        if not name.startswith(("stagegen", "hand", "value only")) and name != "hand listing"
    }
    if not peers:
        return "none installed"
    name = min(peers, key=peers.get)
    return f"{name} {peers[name]:.2f}×"


if __name__ == "__main__":
    sys.exit(main())

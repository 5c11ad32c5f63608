"""The ``stagegen`` command: read a file, generate, report.

Exit status: 0 ok, 1 a failed ``--check``, 2 bad input or usage (one located
message on stderr, no traceback), 3 an internal error (a stagegen bug).
Output files are written atomically; on any error the target is not touched.
A file name is shown (in messages and in the module) as `files.shown` writes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from . import __version__
from .diagram import Diagram, draw, format_of
from .errors import ParseError, Span, StagegenError, UsageError
from .files import check_target, same_file, shown, write_atomically
from .options import add_arguments
from .parse import MAX_SOURCE_CHARS
from .pipeline import build
from .trace import evaluate, parse_point

# A larger file is refused before it is read (some 400,000 stages of named
# lines, more than generate in minutes); standard input is read up to it.
MAX_FILE_BYTES = MAX_SOURCE_CHARS
# --check evaluates every stage at 50 digits at each point: 100,000 points of the 8-stage
# examples/notes.txt take about a minute, and the time grows with the number of stages
MAX_POINTS = 100_000

EPILOG = """\
examples:
  stagegen examples/notes.txt                 print the generated module
  stagegen examples/notes.txt -o notes_grad.py
  stagegen examples/neuron.txt --wrt w0,w1,w2 gradients of the weights only
  stagegen examples/notes.txt --style compact fold (1) * dv and plain adjoint copies
  stagegen examples/neuron.txt --gates fine   keep the sigmoid's primitive circuit
  stagegen examples/notes.txt --check         compare with SymPy and finite differences
  stagegen examples/arrays/softmax.txt --backend numpy
                                              NumPy arrays; matrix gradients by dimension analysis
  stagegen examples/notes.txt --trace x=3,y=-4
                                              every stage's value, local gradients and gradient
  stagegen examples/notes.txt --diagram notes.svg --at x=3,y=-4
                                              the circuit, every wire's value and gradient on it
  echo 'f = x * exp(-y)' | stagegen -         read the expression from standard input

exit status: 0 ok, 1 --check found a mismatch, 2 bad input or usage, 3 internal error
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2
        self.exit(2, f"stagegen: error: {message}\n  (see stagegen --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stagegen",
        description="Generate a Python module with a staged forward pass and a "
        "hand-style reverse pass (backprop) for the expression in FILE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="expression file ('-' reads standard input)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.py",
        help="write the module to this file (atomically) " "instead of standard output",
    )
    add_arguments(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="check values, gradients and every stage's "
        "adjoint against SymPy (mpmath, 50 digits) and finite differences; print a table",
    )
    p.add_argument("--points", type=int, default=20, metavar="N", help="random points for --check (20)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed for --check (0)")
    p.add_argument(
        "--trace",
        metavar="X=V,...",
        help="print a table of every stage at this point (a value for each input): its "
        "value, its local gradients and its gradient, from running the generated code",
    )
    p.add_argument(
        "--diagram",
        metavar="FILE.svg",
        help="draw the circuit (one node per stage) to this file, atomically; the format follows "
        "the extension: .svg, .png, .pdf (these run Graphviz's dot) or .dot (DOT text)",
    )
    p.add_argument(
        "--at",
        metavar="X=V,...",
        help="with --diagram: label every wire with its value and gradient at this point (a value "
        "for each input), from running the generated code",
    )
    p.add_argument("--dump", choices=("lower",), help="print an intermediate form instead of the module")
    p.add_argument("--version", action="version", version=f"stagegen {__version__}")
    return p


def read_source(path: str) -> str:
    """The text of `path` ('-': standard input), or a located error."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        name = "<stdin>"
    else:
        name = shown(path)
        try:
            if os.path.isdir(path):
                raise ParseError("is a directory, not an expression file", file=name)
            _check_size(os.path.getsize(path), name)
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)  # a device or a growing file: bounded too
        except FileNotFoundError:
            raise ParseError("no such file", file=name) from None
        except PermissionError:
            raise ParseError("permission denied: cannot read the file", file=name) from None
        except OSError as exc:
            raise ParseError(f"cannot read the file: {exc.strerror or exc}", file=name) from None
    _check_size(len(data), name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\0" in data:
        raise ParseError("this is a binary file (it contains NUL bytes), not an expression file", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        line_text = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        col = len(data[start : exc.start].decode("utf-8", "replace")) + 1
        span = Span(name, data.count(b"\n", 0, exc.start) + 1, col, col + 1, line_text)
        raise ParseError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x}", span, hint="save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_size(size: int, name: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ParseError(
            f"the file is larger than {MAX_FILE_BYTES:,} bytes, the limit for an expression file",
            file=name,
            hint="split the model into smaller files, or generate from SymPy objects through the API",
        )


def run(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.points < 1:
        raise UsageError("--points must be at least 1")
    if args.points > MAX_POINTS:
        raise UsageError(
            f"--points must be at most {MAX_POINTS:,}",
            hint="a few hundred points make a thorough check; --seed draws other ones",
        )
    source = None if args.file == "-" else args.file
    # real paths, not the names as typed: a symbolic link, a linked folder or a hard link
    # must not let one write replace the input or the other output
    if args.output and source is not None and same_file(source, args.output):
        raise UsageError("the output file is the input file; choose another -o")
    image_format = None
    if args.diagram is not None:
        image_format = format_of(shown(args.diagram), "--diagram")
        if any(path and same_file(path, args.diagram) for path in (source, args.output)):
            raise UsageError("the --diagram file is the input file or the -o file; choose another")
    elif args.at is not None:
        raise UsageError("--at goes with --diagram, e.g. --diagram circuit.svg --at x=3,y=-4")
    for target in (args.output, args.diagram):  # refused before the work, not after it
        if target:
            check_target(target)
    text = read_source(args.file)
    filename = "<stdin>" if source is None else shown(source)
    result = build(
        text, filename=filename, wrt=args.wrt, backend=args.backend, style=args.style, gates=args.gates
    )
    for name in result.graph.dropped:
        print(
            f"{filename}: warning: stage '{name}' does not reach the output and is not emitted",
            file=sys.stderr,
        )
    if args.dump == "lower":
        print(result.graph.dump())
        return 0
    traced = None
    if args.trace is not None:
        traced = evaluate(result, parse_point(args.trace, "--trace", filename), "--trace")
    image = None
    if image_format is not None:
        point = None
        if args.at is not None:
            point = evaluate(result, parse_point(args.at, "--at", filename), "--at")
        image = Diagram(draw(result, point), point).image(image_format)
    status = 0
    if args.check:
        from .verify import verify

        report = verify(result, points=args.points, seed=args.seed)
        print(report.table())
        status = 0 if report.ok else 1
    if traced is not None:
        print(traced.table())
    if args.output:
        write_atomically(args.output, result.text)
    if image is not None:
        write_atomically(args.diagram, image)
    if not (args.output or args.check or args.trace is not None or image is not None):
        sys.stdout.write(result.text)
    return status


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except StagegenError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a stagegen bug, not the user's
        print(
            f"stagegen: internal error: {type(exc).__name__}: {exc}\n"
            "  this is a bug in stagegen; please report it with the input file",
            file=sys.stderr,
        )
        if os.environ.get("STAGEGEN_DEBUG"):
            traceback.print_exc()
        return 3


if __name__ == "__main__":
    sys.exit(main())

"""The ``stagegen`` command: read a file, generate, report.

Exit status: 0 ok, 1 a failed ``--check``, 2 bad input or usage (one located
message on stderr, no traceback), 3 an internal error (a stagegen bug).
Output files are written atomically; on any error the target is not touched.
A file name is shown (in messages and in the module) as `files.shown` writes it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
import traceback
import zipfile
import zlib
from dataclasses import fields

from . import __version__
from .diagram import Diagram, draw, format_of
from .errors import ParseError, StagegenError, UnsupportedError, UsageError
from .files import check_target, generated_docstring, read_source, same_file, shown, write_atomically
from .options import Options, add_arguments, flag
from .pipeline import build
from .trace import evaluate, parse_point
from .verify import check_point

# --check evaluates every stage at 50 digits at each point: 100,000 points of the 8-stage
# examples/notes.txt take about a minute, and the time grows with the number of stages
MAX_POINTS = 100_000
# the generation options (Options' fields) are None when not given, so that a generated module given
# as FILE can refuse them; build has their defaults
GENERATION = tuple(option.name for option in fields(Options))
# the options that make a module, by their argparse names: a generated module is checked as it is
GENERATING = {
    "output": "-o",
    **{name: flag(name) for name in GENERATION},
    "trace": "--trace",
    "diagram": "--diagram",
    "dump": "--dump",
}

EPILOG = """\
examples:
  stagegen examples/notes.txt                 print the generated module
  stagegen examples/notes.txt -o notes_grad.py
  stagegen examples/neuron.txt --wrt w0,w1,w2 gradients of the weights only
  stagegen examples/notes.txt --style compact fold (1) * dv and plain adjoint copies
  stagegen examples/neuron.txt --gates fine   keep the sigmoid's primitive circuit
  stagegen examples/notes.txt --check         compare with SymPy and finite differences
  stagegen examples/notes.txt --domain x=0:1,y=-1:1
                                              --check with x drawn from [0, 1], y from [-1, 1]
  stagegen examples/notes.txt --check-at x=3,y=-4 --check-at x=0,y=0
                                              --check at exactly these two points
  stagegen examples/arrays/matmul.txt --backend numpy --check-at point.npz
                                              --check at arrays saved by numpy.savez, by input name
  stagegen notes_grad.py --check              check a generated module as it is written
  stagegen examples/arrays/softmax.txt --backend numpy
                                              NumPy arrays; matrix gradients by dimension analysis
  stagegen examples/notes.txt --trace x=3,y=-4
                                              every stage's value, local gradients and gradient
  stagegen examples/notes.txt --diagram notes.svg --at x=3,y=-4
                                              the circuit, every wire's value and gradient on it
  stagegen --check-fresh generated/*.py       is each module what its source generates now?
  echo 'f = x * exp(-y)' | stagegen -         read the expression from standard input

exit status: 0 ok, 1 --check found a mismatch, 2 bad input or usage, 3 internal error
  (--check-fresh: 1 when a module is stale)
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
    p.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="expression file ('-' reads standard input); with --check, also a module stagegen generated",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.py",
        help="write the module to this file (atomically) " "instead of standard output",
    )
    add_arguments(p)
    p.set_defaults(**dict.fromkeys(GENERATION))  # None: not given
    p.add_argument(
        "--check",
        action="store_true",
        help="check values, gradients and every stage's "
        "adjoint against SymPy (mpmath, 50 digits) and finite differences; print a table",
    )
    p.add_argument(
        "--domain",
        action="append",
        metavar="X=LO:HI,...",
        help="--check with these inputs drawn from these closed ranges, instead of their declared "
        "ranges or [-3, 3]; repeatable (implies --check)",
    )
    p.add_argument(
        "--check-at",
        action="append",
        metavar="X=V,...|POINT.npz",
        help="--check at exactly this point instead of random ones; repeatable, one point each; "
        "POINT.npz: one array per input, by name (numpy.savez), for array inputs (implies --check)",
    )
    p.add_argument(
        "--check-fresh",
        nargs="+",
        metavar="MODULE.py",
        help="check that each generated module is what its recorded source and options generate "
        "now (its source file unchanged, its text as stagegen writes it); exit 1 naming each one "
        "that is not",
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


def run(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.check_fresh:
        return _check_fresh(args)
    if args.file is None:  # optional for --check-fresh only
        p.error("the following arguments are required: FILE")
    _check_options(args)
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
    recorded = args.output  # the file the module names as its place
    for target in (args.output, args.diagram):  # refused before the work, not after it
        if target:
            status = check_target(target)
            if target is args.output and status is not None and stat.S_ISCHR(status.st_mode):
                recorded = None  # a device (/dev/stdout) is no place
    text = read_source(args.file)
    filename = "<stdin>" if source is None else shown(source)
    docstring = generated_docstring(text) if _python_file(source) and os.path.isfile(source) else None
    if docstring is not None:
        return _check_module(args, source, filename, docstring)
    result = _build(text, filename, args, recorded)
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
    status = _check(result, args, filename, result) if args.check else 0
    if traced is not None:
        print(traced.table())
    if args.output:
        write_atomically(args.output, result.text)
    if image is not None:
        write_atomically(args.diagram, image)
    if not (args.output or args.check or args.trace is not None or image is not None):
        sys.stdout.write(result.text)
    return status


def _check_fresh(args: argparse.Namespace) -> int:
    """--check-fresh: a line per module, fresh or why not; 1 if one is stale, 2 if one is no module."""
    from .fresh import differences

    defaults = vars(parser().parse_args([]))
    others = [name for name, value in vars(args).items() if name != "check_fresh" and value != defaults[name]]
    if others:
        raise UsageError(
            "--check-fresh takes only the modules to check",
            hint="e.g. stagegen --check-fresh generated/*.py",
        )
    status = 0
    for path in args.check_fresh:
        try:
            reasons = differences(path)
        except StagegenError as exc:
            print(exc.render(), file=sys.stderr)
            status = 2
            continue
        if reasons:
            print(f"{shown(path)}: stale: " + "; ".join(reasons))
            status = max(status, 1)
        else:
            print(f"{shown(path)}: fresh")
    return status


def _check_options(args: argparse.Namespace) -> None:
    """--points in range; --domain and --check-at imply --check, and exclude each other."""
    if args.points < 1:
        raise UsageError("--points must be at least 1")
    if args.points > MAX_POINTS:
        raise UsageError(
            f"--points must be at most {MAX_POINTS:,}",
            hint="a few hundred points make a thorough check; --seed draws other ones",
        )
    if args.domain and args.check_at:
        raise UsageError(
            "--domain and --check-at do not go together: the points given are checked where they are",
            hint="drop --domain, or drop --check-at to check at random points drawn from the ranges",
        )
    args.check = args.check or bool(args.domain or args.check_at)


def _python_file(source: str | None) -> bool:
    return source is not None and source.endswith(".py")


def _build(text: str, filename: str, args: argparse.Namespace, output: str | None):
    """The Build of an expression file with the generation options given; a .py file that is not a
    module stagegen generated is read as one, and its errors say so."""
    options = {name: getattr(args, name) for name in GENERATION if getattr(args, name) is not None}
    try:
        return build(text, filename=filename, output=output, **options)
    except (ParseError, UnsupportedError) as exc:
        if not _python_file(args.file):
            raise
        read_as = f"{filename} is not a module stagegen generated, so it is read as an expression file"
        hint = f"{read_as}; {exc.hint}" if exc.hint else read_as
        raise type(exc)(exc.message, exc.span, hint=hint, file=exc.file) from None


def _check_module(args: argparse.Namespace, path: str, name: str, docstring: str) -> int:
    """--check of a module stagegen generated (FILE is MODULE.py), as it is written."""
    regenerate = "generate again from its source file (its 'Generated by:' line gives the command)"
    if not args.check:
        raise UsageError(
            "this is a module generated by stagegen, not an expression file",
            file=name,
            hint=f"check it with: stagegen {shlex.quote(name)} --check; or {regenerate}",
        )
    given = [option for dest, option in GENERATING.items() if getattr(args, dest) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot go with a generated module: it is checked as it is "
            "(it records its own options)",
            file=name,
            hint=f"drop {', '.join(given)}; to change the module, {regenerate}",
        )
    program = _recorded_build(docstring) if args.check_at else None
    return _check(path, args, name, program)


def _recorded_build(docstring: str):
    """The Build a generated module's docstring records: its source, file name and options (read as
    `verify` reads them, without running the module)."""
    from .fresh import record

    return record(docstring).build()


def _check(target, args: argparse.Namespace, filename: str, program) -> int:
    """--check of `target` (a Build, or a generated module's path) at the points --domain or
    --check-at aim it; prints the table and returns the exit status (0 ok, 1 a mismatch). `program`:
    the Build whose inputs the points given are for (None when none are given)."""
    from .verify import verify

    domain = None
    if args.domain:  # one text, so that a name given in two --domain options is given twice
        domain = parse_point(
            ",".join(args.domain), "--domain", filename, _range, "a range lo:hi", "x=5:10,y=-1:1"
        )
    at = None
    if args.check_at:
        at = [_given_point(text, program, filename) for text in args.check_at]
    report = verify(target, points=args.points, seed=args.seed, domain=domain, at=at)
    print(report.table())
    return 0 if report.ok else 1


def _range(text: str) -> tuple[float, float]:
    """'lo:hi' as (lo, hi); ValueError for other text (verify checks that lo < hi)."""
    lo, hi = text.split(":")
    return float(lo), float(hi)


def _given_point(text: str, program, filename: str) -> dict:
    """One --check-at point, X=V,... or a .npz file: a value of the right shape for each input."""
    if text.endswith(".npz"):
        point = _npz_point(text, program)
        hint = _savez(program, shown(text))
        check_point(point, program.graph, "--check-at", shown(text), hint, hint)
    else:
        point = parse_point(text, "--check-at", filename)
        names = ",".join(f"{i.name}=..." for i in program.graph.inputs)
        hint = f"give every input a value: --check-at {names}"
        npz = f"{_savez(program, 'point.npz')}; then --check-at point.npz"
        check_point(point, program.graph, f"--check-at {text}", filename, hint, npz)
    return point


def _npz_point(path: str, program) -> dict:
    """The point a .npz file holds: each input's array by its name (0-d for a number), never pickled."""
    name = shown(path)
    try:
        arrays = _read_npz(path)
    except FileNotFoundError:
        raise UsageError("--check-at: no such file", file=name) from None
    except OSError as exc:
        raise UsageError(f"--check-at: cannot read the file: {exc.strerror or exc}", file=name) from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        arrays = None
    if arrays is None:
        raise UsageError(
            "--check-at: not a NumPy .npz file of numeric arrays", file=name, hint=_savez(program, name)
        )
    for key, array in arrays.items():
        if array.dtype.kind not in "iuf":
            raise UsageError(
                f"--check-at: {key} holds {array.dtype} values, not real numbers",
                file=name,
                hint=_savez(program, name),
            )
    return {key: float(array) if array.ndim == 0 else array for key, array in arrays.items()}


def _read_npz(path: str) -> dict | None:
    """The arrays of a .npz file by name; None for a file of one array (.npy)."""
    import numpy as np

    loaded = np.load(path, allow_pickle=False)  # a file given is data: never unpickled, never run
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return None
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def _savez(program, name: str) -> str:
    """How to write a point as a .npz file, for `program`'s inputs."""
    arrays = ", ".join(f"{i.name}=..." for i in program.graph.inputs)
    return f"save one array per input, by name: numpy.savez({name!r}, {arrays})"


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

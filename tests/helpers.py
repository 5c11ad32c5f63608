"""Small helpers shared by tests: examples on disk, instrumented runs, listings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import stagegen
from stagegen.modules import instrumented as instrumented_module

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

LINE = re.compile(r"^\s+(?P<target>\w+) (?P<op>\+?=|-=) (?P<rhs>.*?)  # \((?P<stage>\d+)\)(; .*)?$")


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def instrumented(source: str, **options):
    """A module whose value_and_grad returns locals(): every value and adjoint by name."""
    return instrumented_module(stagegen.generate(source, **options), "<instrumented>")


def function_lines(text: str, function: str) -> list[str]:
    """The numbered stage lines (``... # (k)``) of one function of a generated module."""
    body = text.split(f"\ndef {function}(", 1)[1].split("\n\n\n", 1)[0]
    return [line for line in body.splitlines()[1:] if re.search(r"  # \(\d+\)", line)]


def adjoint_lines(text: str, function: str = "backward") -> list[tuple[str, str, str, int]]:
    """(target, operator, right-hand side, stage number) of each adjoint line."""
    found = []
    for line in function_lines(text, function):
        m = LINE.match(line)
        if m:
            found.append((m["target"], m["op"], m["rhs"], int(m["stage"])))
    return found


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of ``stagegen argv`` run in this process."""
    from stagegen.__main__ import main

    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_subprocess(argv, folder: Path, stdin: bytes | None = None):
    """(exit status, stdout, stderr) of ``python -m stagegen argv`` in a new process."""
    env = dict(os.environ)
    env.pop("STAGEGEN_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "stagegen", *argv],
        cwd=folder,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
    )
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def scale_backward_line(monkeypatch) -> None:
    """Make the generated module's backward line `dq = (z) * dout  # (2)` (of
    examples' (x + y) * z circuit) give ten times its gradient, in every
    module stagegen.trace renders: whatever reads the module's numbers shows it."""
    import importlib

    trace = importlib.import_module("stagegen.trace")  # the module; stagegen.trace is its function
    real = trace.instrumented

    def edited(text, filename):
        assert "dq = (z) * dout  # (2)" in text
        return real(text.replace("dq = (z) * dout  # (2)", "dq = (z) * dout * 10.0  # (2)"), filename)

    monkeypatch.setattr(trace, "instrumented", edited)


def release_errors(text: str) -> list[str]:
    """What is wrong with the `del` statements of a generated module, read from
    its syntax alone: a name read after it was released (and not bound again),
    or a released name the function never bound (an argument, a parameter)."""
    import ast

    errors = []
    for function in ast.parse(text).body:
        if not isinstance(function, ast.FunctionDef) or function.name.startswith("_"):
            continue
        bound, released = set(), set()
        for statement in _flat(function.body):
            loads = [
                n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            ]
            if isinstance(statement, ast.AugAssign):
                loads.append(statement.target.id)
            errors += [f"{function.name}: {n} read after del" for n in loads if n in released]
            if isinstance(statement, ast.Delete):  # del a, b; black writes a long one del (a, b, ...)
                for target in statement.targets:
                    for name in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if name.id not in bound:
                            errors.append(f"{function.name}: del {name.id}, which it did not bind")
                        released.add(name.id)
            for n in ast.walk(statement):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    bound.add(n.id)
                    released.discard(n.id)
    return errors


def _flat(statements):
    """Statements in execution order, the bodies of `try` blocks included."""
    import ast

    for statement in statements:
        if isinstance(statement, ast.Try):
            yield from _flat(statement.body)
        else:
            yield statement


def sample_arguments(build, rng) -> list:
    """Values for a program's inputs: declared sizes 3 (names; 4*H is 12), else (4,)
    arrays, in their declared ranges (else [-2, 2]); an index input integers in
    the range of the axes it indexes."""
    from stagegen.differentiate import index_bounds
    from stagegen.shapes import linear, size_value

    bounds = index_bounds(build.graph)
    sizes = {linear(d)[1]: 3 for i in build.graph.inputs for d in (i.shape or ()) if not isinstance(d, int)}
    args = []
    for k, i in enumerate(build.graph.inputs):
        shape = (4,) if i.shape is None else tuple(size_value(d, sizes) for d in i.shape)
        if i.integer:
            size = min(size_value(d, sizes) for d in bounds[k])
            args.append(rng.integers(-size, size, shape))
            continue
        lo, hi = (i.domain.lo, i.domain.hi) if i.domain else (-2.0, 2.0)
        args.append(rng.uniform(lo, hi, shape))
    return args


def leaves(result) -> list:
    """A module's result (nested tuples of arrays) as a flat list of its arrays."""
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in leaves(item)]
    return [result]

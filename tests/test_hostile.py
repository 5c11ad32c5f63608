"""Hostile and malformed input files: refused cleanly, nothing run, nothing written.

For every case: exit status 2; on stderr exactly one ``FILE:LINE:COL: error:``
or ``FILE: error:`` line, then at most three indented lines (source, caret,
hint); no traceback; nothing on stdout; no marker file created (nothing in the
input ran); the ``-o`` target byte for byte as it was when it existed, and not
created when it did not. tests/test_errors.py holds the exact messages of many
of these; this file holds the contract over a wider table, and the cases that
need a large or special file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import stagegen
from helpers import ROOT, run_cli, run_subprocess

OLD = b"# an older generated module\r\nINPUTS = ()\n\x00 not even text\n"
FIRST_LINE = re.compile(r"^[^\n:]+(:\d+:\d+)?: error: \S[^\n]*$")

HOSTILE = {
    # code execution and escape attempts
    "import-system": "f = __import__('os').system('touch canary')\n",
    "lambda-call": "f = (lambda: __import__('os').system('touch canary'))()\n",
    "exec": "f = exec(\"open('canary', 'w')\") * x\n",
    "eval": "f = eval('__import__(\"os\")') * x\n",
    "open": "f = open('canary', 'w') * x\n",
    "subclasses": "f = x.__class__.__bases__[0].__subclasses__()\n",
    "globals-subscript": "f = globals()['__builtins__'] * x\n",
    "comprehension": "f = [open('canary', 'w') for c in 'ab']\n",
    "dunder-name": "f = __builtins__ * x\n",
    "dunder-stage": "__class__ = x + 1\nf = __class__ * 2\n",
    "dunder-declaration": "__init__: scalar\nf = __init__ * 2\n",
    "import": "import os\nf = x\n",
    "from-import": "from os import system\nf = system * x\n",
    "def": "def f(x):\n    return open('canary', 'w')\n",
    "attribute": "f = x.real * 2\n",
    "subscript": "f = x[0] * 2\n",
    "string": "f = x * 'touch canary'\n",
    "walrus": "f = (y := x) * 2\n",
    "helper-name": "f = log(_locate) * 2\n",
    # numbers
    "power-of-googol": "f = x**10**100\n",
    "ten-tower": "f = 10**10**10 * x\n",
    "nine-tower": "f = x * 9**9**9**9\n",
    "negative-googol-exponent": "f = x ** -(10**400)\n",
    "integer-5000-digits": "f = x * " + "9" * 5000 + "\n",
    "hex-4000-bits": "f = x * 0x" + "f" * 1000 + "\n",
    "float-inf-literal": "f = x * 1e999\n",
    "float-minus-inf": "f = x * -1e999\n",
    "inf-minus-inf": "f = x * (1e999 - 1e999)\n",
    "float-call-nan": "f = x * float('nan')\n",
    "float-call-inf": "f = x * float('inf')\n",
    "complex": "f = x * 1j\n",
    "ellipsis": "f = x * ...\n",
    "exp-overflow": "f = exp(1000) * x\n",
    # keywords as names
    "keyword-stage": "lambda = x + 1\nf = lambda * 2\n",
    "keyword-operand": "f = x + def\n",
    "keyword-declaration": "class: scalar\nf = class * 2\n",
    "none-stage": "None = x + 1\n",
    "true-operand": "f = x * True\n",
    # text that is not a program
    "empty": "",
    "blank-lines": "\n\n   \n",
    "only-comments": "# nothing here\n",
    "indented": "  f = x\n",
    "unclosed": "f = (x + y\n",
    "literal-glued-to-keyword": "f = 1if x else y\n",
    "deep-parentheses": "f = " + "(" * 1000 + "x" + ")" * 1000 + "\n",
    # bytes that are not text
    "not-utf8": b"f = x * y\xff\n",
    "latin1-theta": "\u03b8 = x\nf = \u00e9 * 2\n".encode("latin-1", "replace"),
    "nul": b"f = x\x00 * y\n",
    "binary": bytes(range(256)) * 4,
    "elf-header": b"\x7fELF\x02\x01\x01" + bytes(57),
    "utf16": "f = x * y\n".encode("utf-16"),
}


def invoke(folder: Path, capsys, content, target_exists: bool, argv=None):
    path = folder / "in.txt"
    if content is not None:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = folder / "OUT.py"
    if target_exists:
        out.write_bytes(OLD)
    status, stdout, stderr = run_cli(argv or ["in.txt", "-o", "OUT.py"], capsys)
    return status, stdout, stderr


def assert_refused(result, folder: Path, target_exists: bool) -> None:
    status, stdout, stderr = result
    assert status == 2, stderr
    assert stdout == ""
    assert "Traceback" not in stderr and "internal error" not in stderr
    lines = stderr.rstrip("\n").split("\n")
    assert FIRST_LINE.match(lines[0]), lines[0]
    assert len(lines) <= 4 and all(line.startswith("  ") for line in lines[1:]), stderr
    out = folder / "OUT.py"
    if target_exists:
        assert out.read_bytes() == OLD
    else:
        assert not out.exists()
    assert not (folder / "canary").exists()
    left = {p.name for p in folder.iterdir()} - {"in.txt", "OUT.py"}
    assert not left, "a temporary or marker file was left behind"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("target_exists", [True, False], ids=["target-exists", "no-target"])
@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_is_refused(folder, capsys, content, target_exists):
    assert_refused(invoke(folder, capsys, content, target_exists), folder, target_exists)


@pytest.mark.parametrize("target_exists", [True, False], ids=["target-exists", "no-target"])
def test_directory_missing_and_unreadable(folder, capsys, target_exists):
    (folder / "in.txt").mkdir()
    assert_refused(invoke(folder, capsys, None, target_exists), folder, target_exists)
    (folder / "in.txt").rmdir()
    assert_refused(invoke(folder, capsys, None, target_exists), folder, target_exists)
    (folder / "in.txt").write_text("f = x * y\n")
    (folder / "in.txt").chmod(0)
    try:
        if os.access(folder / "in.txt", os.R_OK):  # root reads a file whatever its mode
            return
        assert_refused(invoke(folder, capsys, None, target_exists), folder, target_exists)
    finally:
        (folder / "in.txt").chmod(0o644)


@pytest.mark.parametrize(
    "content, message",
    [
        ("lambda = x + 1\nf = lambda * 2\n", "in.txt:1:1: error: 'lambda' is a Python keyword"),
        ("f = x + def\n", "in.txt:1:9: error: 'def' is a Python keyword"),
        ("class: scalar\nf = class * 2\n", "in.txt:1:1: error: 'class' is a Python keyword"),
        ("a = x\nf = (a + import) * 2\n", "in.txt:2:10: error: 'import' is a Python keyword"),
        ("None = x + 1\n", "in.txt:1:1: error: 'None' is a Python keyword"),
    ],
)
def test_keywords_as_names_are_named(folder, capsys, content, message):
    status, _, stderr = invoke(folder, capsys, content, True)
    word = message.split("'")[1]
    assert stderr.startswith(message + "; it cannot name an input or a stage\n")
    assert stderr.rstrip("\n").split("\n")[-1] == f"  rename it, e.g. {word}_ or {word.lower()}1"
    assert status == 2


def test_integer_of_5000_digits_is_located(folder, capsys):
    content = "a = x * 2\nf = a * " + "9" * 5000 + " + 1\n"
    status, _, stderr = invoke(folder, capsys, content, True)
    assert stderr.split("\n")[0] == "in.txt:2:9: error: this integer has 5,000 digits"
    assert status == 2


def test_100_mb_file_is_refused_before_it_is_read(folder):
    """A real process: the size error comes from the file's size, with memory
    far below the file's (the file is sparse: no 100 MB is written to disk)."""
    with open(folder / "in.txt", "wb") as handle:
        handle.write(b"f = x * y\n")
        handle.truncate(100 * 2**20)
    (folder / "OUT.py").write_bytes(OLD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # The process reports its own peak memory. It is started by a shell, not by
    # this (large) test process: Linux carries a process's peak over an exec,
    # so a child exec'ed from here would report this process's peak.
    probe = (
        "import resource, runpy, sys\n"
        "sys.argv = ['stagegen', 'in.txt', '-o', 'OUT.py']\n"
        "try:\n"
        "    runpy.run_module('stagegen', run_name='__main__')\n"
        "finally:\n"
        "    with open('maxrss', 'w') as f:\n"
        "        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    child = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "$0"; exit $?', probe],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    result = (child.returncode, child.stdout, child.stderr)
    maxrss = int((folder / "maxrss").read_text())
    (folder / "maxrss").unlink()
    assert_refused(result, folder, True)
    assert "the limit for an expression file" in result[2]
    assert maxrss < 400_000  # KiB: the interpreter and SymPy, not the file


def test_standard_input_is_read_up_to_the_limit(folder, capsys, monkeypatch):
    import io

    import stagegen.files

    monkeypatch.setattr(stagegen.files, "MAX_FILE_BYTES", 1000)
    stdin = io.TextIOWrapper(io.BytesIO(b"f = x * y\n" + b"# padding\n" * 200))
    monkeypatch.setattr(sys, "stdin", stdin)
    (folder / "in.txt").write_text("")
    result = run_cli(["-", "-o", "OUT.py"], capsys)
    assert result[2].startswith("<stdin>: error: the file is larger than 1,000 bytes")
    assert_refused(result, folder, False)


def test_long_literal_in_a_comment_line_is_not_a_bug():
    """A constant longer than a line: the '# backprop' comment quoting it is
    long too, and black leaves long comments alone."""
    import black

    text = stagegen.generate("f = x * 2**1023 / 4")
    assert black.format_str(text, mode=black.Mode()) == text
    module = stagegen.module_from_text(text, "long")
    value, (dx,) = module.value_and_grad(0.25)
    assert (value, dx) == (0.25 * 2.0**1023 / 4, 2.0**1023 / 4)


@pytest.mark.parametrize("content", ["f = 1if x else y\n", "f = 0x1for\n", "f = [0x1for x in y]\n"])
def test_tokenizer_warnings_do_not_reach_stderr(folder, content):
    """Python's tokenizer warns about literals glued to keywords; the warning is
    not stagegen's diagnostic (pytest captures warnings, so a real process)."""
    (folder / "in.txt").write_text(content)
    (folder / "OUT.py").write_bytes(OLD)
    result = run_subprocess(["in.txt", "-o", "OUT.py"], folder)
    assert "Warning" not in result[2]
    assert_refused(result, folder, True)


def test_one_line_of_a_megabyte_gives_a_short_diagnostic(folder, capsys):
    """The source line under a diagnostic is cut around the column: a one-line
    file of a megabyte gives four short lines, not two copies of the file."""
    content = "f = " + " + ".join(["x"] * 250_000) + "\n"
    result = invoke(folder, capsys, content, True)
    assert_refused(result, folder, True)
    assert len(result[2]) < 1000
    assert result[2].split("\n")[1].endswith(" + x + ...")


# -- round two: the edges the first round did not reach -----------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("f = sum(A @ B)\n", "@ multiplies vectors and matrices of declared shapes"),
        ("x: scalar\nf = sum(x.T)\n", ".T transposes an array of a declared shape"),
        ("A: matrix(2, 3)\nf = sum(A @ B)\n", "@ multiplies vectors and matrices of declared shapes"),
    ],
)
def test_matrix_operations_on_undeclared_shapes_are_refused(folder, capsys, content, message):
    """An undeclared operand may be anything at run time (a 3-D array's .T reverses
    every axis, a float has none): @ and .T need declared matrices."""
    (folder / "in.txt").write_text(content)
    status, out, err = run_cli(["in.txt", "--backend", "numpy"], capsys)
    assert status == 2 and out == "" and message in err.split("\n")[0]
    assert FIRST_LINE.match(err.split("\n")[0])


def test_a_long_max_is_linear_and_keeps_its_convention():
    """max of n operands is a chain of max gates of at most four: linear code, and
    the first operand that attains the maximum takes the whole gradient."""
    sizes = {
        n: len(stagegen.generate("f = max(" + ", ".join(f"a{i}" for i in range(n)) + ")")) for n in (200, 400)
    }
    assert 1.9 <= sizes[400] / sizes[200] <= 2.2, sizes
    source = "f = max(" + ", ".join(f"a{i}" for i in range(12)) + ") * min(b, a3, a0, b, a11, a7)"
    module = stagegen.load(source)
    point = [1.0, 3.0, 2.0, 3.0, 0.5, 3.0, 1.0, 3.0, 2.5, 3.0, 0.0, 3.0, 0.5]  # ties everywhere
    _, grads = module.value_and_grad(*point)
    names = module.INPUTS
    expected = dict.fromkeys(names, 0.0)
    low = min(point[names.index(n)] for n in ("b", "a3", "a0", "a11", "a7"))
    expected["a1"] += low  # the first of the maxima (3.0)
    first_min = next(n for n in ("b", "a3", "a0", "b", "a11", "a7") if point[names.index(n)] == low)
    expected[first_min] += 3.0
    assert dict(zip(names, grads, strict=True)) == expected
    assert stagegen.verify("f = min(" + ", ".join(f"a{i}" for i in range(30)) + ")", points=3).ok


def test_located_errors_without_the_module_source():
    """A module run from compiled code only (a .pyc, an exec) cannot read its lines:
    the original error, with the function and line, instead of an IndexError."""
    import types

    text = stagegen.generate("lnx = log(x)\nf = lnx * y")
    module = types.ModuleType("compiled_only")
    exec(compile(text, "<compiled only>", "exec"), module.__dict__)
    with pytest.raises(ValueError) as caught:
        module.value_and_grad(-1.0, 2.0)
    lines = text.split("\n")
    line = lines.index("        lnx = math.log(x)  # (1)", lines.index("def value_and_grad(x, y):")) + 1
    assert (
        str(caught.value)
        == f"math domain error (in value_and_grad, line {line}; its source would name the stage)"
    )


def _sympy_inputs():
    import sympy as sp

    x, y = sp.symbols("x y", real=True)
    deep = x
    for _ in range(10_000):
        deep = sp.sin(deep, evaluate=False)
    return {
        "max-of-one": (sp.Function("max")(x), "max takes 2 or more operands; got 1 argument(s)"),
        "add-of-one": (sp.Function("add")(x), "add takes 2 operand(s); got 1 argument(s)"),
        "powc-without-n": (sp.Function("powc")(x), "powc takes 1 operand(s) and the parameter(s) n"),
        "sum_axis-of-two": (sp.Function("sum_axis")(x, y, 0, 0), "sum takes 1 operand(s)"),
        "sum_axis-variable-axis": (
            sp.Function("sum_axis")(x, y, x),
            "the parameter(s) axis, keepdims of sum",
        ),
        "variable-parameter": (sp.Function("powc")(x, y), "the parameter(s) n of powc must be constants"),
        "matmul-of-scalars": (sp.Function("matmul")(x, y), "'@' (matmul) needs the numpy backend"),
        "divide-by-zero": (sp.Mul(x, sp.Pow(0, -1, evaluate=False), evaluate=False), "division by zero"),
        "deep-unknown-function": (sp.floor(deep, evaluate=False), "stagegen has no gate for floor"),
        "sigmoid-by-name": (sp.Function("sigmoid")(x) * y, None),
        "gate-in-a-constant": (y * sp.tanh(stagegen.sigmoid(3)), None),
        "wild-symbol": (x * sp.Wild("w"), None),
    }


@pytest.mark.parametrize("name", list(_sympy_inputs()))
def test_odd_sympy_input_is_a_module_that_verifies_or_a_clear_error(name):
    expr, message = _sympy_inputs()[name]
    if message is None:
        report = stagegen.verify(expr, points=3)
        assert report.ok, report.table()
        return
    for call in (stagegen.generate, lambda e: stagegen.verify(e, points=2)):
        with pytest.raises(stagegen.StagegenError) as caught:
            call(expr)
        first = caught.value.render().split("\n")[0]
        assert message in first and len(first) < 300, first


@pytest.mark.parametrize("character", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_lines_are_counted_as_python_counts_them(folder, capsys, character):
    """A comment may hold characters str.splitlines breaks at; Python does not:
    the error is located on the line Python means, and the docstring keeps the
    source verbatim (the module of a correct program checks clean)."""
    (folder / "in.txt").write_text(f"# a{character}b * 1000\nf = x +\n", encoding="utf-8")
    status, _, err = run_cli(["in.txt"], capsys)
    assert status == 2
    assert err.split("\n")[:2] == ["in.txt:2:8: error: invalid syntax", "  f = x +"]
    source = f"# a{character}b * 1000\nf = x * 2\n"
    report = stagegen.verify(stagegen.load(source), points=3)
    assert report.ok and report.notes == [], report.table()


def test_checking_a_huge_declared_array_is_refused_at_once(folder, capsys):
    (folder / "in.txt").write_text("v: vector(2147483647)\nf = sum(v*v)\n")
    status, out, err = run_cli(["in.txt", "--backend", "numpy", "--check"], capsys)
    assert status == 2 and out == ""
    assert err.startswith("in.txt: error: the check would make 'v' an array of 2,147,483,647 elements")
    status, out, _ = run_cli(["in.txt", "--backend", "numpy"], capsys)  # generating allocates nothing
    assert status == 0 and "def value_and_grad(v):" in out


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize(
    "source, expected",
    [
        ("W: matrix(2, 2)\nf = sum(W * W) * 0.5\n", lambda W: W),
        ("W: matrix(2, 2)\nf = mean(W * W)\n", lambda W: W / 2),
        ("W: matrix(2, 2)\nf = sum(sum(W, axis=0))\n", lambda W: W * 0 + 1),
        ("f = x * y\n", None),
    ],
)
def test_integer_arrays_get_float_gradients(source, expected, style):
    """np.full_like(ints, 0.5) is 0: the numpy backend makes its gradient arrays as floats."""
    import numpy as np

    module = stagegen.load(source, backend="numpy", style=style)
    ints = [np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])][: len(module.INPUTS)]
    _, grads = module.value_and_grad(*ints)
    _, cache = module.forward(*ints)
    for got in (*grads, *module.backward(np.ones((2, 2)) if expected is None else 1.0, cache)):
        assert got.dtype == np.float64
    if expected is not None:
        assert np.array_equal(grads[0], expected(ints[0].astype(float)))
    else:
        assert np.array_equal(grads[0], ints[1]) and np.array_equal(grads[1], ints[0])


def test_the_check_compares_integer_inputs_with_floats(monkeypatch):
    """A module that truncated at integer inputs would fail --check's integer row."""
    import dataclasses
    import importlib

    plan = importlib.import_module("stagegen.plan")
    numpy_backend = plan.BACKENDS["numpy"]
    truncating = dataclasses.replace(
        numpy_backend,
        syntax=dataclasses.replace(
            numpy_backend.syntax,
            expansions={k: v for k, v in numpy_backend.syntax.expansions.items() if not k.endswith("_like")},
        ),
    )
    monkeypatch.setattr(plan, "BACKENDS", {**plan.BACKENDS, "numpy": truncating})
    report = stagegen.verify("W: matrix(2, 2)\nf = sum(W) * 0.5\n", backend="numpy", points=3)
    row = next(r for r in report.rows if r.quantity == "integer inputs")
    assert not row.ok and not report.ok

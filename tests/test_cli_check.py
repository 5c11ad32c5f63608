"""Aiming `stagegen --check` from the command line: --domain, --check-at (text or .npz), and
checking a module stagegen generated (`stagegen MODULE.py --check`) as it is written.

Every case runs ``stagegen.__main__.main`` in-process (`helpers.run_cli`) in the `folder`
fixture's temporary working folder, with few points: the file runs in seconds.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import EXAMPLES
from helpers import run_cli as run
from stagegen.files import generated_docstring

LOG_SHIFTED = "x: scalar\nf = log(x - 4)\n"  # real only for x > 4, never in the default [-3, 3]
TWO_INPUTS = "x: scalar\ny: scalar\nf = log(x - 4) * log(-y)\n"  # x > 4, y < 0
MATRIX = "W: matrix(2, 2)\nL = sum(log(W))\n"
FEW = ["--points", "5"]


@pytest.fixture
def shifted(folder):
    (folder / "log.txt").write_text(LOG_SHIFTED, encoding="utf-8")
    return "log.txt"


def refused(result, *needles: str) -> str:
    """The message of a usage error: status 2, nothing on stdout, one message, no traceback."""
    status, out, err = result
    assert (status, out) == (2, ""), err
    assert "Traceback" not in err and "internal error" not in err
    assert len(re.findall(r"error:", err)) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


# -- --check, --domain, --check-at on an expression file -------------------------------


def test_no_usable_point_fails_and_suggests_a_domain(shifted, capsys):
    status, out, err = run([shifted, "--check", *FEW], capsys)
    assert (status, err) == (1, "")
    assert "FAILED: no point found" in out and "--domain x=5:10" in out


def test_domain_aims_the_check(shifted, capsys):
    status, out, err = run([shifted, "--domain", "x=5:10", *FEW], capsys)  # --domain implies --check
    assert (status, err) == (0, ""), out
    assert out.startswith("quantity ") and "def forward" not in out
    assert "points: x in [5.0, 10.0]\n" in out and "5 points (0 discarded" in out


def test_check_at_given_points(shifted, capsys):
    status, out, err = run([shifted, "--check-at", "x=5.5", "--check-at", "x=7"], capsys)
    assert (status, err) == (0, ""), out
    assert "points: the 2 points given" in out and "2 points (0 discarded" in out


def test_check_at_a_point_where_the_maths_is_not_real_fails_by_name(shifted, capsys):
    status, out, err = run([shifted, "--check-at", "x=1"], capsys)
    assert (status, err) == (1, "")
    assert "MISMATCH: the reference is not finite and real at the point given (x=1.0)" in out


def test_negative_ranges(folder, capsys):
    (folder / "neg.txt").write_text("x: scalar\nf = log(-x)\n", encoding="utf-8")
    status, out, err = run(["neg.txt", "--domain", "x=-5:-1", *FEW], capsys)
    assert (status, err) == (0, ""), out
    assert "points: x in [-5.0, -1.0]\n" in out


@pytest.mark.parametrize(
    "domains",
    [["--domain", "x=5:10", "--domain", "y=-2:-1"], ["--domain", "x=5:10,y=-2:-1"]],
    ids=["repeated", "one"],
)
def test_domains_are_merged(folder, capsys, domains):
    (folder / "two.txt").write_text(TWO_INPUTS, encoding="utf-8")
    status, out, err = run(["two.txt", *domains, *FEW], capsys)
    assert (status, err) == (0, ""), out
    assert "points: x in [5.0, 10.0], y in [-2.0, -1.0]\n" in out


@pytest.mark.parametrize(
    "domains",
    [["--domain", "x=5:6", "--domain", "x=7:8"], ["--domain", "x=5:6,x=7:8"]],
    ids=["repeated", "one"],
)
def test_a_name_given_twice_is_refused(shifted, capsys, domains):
    refused(run([shifted, *domains], capsys), "log.txt: error: --domain: x is given twice")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("x=5", "x=5 is not a range lo:hi"),
        ("x=5:6:7", "x=5:6:7 is not a range lo:hi"),
        ("x=a:b", "x=a:b is not a range lo:hi"),
        ("x=:6", "x=:6 is not a range lo:hi"),
        ("x", "'x' is not name=value"),
        ("=5:6", "'=5:6' is not name=value"),
        ("x=5:6,", "'' is not name=value"),
    ],
)
def test_malformed_domains_are_refused(shifted, capsys, item, message):
    refused(run([shifted, "--domain", item], capsys), message, "(e.g. --domain x=5:10,y=-1:1)")


def test_an_empty_range_is_refused(shifted, capsys):
    refused(run([shifted, "--domain", "x=10:5"], capsys), "the domain of x", "is not a range lo < hi")


def test_domain_and_check_at_together_are_refused(shifted, capsys):
    refused(
        run([shifted, "--domain", "x=5:10", "--check-at", "x=6"], capsys),
        "--domain and --check-at do not go together",
        "drop --domain",
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--domain", "z=1:2"], "a domain names z, which is not an input; the inputs are x"),
        (["--check-at", "z=6"], "--check-at z=6: the point names z, which is not an input, and misses x"),
        (["--check-at", "x=6,z=1"], "--check-at x=6,z=1: the point names z, which is not an input"),
        (["--check-at", "x=six"], "--check-at: x=six is not a number"),
    ],
)
def test_unknown_names_and_bad_values_are_refused(shifted, capsys, option, message):
    refused(run([shifted, *option], capsys), "log.txt: error: " + message)


# -- --check-at FILE.npz -----------------------------------------------------------------


@pytest.fixture
def matrix(folder):
    (folder / "m.txt").write_text(MATRIX, encoding="utf-8")
    return ["m.txt", "--backend", "numpy"]


def test_array_point_from_an_npz_file(folder, matrix, capsys):
    np.savez(folder / "pts.npz", W=np.full((2, 2), 2.0))
    status, out, err = run([*matrix, "--check-at", "pts.npz"], capsys)
    assert (status, err) == (0, ""), out
    assert "points: the point given" in out
    assert re.search(r"^dW +finite differences +\S+ +1  ok$", out, re.M), out


def test_scalar_point_from_an_npz_file(folder, shifted, capsys):
    np.savez(folder / "x.npz", x=np.array(6.0))  # a 0-d array for a scalar input
    status, out, err = run([shifted, "--check-at", "x.npz", "--check-at", "x=7"], capsys)
    assert (status, err) == (0, ""), out
    assert "points: the 2 points given" in out


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({}, "the point misses W (the inputs are W)"),
        ({"V": np.ones((2, 2))}, "the point names V, which is not an input, and misses W"),
        ({"W": np.ones((2, 2)), "Z": np.ones(2)}, "the point names Z, which is not an input (the inputs"),
        ({"W": np.ones(3)}, "W is an array of shape (3,); the program needs an array of shape (2, 2)"),
        ({"W": np.full((2, 2), 1j)}, "W holds complex128 values, not real numbers"),
        ({"W": np.array([["a", "b"], ["c", "d"]])}, "W holds <U1 values, not real numbers"),
        ({"W": np.array([[{}, {}], [{}, {}]], dtype=object)}, "not a NumPy .npz file of numeric arrays"),
    ],
    ids=["empty", "missing", "extra", "shape", "complex", "text", "objects"],
)
def test_bad_npz_contents_are_refused_naming_the_file(folder, matrix, capsys, arrays, message):
    np.savez(folder / "pts.npz", **arrays)
    err = refused(run([*matrix, "--check-at", "pts.npz"], capsys), "pts.npz: error: --check-at: " + message)
    assert "numpy.savez('pts.npz', W=...)" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "no such file"),
        (lambda path: path.write_text("W = 2\n", encoding="utf-8"), "not a NumPy .npz file"),
        (lambda path: path.write_bytes(b""), "not a NumPy .npz file"),
        (lambda path: np.save(path.with_suffix(".npy"), np.ones((2, 2))), "not a NumPy .npz file"),
        (lambda path: path.write_bytes(b"PK\x03\x04 cut short"), "not a NumPy .npz file"),
        (lambda path: path.mkdir(), "cannot read the file"),
    ],
    ids=["missing", "text", "empty", "npy", "broken zip", "folder"],
)
def test_unreadable_npz_files_are_refused_naming_the_file(folder, matrix, capsys, make, message):
    path = folder / "pts.npz"
    if make is not None:
        make(path)
        if path.with_suffix(".npy").exists():  # one array, saved under the .npz name
            path.with_suffix(".npy").rename(path)
    refused(run([*matrix, "--check-at", "pts.npz"], capsys), "pts.npz: error: --check-at: " + message)


def test_an_array_input_needs_an_npz_file(matrix, capsys):
    refused(
        run([*matrix, "--check-at", "W=2"], capsys),
        "m.txt: error: --check-at W=2: W is a number; the program needs an array of shape (2, 2)",
        "numpy.savez('point.npz', W=...); then --check-at point.npz",
    )


def test_a_size_name_is_one_size_throughout(folder, capsys):
    (folder / "nm.txt").write_text("X: matrix(n, m)\nW: matrix(m, k)\nL = sum(X @ W)\n", encoding="utf-8")
    np.savez(folder / "good.npz", X=np.ones((2, 3)), W=np.full((3, 4), 0.5))
    np.savez(folder / "bad.npz", X=np.ones((2, 3)), W=np.ones((4, 2)))
    status, out, err = run(["nm.txt", "--backend", "numpy", "--check-at", "good.npz"], capsys)
    assert (status, err) == (0, ""), out
    refused(
        run(["nm.txt", "--backend", "numpy", "--check-at", "bad.npz"], capsys),
        "bad.npz: error: --check-at: W is an array of shape (4, 2); ",
        "the program needs an array of shape (m=3, k)",
    )


def test_a_scalar_input_needs_a_number(folder, shifted, capsys):
    np.savez(folder / "x.npz", x=np.ones(3))
    refused(
        run([shifted, "--check-at", "x.npz"], capsys), "x.npz: error: --check-at: x is an array of shape (3,)"
    )


def test_npz_files_are_never_unpickled(folder, matrix, capsys, monkeypatch):
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    (folder / "pts.npz").write_bytes(pickle.dumps({"W": [[2.0, 2.0], [2.0, 2.0]]}))
    refused(
        run([*matrix, "--check-at", "pts.npz"], capsys), "pts.npz: error: --check-at: not a NumPy .npz file"
    )


# -- stagegen MODULE.py --check -------------------------------------------------------------

TAMPERED = ("dxpy = (2 * xpy) * dxpysqr", "dxpy = (2 * xpy) * dxpysqr * 1.0000001")


@pytest.fixture
def generated(folder, capsys):
    assert run([str(EXAMPLES / "notes.txt"), "-o", "generated.py"], capsys) == (0, "", "")
    return folder / "generated.py"


def stage_rows(out: str) -> dict[str, str]:
    """The per-stage rows of a --check table: quantity -> status."""
    rows = re.findall(r"^(d\w+ \(\d+\)) +mpmath, per stage +\S+ +\d+ +(ok|MISMATCH.*)$", out, re.M)
    return {quantity: "ok" if status == "ok" else "MISMATCH" for quantity, status in rows}


def test_a_generated_module_is_checked(generated, capsys):
    status, out, err = run(["generated.py", "--check", *FEW], capsys)
    assert (status, err) == (0, ""), out
    rows = stage_rows(out)
    assert {"dsigy (1)", "dxpy (4)", "dinvden (7)"} <= set(rows)
    assert set(rows.values()) == {"ok"}
    assert "5 points (0 discarded" in out


def test_a_tampered_module_fails_its_check(generated, capsys):
    text = generated.read_text(encoding="utf-8")
    assert TAMPERED[0] in text
    (generated.parent / "tampered.py").write_text(text.replace(*TAMPERED), encoding="utf-8")
    status, out, err = run(["tampered.py", "--check", *FEW], capsys)
    assert (status, err) == (1, "")
    assert "MISMATCH" in out and stage_rows(out)["dxpy (4)"] == "MISMATCH"
    assert stage_rows(out)["dsigy (1)"] == "ok"


def test_a_generated_module_takes_domain_and_check_at(generated, capsys):
    status, out, err = run(["generated.py", "--domain", "x=0:1,y=0:1", *FEW], capsys)
    assert (status, err) == (0, ""), out
    assert "points: x in [0.0, 1.0], y in [0.0, 1.0]\n" in out
    status, out, err = run(["generated.py", "--check-at", "x=1,y=2", "--check-at", "x=-1,y=0.5"], capsys)
    assert (status, err) == (0, ""), out
    assert "points: the 2 points given" in out and set(stage_rows(out).values()) == {"ok"}
    refused(
        run(["generated.py", "--check-at", "x=1"], capsys),
        "generated.py: error: --check-at x=1: the point misses y",
    )


@pytest.mark.parametrize(
    "options",
    [["-o", "out.py"], ["--backend", "numpy"], ["--backend", "math"], ["--style", "compact", "--wrt", "x"]],
    ids=lambda o: " ".join(o),
)
def test_generation_options_with_a_module_are_refused(generated, capsys, options):
    err = refused(
        run(["generated.py", "--check", *options], capsys),
        "generated.py: error: ",
        "cannot go with a generated module: it is checked as it is (it records its own options)",
    )
    named = err.split(" cannot go with", 1)[0]
    assert all(option in named for option in options if option.startswith("-"))
    assert not (generated.parent / "out.py").exists()


def test_a_module_without_check_is_refused_with_the_hint(generated, capsys):
    refused(
        run(["generated.py"], capsys),
        "generated.py: error: this is a module generated by stagegen, not an expression file",
        "check it with: stagegen generated.py --check",
        "generate again from its source file",
    )


@pytest.mark.parametrize(
    "text",
    [
        'import pathlib\npathlib.Path("marker").write_text("ran")\n',
        '"""Generated by: stagegen in.txt\n"""\nimport pathlib\npathlib.Path("marker").write_text("ran")\n',
    ],
    ids=["plain", "no Source section"],
)
def test_a_python_file_that_is_not_generated_is_never_run(folder, capsys, text):
    (folder / "plain.py").write_text(text, encoding="utf-8")
    for argv in (["plain.py", "--check"], ["plain.py"], ["plain.py", "--check-at", "x=1"]):
        refused(run(argv, capsys), "plain.py:1:1: error: ", "plain.py is not a module stagegen generated")
    assert not (folder / "marker").exists()


def test_recognition_reads_the_docstring_without_running_the_module(generated):
    text = generated.read_text(encoding="utf-8")
    hostile = text + '\nraise SystemExit("ran")\n'
    assert generated_docstring(hostile).startswith("f(x, y) and its gradient")
    for other in (
        "f = x * y\n",
        "def (:\n",
        "# Generated by: stagegen x\n",
        text.replace("Source (", "Src ("),
    ):
        assert generated_docstring(other) is None

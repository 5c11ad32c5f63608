"""--backend array: the numpy backend's listing written against the array API
standard, its namespace taken from the arguments (array-api-compat). Run on
array-api-strict (which has nothing but the standard) and on NumPy, every
example gives what the numpy backend gives; verify passes on it."""

import ast
from pathlib import Path

import array_api_strict as xps
import numpy as np
import pytest

import stagegen
from helpers import EXAMPLES, leaves, release_errors, sample_arguments

PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.txt")) + sorted(
    f"arrays/{p.name}" for p in (EXAMPLES / "arrays").glob("*.txt")
)


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_array_api_strict_gives_what_numpy_gives(name, style):
    source = (EXAMPLES / name).read_text()
    array = stagegen.load(source, backend="array", style=style)
    numpy = stagegen.load(source, backend="numpy", style=style)
    args = sample_arguments(stagegen.build(source, backend="numpy"), np.random.default_rng(len(name)))
    strict = [xps.asarray(a) for a in args]
    values, cache = array.forward(*strict)
    want_values, want_cache = numpy.forward(*args)
    douts = [np.ones(np.shape(v)) for v in leaves(want_values)]
    dout = tuple(douts) if len(douts) > 1 else douts[0]
    got = [
        values,
        array.backward(tuple(xps.asarray(d) for d in douts) if len(douts) > 1 else xps.asarray(dout), cache),
    ]
    want = [want_values, numpy.backward(dout, want_cache)]
    if hasattr(numpy, "value_and_grad"):
        got.append(array.value_and_grad(*strict))
        want.append(numpy.value_and_grad(*args))
    for g, w in zip(leaves(got), leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["notes.txt", "gates.txt", "arrays/two_layer.txt", "arrays/softmax.txt"])
def test_verify_passes_on_the_array_backend(name):
    report = stagegen.verify((EXAMPLES / name).read_text(), backend="array", points=6)
    assert report.ok, report.table()


def test_the_module_imports_array_api_compat_only():
    text = stagegen.generate((EXAMPLES / "notes.txt").read_text(), backend="array")
    imports = [n for n in ast.parse(text).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [alias.name for n in imports for alias in n.names] == ["array_api_compat"]
    assert "def forward(x, y):\n    xp, dtype = _namespace(x, y)\n" in text
    assert "np." not in text and "if xp.all" not in text  # no Python branch on array values
    assert release_errors(text) == []


def test_python_numbers_and_erf_work():
    m = stagegen.load("f = erf(x) * y", backend="array")
    value, (dx, dy) = m.value_and_grad(0.5, 2.0)
    assert float(value) == pytest.approx(2.0 * 0.5204998778130465, rel=1e-15)
    strict = m.value_and_grad(xps.asarray([0.5, -1.0]), xps.asarray([2.0, 3.0]))[1][0]
    np.testing.assert_allclose(
        np.asarray(strict),
        [2.0 * 2 / np.sqrt(np.pi) * np.exp(-0.25), 3.0 * 2 / np.sqrt(np.pi) * np.exp(-1.0)],
        rtol=1e-14,
    )


def test_several_outputs_jvp_and_hvp_on_the_array_backend():
    source = (EXAMPLES / "arrays" / "softmax.txt").read_text()
    report = stagegen.verify(source, backend="array", with_="jacobian,jvp,hvp", points=4)
    assert report.ok, report.table()
    arm = (EXAMPLES / "arm3.txt").read_text()
    assert stagegen.verify(arm, backend="array", with_="jacobian,jvp", points=4).ok


def test_golden_text_is_in_the_repository():
    assert Path(__file__).with_name("golden").joinpath("notes_array.py").is_file()


@pytest.mark.parametrize("name", ["arm3.txt", "arrays/softmax.txt", "arrays/residuals.txt"])
def test_value_and_jacobian_on_array_api_strict(name):
    """The Jacobian's loops use only the standard (shapes, indices with `...`)."""
    source = (EXAMPLES / name).read_text()
    array = stagegen.load(source, backend="array", with_="jacobian")
    numpy = stagegen.load(source, backend="numpy", with_="jacobian")
    args = sample_arguments(stagegen.build(source, backend="numpy"), np.random.default_rng(3))
    got = array.value_and_jacobian(*[xps.asarray(a) for a in args])
    want = numpy.value_and_jacobian(*args)
    for g, w in zip(leaves(got), leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "name", ["arrays/matvec.txt", "arrays/outer_dot.txt", "arrays/attention.txt", "arrays/stacks.txt"]
)
def test_torch_gives_what_numpy_gives(name):
    """The products of vectors, matrices and stacks of matrices (outer through
    expand_dims, .mT, _swapaxes) on PyTorch tensors, against the numpy backend's
    module."""
    torch = pytest.importorskip("torch")
    source = (EXAMPLES / name).read_text()
    array = stagegen.load(source, backend="array")
    numpy = stagegen.load(source, backend="numpy")
    args = sample_arguments(stagegen.build(source, backend="numpy"), np.random.default_rng(len(name)))
    got = array.value_and_grad(*[torch.asarray(a) for a in args])
    want = numpy.value_and_grad(*args)
    for g, w in zip(leaves(got), leaves(want), strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-13, atol=1e-15)

"""max, min and prod over several axes (axis=(0, 2)): values and gradients
against `verify` (SymPy/mpmath at 50 digits and finite differences), ties
against the first extreme NumPy's own argmax finds on the reduced axes moved to
the end and made one, prod's gradient where elements are 0 against products
with the element left out, and the errors."""

import numpy as np
import pytest

import stagegen
from stagegen.gates import REGISTRY

PROGRAMS = [
    "x: array(a, b, c)\nf = sum(sin(max(x, axis=(0, 2)))) + sum(min(x * x, axis=(1, -1), keepdims=True) * x)",
    "x: array(2, 2, 2, 3)\n"
    "f = sum(max(x, axis=(0, 1, 3)) ** 2) + sum(cos(min(x, axis=(3, 1), keepdims=True)) * x)",
    "x: array(a, b, c)\nw: vector(c)\n"
    "f = sum(prod(x, axis=(0, 1)) * w) + sum(prod(x, axis=(-1, 0), keepdims=True) * x)",
]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("source", PROGRAMS, ids=["max-min", "max-min-4d", "prod"])
def test_verify_checks_several_axes(source, backend):
    second = () if "prod" in source else ("hvp",)  # prod has no second derivative
    report = stagegen.verify(source, backend=backend, points=3, with_=("jvp", *second))
    assert report.ok, report.table()


def test_the_code_reads_as_written():
    text = stagegen.generate(PROGRAMS[2], backend="numpy")
    assert "prodx01 = np.prod(x, axis=(0, 1))  # (1)" in text
    assert "prodx02 = np.prod(x, axis=(0, 2), keepdims=True)  # (4)" in text  # axes from the front
    assert "_prod_others(x, axis=(0, 2))" in text
    text = stagegen.generate(PROGRAMS[0], backend="numpy")
    assert "maxx02 = np.max(x, axis=(0, 2))  # (1)" in text


# -- ties: the whole gradient to the first extreme in row-major order ------------------------


def _first(x: np.ndarray, axes: tuple, pick) -> tuple[np.ndarray, tuple]:
    """Per group of reduced elements, the position (in row-major order over the
    reduced axes) of the first extreme, by NumPy's argmax or argmin on the
    reduced axes moved to the end and made one; and the moved shape."""
    k = len(axes)
    moved = np.moveaxis(x, axes, tuple(range(-k, 0)))
    flat = moved.reshape(moved.shape[:-k] + (-1,))
    return pick(flat, axis=-1), moved.shape


def _routed(x, axes, dout, pick) -> np.ndarray:
    """dout put at each group's first extreme, zeros elsewhere."""
    k = len(axes)
    where, shape = _first(x, axes, pick)
    grad = np.zeros(shape[:-k] + (int(np.prod(shape[-k:])),))
    np.put_along_axis(grad, where[..., None], dout[..., None], axis=-1)
    return np.moveaxis(grad.reshape(shape), tuple(range(-k, 0)), axes)


CASES = [((0, 2), False), ((2, 0), True), ((-1, 1), False), ((0, 1, 2), True), ((-3, -2), True)]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("name, pick", [("max", np.argmax), ("min", np.argmin)])
@pytest.mark.parametrize("axis, keepdims", CASES, ids=[f"{a}-{k}" for a, k in CASES])
def test_ties_route_the_gradient_to_the_first(axis, keepdims, name, pick, backend):
    """Elements drawn from {0, 1, 2}, so most groups attain their extreme several
    times: backward sends dout to the first in row-major order, jvp reads the
    tangent there."""
    keep = ", keepdims=True" if keepdims else ""
    source = f"x: array(3, 4, 5)\nf = {name}(x, axis={axis}{keep})\n"
    module = stagegen.load(source, backend=backend, with_=("jvp",))
    axes = tuple(sorted(k % 3 for k in axis))
    rng = np.random.default_rng(len(axes) + 10 * keepdims)
    for _ in range(4):
        x = rng.integers(0, 3, size=(3, 4, 5)).astype(float)
        value, cache = module.forward(x)
        want = getattr(np, name)(x, axis=axes, keepdims=keepdims)
        np.testing.assert_array_equal(np.asarray(value), want)
        dout = rng.standard_normal(np.shape(want))
        (dx,) = module.backward(dout, cache)
        flat_dout = np.squeeze(dout, axis=axes) if keepdims else dout
        np.testing.assert_array_equal(np.asarray(dx), _routed(x, axes, flat_dout, pick))
        t = rng.standard_normal(x.shape)
        _, tf = module.jvp(x, t)
        where, _ = _first(x, axes, pick)
        moved = np.moveaxis(t, axes, tuple(range(-len(axes), 0)))
        flat = moved.reshape(moved.shape[: -len(axes)] + (-1,))
        read = np.take_along_axis(flat, where[..., None], axis=-1)[..., 0]
        np.testing.assert_array_equal(np.asarray(tf), np.expand_dims(read, axes) if keepdims else read)


def test_the_meaning_on_elements_is_numpys():
    """The gate's meaning on object arrays (verify's reference) against np.max
    and np.min over the same axes, on floats."""
    x = np.random.default_rng(3).standard_normal((3, 4, 2, 2))
    objects = x.astype(object)
    for name in ("max", "min"):
        gate = REGISTRY[f"{name}_axis"]
        for axis in ((0, 2), (1, 2, 3), (0, 3), 1):
            for keepdims in (0, 1):
                got = np.asarray(gate.elements(np, objects, axis, keepdims), dtype=float)
                want = getattr(np, name)(x, axis=axis, keepdims=bool(keepdims))
                np.testing.assert_array_equal(got, want)


# -- prod: the product of the other elements, right where elements are 0 -------------------


def _others(x: np.ndarray, axes: tuple) -> np.ndarray:
    """Each element's product of the other elements of its group: the group's
    product with the element set to 1 (no cumulative products, no division)."""
    out = np.empty_like(x)
    for index in np.ndindex(x.shape):
        y = x.copy()
        y[index] = 1.0
        group = tuple(0 if k in axes else i for k, i in enumerate(index))
        out[index] = np.prod(y, axis=axes, keepdims=True)[group]
    return out


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_prod_over_axes_with_zeros(keepdims, backend):
    """Groups (over axes 0 and 2 of a (3, 4, 2) array) with no zero, one zero and
    two zeros: the gradient against `_others`, central differences (prod is
    multilinear: exact up to rounding) and verify at the same point."""
    keep = ", keepdims=True" if keepdims else ""
    shape_w = "array(1, 4, 1)" if keepdims else "vector(4)"
    source = f"x: array(3, 4, 2)\nw: {shape_w}\nf = sum(w * prod(x, axis=(2, -3){keep}))\n"
    module = stagegen.load(source, backend=backend)
    rng = np.random.default_rng(11)
    x = rng.uniform(-2.0, 2.0, size=(3, 4, 2))
    w = rng.uniform(-2.0, 2.0, size=(1, 4, 1) if keepdims else (4,))
    x[1, 1, 0] = 0.0  # one zero in group 1
    x[0, 2, 1] = x[2, 2, 0] = 0.0  # two in group 2
    value, (dx, dw) = module.value_and_grad(x, w)
    weights = np.reshape(w, (1, 4, 1))
    assert value == pytest.approx(float(np.sum(w * np.prod(x, axis=(0, 2), keepdims=keepdims))))
    want = weights * _others(x, (0, 2))
    np.testing.assert_allclose(np.asarray(dx), want, rtol=1e-12, atol=1e-15)
    assert np.count_nonzero(np.asarray(dx)[:, 2]) == 0  # two zeros: every other product is 0
    assert np.count_nonzero(np.asarray(dx)[:, 1]) == 1  # one zero: only its own gradient is not
    np.testing.assert_allclose(np.asarray(dw), np.prod(x, axis=(0, 2), keepdims=keepdims), rtol=1e-12)
    h = 1e-6
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        up = float(module.forward(x, w)[0])
        x[index] = old - h
        down = float(module.forward(x, w)[0])
        x[index] = old
        assert abs((up - down) / (2 * h) - dx[index]) <= 1e-7 * (1 + abs(dx[index])), index
    report = stagegen.verify(source, backend=backend, at=[{"x": x, "w": w}], with_=("jvp",))
    assert report.ok, report.table()


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, message",
    [
        ("x: matrix(n, m)\nf = sum(max(x, axis=(0, -2)))", "names an axis twice"),
        ("x: matrix(n, m)\nf = sum(min(x, axis=(0, 2)))", "axis 2 is out of range"),
        ("x: matrix(n, m)\nf = sum(prod(x, axis=()))", "axis= takes integers, e.g. axis=(0, 2)"),
        ("x: matrix(n, m)\nf = sum(prod(x, axis=(0, 1.5)))", "axis= takes integers, e.g. axis=(0, 2)"),
    ],
)
def test_bad_axes_are_clear_errors(source, message):
    with pytest.raises(stagegen.StagegenError) as err:
        stagegen.generate(source, backend="numpy")
    assert message in err.value.render()

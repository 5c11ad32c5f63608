"""Slices whose bounds are sizes (``a[:, H:2*H]``, ``x[:N-1]``) and declared
sizes that are multiples of a name (``matrix(D, 4*H)``): the result's size
derived from the sizes, values against NumPy with integer slices at several
sizes, gradients against `verify` (SymPy/mpmath at 50 digits and finite
differences) and central differences, the entry check, and the errors."""

import re

import numpy as np
import pytest

import stagegen
from helpers import example, function_lines

LSTM = example("arrays/lstm_sized.txt")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _lstm(x, prev_h, prev_c, Wx, Wh, b):
    """CS231n's lstm_step_forward, with the hidden size read from prev_h."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), _sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    return o * np.tanh(next_c), next_c


def _arguments(rng, N, D, H):
    return [
        rng.uniform(-1, 1, (N, D)),
        rng.uniform(-1, 1, (N, H)),
        rng.uniform(-1, 1, (N, H)),
        rng.uniform(-0.5, 0.5, (D, 4 * H)),
        rng.uniform(-0.5, 0.5, (H, 4 * H)),
        rng.uniform(-0.5, 0.5, 4 * H),
    ]


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_lstm_at_several_hidden_sizes(backend):
    """Values against the NumPy step with integer slices; backward(w) against
    central differences of <forward, w> along random directions."""
    module = stagegen.load(LSTM, backend=backend)
    rng = np.random.default_rng(1)
    for N, D, H in [(2, 3, 1), (3, 2, 2), (2, 4, 5)]:
        args = _arguments(rng, N, D, H)
        (h, c), cache = module.forward(*args)
        want_h, want_c = _lstm(*args)
        np.testing.assert_allclose(np.asarray(h), want_h, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(np.asarray(c), want_c, rtol=1e-13, atol=1e-15)
        w = (rng.standard_normal((N, H)), rng.standard_normal((N, H)))
        grads = module.backward(w, cache)

        def weighted(values, w=w):
            return float(np.sum(values[0] * w[0]) + np.sum(values[1] * w[1]))

        for k, (arg, grad) in enumerate(zip(args, grads, strict=True)):
            assert np.shape(grad) == arg.shape
            v = rng.standard_normal(arg.shape)
            step = 1e-5
            up = [*args[:k], arg + step * v, *args[k + 1 :]]
            down = [*args[:k], arg - step * v, *args[k + 1 :]]
            slope = (weighted(_lstm(*up)) - weighted(_lstm(*down))) / (2 * step)
            assert abs(slope - float(np.sum(np.asarray(grad) * v))) <= 1e-7 * (1 + abs(slope)), (H, k)


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_verify_checks_the_lstm(backend):
    report = stagegen.verify(LSTM, backend=backend, points=4, with_=("jvp",))
    assert report.ok, report.table()


def test_the_code_reads_the_bounds_from_the_shape():
    text = stagegen.generate(LSTM, backend="numpy")
    lines = [line.strip() for line in function_lines(text, "forward")]
    assert any(line.endswith("= a[:, : a.shape[1] // 4]  # (5)") for line in lines)
    assert any(line.endswith("= a[:, a.shape[1] // 4 : 2 * (a.shape[1] // 4)]  # (7)") for line in lines)
    backward = [line.strip() for line in function_lines(text, "backward")]
    assert any(line.startswith("da[:, 3 * (a.shape[1] // 4) :] += ") for line in backward)
    assert "# backprop t7 = a[:, H : 2 * H]" in text  # the comment as the source writes it


# -- the size of a slice, from the sizes --------------------------------------------------


@pytest.mark.parametrize(
    "source, size",
    [
        ("x: matrix(N, 4*H)\nf = x[:, :H]", "H"),
        ("x: matrix(N, 4*H)\nf = x[:, H:2*H]", "H"),
        ("x: matrix(N, 4*H)\nf = x[:, 2*H:3*H]", "H"),
        ("x: matrix(N, 4*H)\nf = x[:, 3*H:]", "H"),
        ("x: matrix(N, 4*H)\nf = x[:, H:3*H]", "2*H"),
        ("x: matrix(N, 4*H)\nf = x[:, H:H+1]", 1),
        ("x: matrix(N, H)\nf = x[:, :H]", "H"),
        ("x: vector(N)\nf = x[:N-1]", "N-1"),
        ("x: vector(N)\nf = x[1:]", "N-1"),
        ("x: vector(N)\nf = x[:-1]", "N-1"),
        ("x: vector(N)\nf = x[2:]", "N[2:]"),  # not N-2 where N may be 1
    ],
)
def test_the_slice_size_is_derived(source, size):
    build = stagegen.build(source, backend="numpy")
    assert build.graph.shapes[build.graph.outputs[0]][-1] == size


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_slices_of_one_size_meet(backend):
    """x[1:] and x[:N-1] have one size, N-1, so they broadcast together."""
    source = "x: vector(N)\nf = sum((x[1:] - x[:N-1]) ** 2) + sum(x[:-1] * x[1:])"
    module = stagegen.load(source, backend=backend)
    x = np.random.default_rng(2).standard_normal(6)
    value, (dx,) = module.value_and_grad(x)
    assert value == pytest.approx(float(np.sum(np.diff(x) ** 2) + np.sum(x[:-1] * x[1:])))
    report = stagegen.verify(source, backend=backend, points=4, with_=("jvp", "hvp"))
    assert report.ok, report.table()


# -- the entry check and errors ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_the_entry_check_ties_multiples_to_their_size(backend):
    module = stagegen.load(LSTM, backend=backend)
    rng = np.random.default_rng(3)
    args = _arguments(rng, 2, 3, 4)
    module.forward(*args)
    wrong = [*args[:3], rng.standard_normal((3, 17)), *args[4:]]
    message = (
        "Wx is declared matrix(D, 4*H) but was given shape (3, 17): "
        "axis 1 has size 17, not 16 (H = 4 from prev_h)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        module.forward(*wrong)
    wrong = [*args[:5], rng.standard_normal(12)]
    with pytest.raises(ValueError, match=re.escape("b is declared vector(4*H) but was given shape (12,)")):
        module.forward(*wrong)
    alone = stagegen.load("W: matrix(D, 4*H)\nf = sum(W[:, H:2*H])", backend=backend)
    with pytest.raises(ValueError, match=re.escape("axis 1 has size 6, not 4*H")):
        alone.forward(np.ones((2, 6)))
    assert float(alone.forward(np.ones((2, 8)))[0]) == 4.0


@pytest.mark.parametrize(
    "source, message",
    [
        ("x: matrix(N, G)\nH: scalar\nf = sum(x[:, :H])", "'H' is not a size name"),
        ("x: matrix(N, G)\ny: vector(H)\nf = sum(x[:, :H])", "the slice :H of an axis of size G"),
        ("x: matrix(N, H)\nf = sum(x[:, :2*H])", "the slice :2*H of an axis of size H"),
        ("x: matrix(N, 4*H)\nf = sum(x[:, 3*H:H])", "the slice 3*H:H of an axis of size 4*H"),
        ("x: matrix(N, 4*H)\nf = sum(x[:, :H:2])", "the slice :H:2 with a step"),
        ("x: matrix(N, 4*H)\nf = sum(x[:, :H*H])", "a slice's bound is an integer, a size name"),
        ("x: matrix(N, 16)\ny: vector(H)\nf = sum(x[:, :H])", "the slice :H of an axis of size 16"),
        ("x: matrix(N, H*K)\nf = sum(x)", "a size is a positive integer, a name or an integer times a name"),
        ("x: matrix(N, 4*H)\nf = sum(x) / H", "the size H is declared only in products"),
        ("x: matrix(N, 4*H)\nf = sum(reshape(x, (N, 4, H)))", "its size H is no axis of the array; write -1"),
    ],
)
def test_bad_bounds_are_clear_errors(source, message):
    with pytest.raises(stagegen.StagegenError) as err:
        stagegen.generate(source, backend="numpy")
    assert message in err.value.render()

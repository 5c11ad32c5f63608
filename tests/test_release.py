"""The numpy backend releases each array after its last use; compact math
writes its rules' constants as floats.

A generated numpy function `del`s every name bound to an array it made once
no later statement reads it (at the end of that stage's block), so a call holds
only the arrays still to be read. These tests read the `del` statements from the
module's syntax (never after a read of the name, never a returned, cached or
argument name), measure the peak memory of a call with them and without them
(tracemalloc sees NumPy's allocations), and check that nothing else changes.
"""

from __future__ import annotations

import random
import tracemalloc

import numpy as np
import pytest

import stagegen
from helpers import example, instrumented, release_errors

ARRAY_EXAMPLES = ["arrays/matmul.txt", "arrays/linreg.txt", "arrays/two_layer.txt", "arrays/softmax.txt"]
SCALAR_EXAMPLES = ["notes.txt", "notes_expr.txt", "neuron.txt", "circuit.txt", "gates.txt"]


def without_releases(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("del ")) + "\n"


def peak(call) -> int:
    """Bytes a call holds at its peak (its result included)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("name", ARRAY_EXAMPLES + SCALAR_EXAMPLES)
def test_no_name_is_read_after_its_release(name, style):
    text = stagegen.generate(example(name), backend="numpy", style=style)
    assert "del " in text
    assert release_errors(text) == []


def test_a_long_release_is_black_formatted_and_checked():
    """Views share their base's array: a chain of transposes is released in one
    del, which black writes as a parenthesised tuple."""
    text = stagegen.generate("A: matrix(3, 4)\nL = sum((((exp(tanh(A))).T).T).T)\n", backend="numpy")
    assert "    del (\n        exptanhA,\n        exptanhAT,\n" in text
    assert release_errors(text) == []
    bad = text.replace("    # backprop tanhA", "    print(exptanhAT)\n    # backprop tanhA")
    assert bad != text
    assert any("exptanhAT read after del" in e for e in release_errors(bad))


def test_the_checker_sees_a_read_after_release():
    text = stagegen.generate(example("notes.txt"), backend="numpy", style="compact")
    bad = text.replace("    del xpysqr\n", "    del xpysqr, sigx\n", 1)
    assert bad != text
    assert any("sigx read after del" in e for e in release_errors(bad))
    bad = text.replace("    del xpysqr\n", "    del xpysqr, x\n", 1)
    assert any("del x, which it did not bind" in e for e in release_errors(bad))


@pytest.mark.parametrize("style", ["seed", "compact"])
def test_releases_lower_the_peak_of_elementwise_work(style):
    """The notes' function on 200,000 elements: value_and_grad holds three
    arrays fewer at its peak (9 instead of 12 of the input's size here); the
    results are the same bit for bit."""
    text = stagegen.generate(example("notes.txt"), backend="numpy", style=style)
    released = stagegen.module_from_text(text, "<released>")
    kept = stagegen.module_from_text(without_releases(text), "<kept>")
    x, y = np.random.default_rng(1).normal(0, 3, (2, 200_000))
    size = x.nbytes
    assert peak(lambda: released.value_and_grad(x, y)) <= peak(lambda: kept.value_and_grad(x, y)) - 2 * size
    assert peak(lambda: released.forward(x, y)) < peak(lambda: kept.forward(x, y))
    for a, b in zip(released.value_and_grad(x, y), kept.value_and_grad(x, y), strict=True):
        np.testing.assert_array_equal(a, b)
    (_, cache), (_, cache_kept) = released.forward(x, y), kept.forward(x, y)
    assert len(cache) == len(cache_kept)
    dout = np.random.default_rng(2).normal(size=x.shape)
    for a, b in zip(released.backward(dout, cache), kept.backward(dout, cache_kept), strict=True):
        np.testing.assert_array_equal(a, b)


TWO_LAYER = """
W1: matrix(64, 32)
b1: matrix(64, 1)
W2: matrix(8, 64)
X: matrix(32, 2000)
Y: matrix(8, 2000)
H = relu(W1 @ X + b1)
L = mean((W2 @ H - Y)**2)
"""
TWO_LAYER_SHAPES = [(64, 32), (64, 1), (8, 64), (32, 2000), (8, 2000)]


def test_releases_lower_the_peak_of_a_two_layer_network():
    """Every hidden-layer array (64 x 2000) is released once backprop has passed it."""
    text = stagegen.generate(TWO_LAYER, backend="numpy", style="compact")
    released = stagegen.module_from_text(text, "<released>")
    kept = stagegen.module_from_text(without_releases(text), "<kept>")
    args = [np.random.default_rng(k).normal(size=shape) for k, shape in enumerate(TWO_LAYER_SHAPES)]
    hidden = 64 * 2000 * 8
    assert peak(lambda: released.value_and_grad(*args)) <= peak(lambda: kept.value_and_grad(*args)) - hidden
    for a, b in zip(released.value_and_grad(*args)[1], kept.value_and_grad(*args)[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_math_modules_and_traces_release_nothing():
    """Floats need no releasing; the instrumented rendering (for traces and the
    per-stage check) returns every value and adjoint, so it keeps them all."""
    assert "del " not in stagegen.generate(example("notes.txt"))
    assert "del " not in stagegen.generate(example("notes.txt"), style="compact")
    every = instrumented(example("notes.txt"), backend="numpy").value_and_grad(
        np.linspace(-1, 1, 5), np.linspace(2, 3, 5)
    )
    assert {"xpysqr", "num", "den", "dden", "dxpy"} <= set(every)


@pytest.mark.parametrize("name", SCALAR_EXAMPLES)
def test_compact_changes_no_value(name):
    """Compact drops the (1) * factors and the plain copies, and writes its
    rules' integers as floats (2.0 * xpy): the same floating-point operations
    in the same order, so value and gradients equal seed's bit for bit."""
    seed = stagegen.load(example(name), style="seed")
    compact = stagegen.load(example(name), style="compact")
    rng = random.Random(name)
    compared = 0
    for _ in range(500):
        point = [rng.uniform(-4, 4) for _ in seed.INPUTS]
        try:
            expected = seed.value_and_grad(*point)
        except (ArithmeticError, ValueError):
            continue
        assert compact.value_and_grad(*point) == expected, point
        compared += 1
    assert compared > 400


def test_compact_math_rules_run_on_floats():
    """CPython adds and multiplies two floats on a fast path that an int operand
    leaves: compact's rule constants are float literals (exponents stay ints)."""
    text = stagegen.generate(example("notes.txt"), style="compact")
    assert "dxpy = 2.0 * xpy * dden  # (5)" in text
    assert "dx += (1.0 - sigx) * sigx * dden  # (3)" in text
    assert "dden = -1.0 / den**2 * dinvden  # (7)" in text
    seed = stagegen.generate(example("notes.txt"), style="seed")
    assert "dxpy = (2 * xpy) * dxpysqr  # (5)" in seed  # the notes' listing, as written

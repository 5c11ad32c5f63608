"""softmax and log_softmax recognised from the circuits programs write them as
(--gates grouped), kept as written by --gates fine.

References are independent of the generator: the written circuit evaluated in
mpmath at 50 digits, its gradient by mpmath's own differentiation at that
precision; and `verify` (SymPy/mpmath of each stage's meaning and finite
differences). Large logits, where the written circuit overflows (exp(990) is
inf) or underflows to 0 / 0, are the point of the rewrite."""

from __future__ import annotations

import warnings
import zlib

import mpmath
import numpy as np
import pytest

import stagegen
from stagegen.lower import lower
from stagegen.parse import parse

DECLARED = "S: matrix(3, 4)\nW: matrix(3, 4)\n"
SHIFTED = (
    "exp(S - max(S, axis={k}, keepdims=True)) / "
    "sum(exp(S - max(S, axis={k}, keepdims=True)), axis={k}, keepdims=True)"
)
# (circuit, the gate it becomes, its axis as written, the meaning: softmax or log_softmax)
CIRCUITS = [
    ("exp(S) / sum(exp(S), axis=1, keepdims=True)", "softmax", 1),
    ("exp(S) / sum(exp(S), axis=0, keepdims=True)", "softmax", 0),
    ("exp(S) / sum(exp(S), axis=-1, keepdims=True)", "softmax", -1),
    (SHIFTED.format(k=1), "softmax", 1),
    (SHIFTED.format(k=-2), "softmax", -2),
    ("S - logsumexp(S, axis=1, keepdims=True)", "log_softmax", 1),
    ("S - logsumexp(S, axis=-2, keepdims=True)", "log_softmax", -2),
    ("S - log(sum(exp(S), axis=0, keepdims=True))", "log_softmax", 0),
    ("log(exp(S) / sum(exp(S), axis=1, keepdims=True))", "log_softmax", 1),
]
IDS = [f"{gate}-{axis}-{k}" for k, (_, gate, axis) in enumerate(CIRCUITS)]


def program(circuit: str) -> str:
    return f"{DECLARED}P = {circuit}\nL = sum(W * P)\n"


def gates_of(graph) -> list[str]:
    return [s.gate for s in graph.stages]


def reference(gate: str, axis: int, S: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray]:
    """L = sum(W * P) with P the circuit's meaning, and dL/dS, at 50 digits."""
    axis %= 2

    def value(s):  # at the working precision: mpmath.diff raises it
        total = mpmath.mpf(0)
        for i in range(3):
            for j in range(4):
                line = [s[i][c] for c in range(4)] if axis == 1 else [s[r][j] for r in range(3)]
                lse = mpmath.log(mpmath.fsum(mpmath.exp(t) for t in line))
                out = s[i][j] - lse if gate == "log_softmax" else mpmath.exp(s[i][j] - lse)
                total += mpmath.mpf(float(W[i, j])) * out
        return total

    grad = np.zeros((3, 4))
    with mpmath.workdps(50):
        point = [[mpmath.mpf(float(S[i, j])) for j in range(4)] for i in range(3)]
        for i in range(3):
            for j in range(4):

                def along(t, i=i, j=j):
                    moved = [row[:] for row in point]
                    moved[i][j] = t
                    return value(moved)

                grad[i, j] = float(mpmath.diff(along, point[i][j]))
        return float(value(point)), grad


@pytest.mark.parametrize("circuit, gate, axis", CIRCUITS, ids=IDS)
def test_the_circuit_becomes_one_gate(circuit, gate, axis):
    graph = lower(parse(program(circuit), "t.txt"), backend="numpy")
    assert gates_of(graph) == [gate, "mul", "sum"], graph.dump()
    assert graph.stages[0].params[0].value == axis and graph.stages[0].operands == (0,)
    # listed once, where the circuit is written (log(softmax's circuit): the log_softmax only)
    assert [(g, span.line, span.col) for g, span in graph.rewrites] == [(gate, 3, 5)]
    fine = lower(parse(program(circuit), "t.txt"), "fine", backend="numpy")
    assert fine.rewrites == () and gate not in gates_of(fine), fine.dump()
    assert "exp" in gates_of(fine) or "logsumexp_axis" in gates_of(fine)


@pytest.mark.parametrize("circuit, gate, axis", CIRCUITS, ids=IDS)
def test_the_rewrite_is_listed_in_the_docstring(circuit, gate, axis):
    text = stagegen.generate(program(circuit), backend="numpy")
    listed = " ".join(text.split("Rewrites (", 1)[1].split("\n\n", 1)[0].split())  # unwrapped
    assert listed.count(" -> ") == 1 and f" -> {gate}: no overflow for any floats" in listed
    assert f"_{gate}(S, axis={axis})" in text
    assert "Rewrites" not in stagegen.generate(program(circuit), backend="numpy", gates="fine")


@pytest.mark.parametrize("circuit, gate, axis", CIRCUITS, ids=IDS)
@pytest.mark.parametrize("low, high", [(-3.0, 3.0), (990.0, 1000.0), (-1000.0, -990.0)])
def test_values_and_gradients_at_any_logits(circuit, gate, axis, low, high):
    rng = np.random.default_rng(zlib.crc32(f"{circuit} {low}".encode()))
    grouped = stagegen.load(program(circuit), backend="numpy")
    fine = stagegen.load(program(circuit), backend="numpy", gates="fine")
    for _ in range(3):
        S, W = rng.uniform(low, high, (3, 4)), rng.uniform(-3, 3, (3, 4))
        value, grad = reference(gate, axis, S, W)
        got, (dS, dW) = grouped.value_and_grad(S, W)
        assert got == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(dS, grad, rtol=1e-9, atol=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            naive = fine.value_and_grad(S, W)[0]
        if abs(low) > 900 and "max(" not in circuit and "logsumexp" not in circuit:
            # as written, exp overflows (inf / inf, log(inf)) or underflows (0 / 0, log(0))
            assert not np.isfinite(naive)
    report = stagegen.verify(program(circuit), backend="numpy", points=4, domain={"S": (low, high)})
    assert report.ok, report.table()


# (circuit, what it stays as: one gate not rewritten, or a rewrite of a part)
NOT_REWRITTEN = [
    # keepdims left out or False: the sum broadcasts as written (S is square here)
    "exp(S) / sum(exp(S), axis=1)",
    "exp(S) / sum(exp(S), axis=1, keepdims=False)",
    "S - logsumexp(S, axis=0)",
    # an axis tuple, the axes of the parts not alike, other operands
    "exp(S) / sum(exp(S), axis=(1,), keepdims=True)",
    "exp(S) / sum(exp(T), axis=1, keepdims=True)",
    "exp(S) / sum(exp(S * 2), axis=1, keepdims=True)",
    "T - logsumexp(S, axis=1, keepdims=True)",
    "log(exp(S) / sum(exp(T), axis=0, keepdims=True))",
]


@pytest.mark.parametrize("circuit", NOT_REWRITTEN)
def test_other_circuits_are_kept_as_written(circuit):
    text = f"S: matrix(3, 3)\nT: matrix(3, 3)\nP = {circuit}\nL = sum(sin(P))\n"
    graph = lower(parse(text, "t.txt"), backend="numpy")
    assert graph.rewrites == () and not {"softmax", "log_softmax"} & set(gates_of(graph)), graph.dump()
    report = stagegen.verify(text, backend="numpy", points=4)
    assert report.ok, report.table()


@pytest.mark.parametrize("k, j", [(1, 0), (1, -1), (0, 1)])
def test_a_shift_along_another_axis_stays_a_shift(k, j):
    """exp(S - max(S, axis=j)) / sum(..., axis=k) with j written unlike k: the
    softmax along k of S - max(S, axis=j), the max stage kept (a shift along
    another axis changes the softmax; axis -1 is axis 1 of a matrix, but axes
    are compared as written)."""
    circuit = SHIFTED.format(k=k).replace(f"max(S, axis={k}", f"max(S, axis={j}")
    graph = lower(parse(program(circuit), "t.txt"), backend="numpy")
    assert gates_of(graph) == ["max_axis", "sub", "softmax", "mul", "sum"], graph.dump()
    assert graph.stages[0].params[0].value in (j, j % 2) and graph.stages[2].params[0].value == k
    rng = np.random.default_rng(k * 10 + j)
    S, W = rng.uniform(-3, 3, (3, 4)), rng.uniform(-3, 3, (3, 4))
    e = np.exp(S - np.max(S, axis=j, keepdims=True))  # the circuit as written, in NumPy
    written = np.sum(W * e / np.sum(e, axis=k, keepdims=True))
    assert stagegen.load(program(circuit), backend="numpy").value_and_grad(S, W)[0] == pytest.approx(
        written, rel=1e-13
    )
    report = stagegen.verify(program(circuit), backend="numpy", points=4)
    assert report.ok, report.table()


def test_a_circuit_in_two_statements_is_one_stage():
    text = (
        "S: matrix(3, 4)\nA = log(exp(S) / sum(exp(S), axis=1, keepdims=True))\n"
        "B = exp(S) / sum(exp(S), axis=1, keepdims=True)\nL = sum(A * B)\n"
    )
    graph = lower(parse(text, "t.txt"), backend="numpy")
    assert gates_of(graph) == ["log_softmax", "softmax", "mul", "sum"], graph.dump()
    assert sorted(g for g, _ in graph.rewrites) == ["log_softmax", "softmax"]
    report = stagegen.verify(text, backend="numpy", points=4, domain={"S": (990.0, 1000.0)})
    assert report.ok, report.table()


def test_a_3d_array_along_its_middle_axis():
    text = (
        "X: array(2, 3, 4)\nY: array(2, 3, 4)\n" f"L = sum(Y * ({SHIFTED.format(k=1).replace('S', 'X')}))\n"
    )
    graph = lower(parse(text, "t.txt"), backend="numpy")
    assert gates_of(graph)[0] == "softmax" and "max_axis" not in gates_of(graph), graph.dump()
    report = stagegen.verify(text, backend="numpy", points=4, domain={"X": (-1000.0, -990.0)})
    assert report.ok, report.table()


@pytest.mark.parametrize(
    "circuit", ["exp(v) / sum(exp(v), axis=1, keepdims=True)", "v - logsumexp(v, axis=-2, keepdims=True)"]
)
def test_an_axis_out_of_range_is_still_an_error_at_the_circuit(circuit):
    with pytest.raises(stagegen.StagegenError, match=r"axis -?\d is out of range for shape \(3,\)") as info:
        stagegen.generate(f"v: vector(3)\nL = sum({circuit})\n", backend="numpy")
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (2, 9)

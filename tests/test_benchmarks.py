"""The benchmark runner works, and its references compute what they claim.

The runner is a smoke test here (no timing is asserted); the hand-written
references and the workload builders are checked numerically, so a table
never compares a candidate with a wrong reference.
"""

import functools
import math
import re
import subprocess
import sys

import numpy as np
import pytest

import stagegen
from benchmarks import arrays, growth, scalar, second, step
from benchmarks.compare import mismatch
from benchmarks.peers import NOT_INSTALLED, Skip, need
from benchmarks.timing import exponent, growth_factor
from helpers import ROOT, example

PEERS = ("jax.jit", "torch", "HIPS autograd", "casadi")


@pytest.fixture(scope="module")
def quick_run() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quick_run_prints_its_tables(quick_run):
    out = quick_run
    assert out.startswith("machine: ") and "command: python -m benchmarks --quick" in out
    for title in (
        "Workload 1:",
        "Workload 2:",
        "Workload 3:",
        "Workloads 4 and 5:",
        "Error location:",
        "Entry checks:",
        "Second order and Jacobians:",
        "The numba backend's loops:",
    ):
        assert f"### {title}" in out
    # workload 4's NumPy candidates, once more in a process of their own
    alone = out.split("in a process that runs only NumPy:", 1)[1].split("with the peers in one process:", 1)[
        0
    ]
    names = [line.split("|")[1].strip() for line in alone.splitlines() if line.startswith("| ")]
    assert names[2:] == list(arrays.NUMPY_ONLY)
    rows = [
        line for line in out.splitlines() if line.startswith("| seed |") or line.startswith("| compact |")
    ]
    assert len(rows) == 2
    sizes, per_pass = out.split("### Scale", 1)[1].split("CPU seconds per pass", 1)
    rows = [line.split(" |")[0] for line in sizes.splitlines() if line.startswith("| 1")]
    assert rows == ["| 100", "| 1,000", "| 10,000"]
    assert "fitted exponent (log-log least squares over 100 ... 10,000): wall " in sizes
    rows = [line.split(" |")[0] for line in per_pass.splitlines() if line.startswith("| 1")]
    assert rows == ["| 1,000", "| 10,000"]


def test_scale_workload_has_one_stage_per_line():
    import stagegen
    from benchmarks.scale import exponent, source

    assert len(stagegen.build(source(60)).graph.stages) == 60
    assert abs(exponent([10, 100, 1000], [2.0, 20.0, 200.0]) - 1.0) < 1e-12


def test_quick_run_times_or_skips_every_candidate(quick_run):
    rows = [line for line in quick_run.splitlines() if line.startswith("| ") and "---" not in line]
    for line in rows:
        measured = ("| hand listing |", "| stagegen seed |", "| stagegen compact |", "| stagegen numpy ")
        if line.startswith(measured):
            assert line.split("|")[2].strip()[0].isdigit(), line
        assert "wrong result" not in line, line
    for peer in PEERS:
        peer_rows = [line for line in rows if line.startswith(f"| {peer}")]
        assert peer_rows and all(
            NOT_INSTALLED in line or line.split("|")[2].strip()[0].isdigit() for line in peer_rows
        )


def test_missing_peer_is_a_skip():
    with pytest.raises(Skip, match=re.escape(NOT_INSTALLED)):
        need("no_such_benchmark_peer")


def test_hand_listings_match_the_generated_modules():
    for name, (path, point, hand, hand_value, formula) in scalar.WORKLOADS.items():
        module = stagegen.load(example(path.split("/")[1]))
        assert mismatch(hand(*point), module.value_and_grad(*point)) < 1e-14, name
        assert hand_value(*point) == pytest.approx(formula(math, *point), rel=1e-15)
        assert hand_value(*point) == pytest.approx(module.forward(*point)[0], rel=1e-15)


def test_sympy_candidates_compute_value_and_gradient():
    for name, (_, point, hand, _, formula) in scalar.WORKLOADS.items():
        for cse in (False, True):
            fn = scalar.sympy_lambdified(formula, len(point), cse)
            assert mismatch(fn(*point), hand(*point)) < 1e-13, (name, cse)


def test_composed_function_is_the_notes_function_at_n_1():
    module = stagegen.load(growth.staged_text(1))
    assert mismatch(module.value_and_grad(3.0, -4.0), scalar.notes_hand(3.0, -4.0)) < 1e-15


@pytest.mark.parametrize("n", [2, 5])
def test_composed_function_staged_text_and_formula_agree(n):
    module = stagegen.load(growth.staged_text(n))
    value, (dx, dy) = module.value_and_grad(3.0, -4.0)
    assert value == pytest.approx(growth.reference(n), rel=1e-13)
    h = 1e-6
    fx = (growth.formula(math, 3.0 + h, -4.0, n) - growth.formula(math, 3.0 - h, -4.0, n)) / (2 * h)
    fy = (growth.formula(math, 3.0, -4.0 + h, n) - growth.formula(math, 3.0, -4.0 - h, n)) / (2 * h)
    assert (dx, dy) == pytest.approx((fx, fy), rel=1e-6, abs=1e-9)


def test_sympy_growth_task_lambdifies_value_and_gradient():
    results, stopped = growth.capped(growth.sympy_task, [2], cap=120)
    assert stopped is None
    fn = growth.lambdified(results[2]["source"])
    module = stagegen.load(growth.staged_text(2))
    assert mismatch(fn(3.0, -4.0), module.value_and_grad(3.0, -4.0)) < 1e-12


def test_function_lines_counts_one_function():
    text = stagegen.generate(example("notes.txt"), style="compact")
    assert growth.function_lines(text, "value_and_grad") == 30


def test_array_references_agree_with_the_scalar_listing():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    rows = [scalar.notes_hand(a, b) for a, b in zip(x, y, strict=True)]
    want = np.array([[f, dx, dy] for f, (dx, dy) in rows]).T
    safe = functools.partial(arrays.notes_listing, sigmoid=arrays.safe_sigmoid)
    for hand in (arrays.notes_listing, safe, arrays.notes_hand_inplace):
        f, (dx, dy) = hand(x, y)
        assert mismatch((f, dx, dy), tuple(want)) < 1e-13, hand
    assert mismatch(arrays.notes_hand_value(x, y), want[0]) < 1e-14


def test_matrix_reference_gradient_is_the_derivative():
    rng = np.random.default_rng(4)
    W, X, Y = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    L, (dW, dX) = arrays.matrix_hand(W, X, Y)
    assert L == pytest.approx(arrays.matrix_hand_value(W, X, Y), rel=1e-15)
    value = arrays.matrix_hand_value
    h = 1e-3  # L is quadratic in W alone and in X alone: central differences are exact there
    VW, VX = rng.standard_normal(W.shape), rng.standard_normal(X.shape)
    fd_W = (value(W + h * VW, X, Y) - value(W - h * VW, X, Y)) / (2 * h)
    fd_X = (value(W, X + h * VX, Y) - value(W, X - h * VX, Y)) / (2 * h)
    assert np.sum(dW * VW) == pytest.approx(fd_W, rel=1e-9)
    assert np.sum(dX * VX) == pytest.approx(fd_X, rel=1e-9)


def test_stagegen_numpy_candidate_matches_hand_numpy():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(20), rng.standard_normal(20)
    module = arrays.stagegen_numpy(arrays.NOTES_LINES, style="compact")
    assert mismatch(module.value_and_grad(x, y), arrays.notes_listing(x, y)) < 1e-13


def test_step_hand_gradient_is_the_derivative_and_the_module_agrees():
    rng = np.random.default_rng(6)
    n = 4
    X = rng.standard_normal((n, step.D))
    W1, W2 = 0.1 * rng.standard_normal((step.D, step.H)), 0.1 * rng.standard_normal((step.H, step.C))
    b1, b2 = 0.1 * rng.standard_normal((1, step.H)), 0.1 * rng.standard_normal((1, step.C))
    Y = np.eye(step.C)[rng.integers(0, step.C, n)]
    params = [W1, b1, W2, b2]
    loss, grads = step.hand(X, *params, Y)
    # the hand listing divides by N = 200: the same program at n rows still has that constant
    h = 1e-6
    for k, g in enumerate(grads):
        direction = rng.standard_normal(g.shape)
        up = [p + h * direction if j == k else p for j, p in enumerate(params)]
        down = [p - h * direction if j == k else p for j, p in enumerate(params)]
        fd = (step.hand(X, *up, Y)[0] - step.hand(X, *down, Y)[0]) / (2 * h)
        assert np.sum(g * direction) == pytest.approx(fd, rel=1e-6), k
    module = stagegen.load(step.SOURCE, backend="numpy", style="compact", wrt="W1,b1,W2,b2")
    assert mismatch(module.value_and_grad(X, *params, Y), (loss, grads)) < 1e-9


def test_fitted_exponents():
    ns = [1, 2, 4, 8, 16]
    assert exponent(ns, [3 * n**1.5 for n in ns]) == pytest.approx(1.5)
    assert growth_factor(ns, [2 * 4.0**n for n in ns]) == pytest.approx(4.0)


def test_without_try_is_the_same_code_unwrapped():
    from benchmarks.locate import without_try

    text = stagegen.generate("f = log(x) * y")
    plain = without_try(text)
    functions = plain.split("def _locate")[0]
    assert "try:" not in functions and "_locate(exc)" not in functions
    module = stagegen.module_from_text(plain, "plain")
    assert module.value_and_grad(2.0, 3.0) == stagegen.module_from_text(text, "t").value_and_grad(2.0, 3.0)


def test_second_order_references_agree_with_the_generated_functions():
    """SymPy's Hessian, Hessian-vector product and Jacobian, lambdified, give
    what stagegen's hvp, hessian and value_and_jacobian give (the tables check
    this before timing; here it is asserted)."""
    hvp = second.hvp_builders()
    point = (*second.NOTES_POINT, *second.DIRECTION)
    assert (
        mismatch(hvp["sympy hessian @ v, lambdify cse"]()(*point), hvp["stagegen hvp (compact)"]()(*point))
        < 1e-12
    )
    hessian = second.hessian_builders()
    ours = hessian["stagegen hessian (compact)"]()(*second.NOTES_POINT)
    assert mismatch(hessian["sympy hessian, lambdify cse"]()(*second.NOTES_POINT), ours) < 1e-12
    jacobian = second.jacobian_builders()
    ours = jacobian["stagegen value_and_jacobian (compact)"]()(*second.ARM_POINT)
    for name in ("stagegen forward + backward per output", "sympy jacobian, lambdify cse"):
        assert mismatch(jacobian[name]()(*second.ARM_POINT), ours) < 1e-12, name


def test_recurrence_file_and_formula_agree():
    from benchmarks import recurrence

    class Floats:
        exp = staticmethod(math.exp)

    for n in (1, 2, 5):
        module = stagegen.load(recurrence.source(n))
        value, grads = module.value_and_grad(*recurrence.POINT)
        assert abs(value - recurrence.formula(Floats, *recurrence.POINT, n)) <= 1e-15 * abs(value)
        h = 1e-6
        for k in range(2):
            up, down = list(recurrence.POINT), list(recurrence.POINT)
            up[k] += h
            down[k] -= h
            slope = (recurrence.formula(Floats, *up, n) - recurrence.formula(Floats, *down, n)) / (2 * h)
            assert abs(grads[k] - slope) <= 1e-7 * max(1.0, abs(slope))
    assert len(stagegen.build(recurrence.source(64)).graph.stages) == 638


def test_recurrence_peers_compute_value_and_gradient():
    from benchmarks import recurrence

    want = recurrence.stagegen_math(6)(*recurrence.POINT)
    for build in (recurrence.casadi_function, recurrence.jax_function):
        try:
            got = build(6)(*recurrence.POINT)
        except Skip:
            continue
        assert mismatch(got, want) < 1e-12


def test_broadcast_table_checks_the_numba_module_against_the_numpy_one():
    lines = arrays.broadcast(quick=True)
    rows = [line for line in lines if line.startswith("| stagegen numba")]
    assert len(rows) == 2 and all("wrong result" not in row for row in rows)

"""where, comparisons and masks: values and gradients against SymPy's Piecewise
(written here by hand, evaluated at 50 digits) and finite differences, NaN
safety where an untaken branch has no value, and what the code says."""

import math
import random
import types
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import stagegen
from gradcheck import FD_RTOL, RTOL, central_difference, close, reference
from helpers import function_lines

x, y = sp.symbols("x y", real=True)


def pw(*pairs):
    return sp.Piecewise(*pairs)


# (source, the same function as SymPy writes it, independently)
PROGRAMS = [
    ("f = where(x > 0, sqrt(x), 0) * y", pw((sp.sqrt(x), x > 0), (0, True)) * y),
    ("f = where(x > 1, log(x - 1), -x * y)", pw((sp.log(x - 1), x > 1), (-x * y, True))),
    # nested: the inner sqrt is guarded by both conditions (x < 0 takes 0 outside)
    (
        "f = where(x < 0, y, where(x > -1, sqrt(x) + y, 0))",
        pw((y, x < 0), (sp.sqrt(x) + y, x > -1), (0, True)),
    ),
    ("f = where((x > 0) & (y < 1), x * y, x + y)", pw((x * y, sp.And(x > 0, y < 1)), (x + y, True))),
    (
        "f = where((x > 0) | ~(y <= 1), exp(x) * y, y**2)",
        pw((sp.exp(x) * y, sp.Or(x > 0, y > 1)), (y**2, True)),
    ),
    # a mask as a number is 1.0 or 0.0, with no gradient of its own
    ("f = (x > y) * x * y + (x != 2) * y", pw((x * y, x > y), (0, True)) + y),
    ("f = x * (x >= 0) - (y == 1) + y", pw((x, x >= 0), (0, True)) + y),
    # a stage both branches read is computed and differentiated as any stage
    ("s = sin(x) * y\nf = where(x > 0, s, s * s)", pw((sp.sin(x) * y, x > 0), ((sp.sin(x) * y) ** 2, True))),
]

IDS = [source.split("\n")[-1] for source, _ in PROGRAMS]


def _points(n=40, seed=0):
    rng = random.Random(seed)
    return [(rng.uniform(-3, 3), rng.uniform(-3, 3)) for _ in range(n)]


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("source, meaning", PROGRAMS, ids=IDS)
def test_math_backend_matches_piecewise_reference(source, meaning, style):
    module = stagegen.load(source, style=style)
    assert module.INPUTS == ("x", "y")
    for point in _points():
        value, grads = module.value_and_grad(*point)
        ref_value, ref_grads = reference(meaning, (x, y), point)
        assert close(value, ref_value, RTOL, 1.0), (point, value, ref_value)
        for g, r in zip(grads, ref_grads, strict=True):
            assert isinstance(g, float) and close(g, r, RTOL, 1.0), (point, grads, ref_grads)


@pytest.mark.parametrize("source, meaning", PROGRAMS, ids=IDS)
def test_gradients_match_finite_differences(source, meaning):
    module = stagegen.load(source, style="compact")

    def f(*p):
        return module.forward(*p)[0]

    compared = 0
    for point in _points(seed=1):
        _, grads = module.value_and_grad(*point)
        for i, g in enumerate(grads):
            fd = central_difference(f, point, i)
            if not close(fd, central_difference(f, point, i, 5e-4), FD_RTOL, 1.0):
                continue  # a condition flips inside the stencil
            assert close(g, fd, FD_RTOL, 1.0), (source, point, i, g, fd)
            compared += 1
    assert compared >= 60


@pytest.mark.parametrize("source, meaning", PROGRAMS, ids=IDS)
def test_numpy_backend_on_arrays_matches_the_reference(source, meaning):
    module = stagegen.load(source, backend="numpy", style="compact")
    points = _points(200, seed=2)
    xs, ys = (np.array(column) for column in zip(*points, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an untaken branch's invalid values raise no warning
        value, (dx, dy) = module.value_and_grad(xs, ys)
    for k, point in enumerate(points[:40]):
        ref_value, (rx, ry) = reference(meaning, (x, y), point)
        assert close(value[k], ref_value, RTOL, 1.0)
        assert close(dx[k], rx, RTOL, 1.0) and close(dy[k], ry, RTOL, 1.0), (point, dx[k], dy[k], rx, ry)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))


SQRT = "f = where(x > 0, sqrt(x), 0)"


@pytest.mark.parametrize("backend", ["math", "numpy", "array"])
@pytest.mark.parametrize("style", ["seed", "compact"])
def test_untaken_branch_gives_zero_not_nan(backend, style):
    """The trap of JAX's FAQ (jax#1052): where(x > 0, sqrt(x), 0) at x <= 0 has
    value 0 and gradient 0, not NaN and not a math domain error."""
    module = stagegen.load(SQRT, backend=backend, style=style)
    for point in (-2.0, -1e-300, -0.0, 0.0):
        value, (dx,) = module.value_and_grad(point)
        assert value == 0.0 and dx == 0.0, (point, value, dx)
        _, cache = module.forward(point)
        assert module.backward(1.0, cache) == (0.0,)
    value, (dx,) = module.value_and_grad(4.0)
    assert value == 2.0 and dx == 0.25
    if backend != "math":
        xs = np.array([-4.0, -0.0, 0.0, 4.0, 0.25])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, (dx,) = module.value_and_grad(xs)
        assert value.tolist() == [0.0, 0.0, 0.0, 2.0, 0.5]
        assert dx.tolist() == [0.0, 0.0, 0.0, 0.25, 1.0]


def test_untaken_branch_on_torch_and_jax():
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    module = stagegen.load(SQRT, backend="array", style="compact")
    for xs in (torch.tensor([-4.0, 0.0, 4.0], dtype=torch.float64), jnp.asarray([-4.0, 0.0, 4.0])):
        value, (dx,) = module.value_and_grad(xs)
        assert np.asarray(value).tolist() == [0.0, 0.0, 2.0]
        assert np.asarray(dx).tolist() == [0.0, 0.0, 0.25]


def test_second_order_is_nan_safe_too():
    """hvp and jvp of a guarded stage: their tangents are selected as the gradient is."""
    module = stagegen.load("f = where(x > 0, x * sqrt(x), -x * y)", with_="hvp,jvp")
    for point in _points(30, seed=3):
        xv, yv = point
        _, grads, hv = module.hvp(xv, yv, 1.0, 0.0)
        # d/dx of the gradient, by hand: 0.75 / sqrt(x) for x > 0; 0 elsewhere (d2/dxdy -1)
        want = (0.75 / math.sqrt(xv), 0.0) if xv > 0 else (0.0, -1.0)
        assert all(close(h, w, RTOL, 1.0) for h, w in zip(hv, want, strict=True)), (point, hv, want)
        value, tangent = module.jvp(xv, yv, 1.0, 0.0)
        assert close(tangent, grads[0], RTOL, 1.0)
    assert module.hvp(-1.0, 2.0, 1.0, 1.0)[2] == (-1.0, -1.0)


def test_only_branch_exclusive_stages_are_guarded():
    text = stagegen.generate("s = sqrt(x)\nf = where(x > 0, s * y, 0) + s\n", backend="math")
    lines = function_lines(text, "forward")
    assert "        s = math.sqrt(x)  # (1)" in lines  # the unguarded path reads it
    assert "        sy = s * y if xgt0 else 0.0  # (3)" in lines


def test_a_condition_guards_only_stages_of_its_shape():
    """A broadcast operand smaller than the condition is not guarded (its gradient is
    summed over the condition's axes): correct wherever its own value is finite."""
    source = "X: matrix(2, 3)\nb: vector(3)\nf = sum(where(X > 0, sqrt(b) * X, X))\n"
    text = stagegen.generate(source, backend="numpy", style="compact")
    assert "    sqrtb = np.sqrt(b)  # (2)" in function_lines(text, "forward")
    module = stagegen.load(source, backend="numpy")
    X = np.array([[1.0, -2.0, 3.0], [-1.0, 2.0, 0.5]])
    b = np.array([4.0, 9.0, 0.25])
    _, (dX, db) = module.value_and_grad(X, b)
    mask = X > 0
    assert np.allclose(dX, np.where(mask, np.sqrt(b), 1.0), rtol=1e-15)
    assert np.allclose(db, np.sum(np.where(mask, 0.5 / np.sqrt(b) * X, 0.0), axis=0), rtol=1e-15)


def test_masks_have_no_adjoint():
    text = stagegen.generate("m = x > y\nf = where(m, x, y) * (x < 1)\n", style="compact")
    assert "dm" not in text and "dxlt1" not in text


def test_numpy_computes_an_untaken_branch_quietly():
    text = stagegen.generate(SQRT, backend="numpy")
    forward = text.split("def forward(", 1)[1]
    assert '    with np.errstate(all="ignore"):\n        sqrtx = np.sqrt(x)  # (2)\n' in forward
    backward = text.split("def backward(", 1)[1]
    quiet = '    with np.errstate(all="ignore"):\n'
    quiet += "        dx = np.where(xgt0, (0.5 / sqrtx) * dsqrtx, 0.0)  # (2)\n"
    assert quiet in backward


def test_verify_checks_where_programs():
    report = stagegen.verify("x: scalar in [0.5, 3]\ny: scalar\nf = where(x > 1, log(x - 1) * y, y / x)\n")
    assert report.ok, report.table()


UNDEFINED_BRANCH = "x: scalar\ny: scalar\nf = where(x > 0, sqrt(x) * y, -x * y)\n"


@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_verify_keeps_points_where_only_the_untaken_branch_has_no_value(backend):
    """sqrt(x) has no real value at x < 0, where the where takes -x * y: such
    points are checked (the else branch with them), not discarded."""
    report = stagegen.verify(UNDEFINED_BRANCH, points=12, backend=backend)
    assert report.ok and report.discarded == 0, report.table()
    at = stagegen.verify(UNDEFINED_BRANCH, at=[{"x": -2.0, "y": 3.0}], backend=backend)
    assert at.ok and at.points == 1, at.table()
    assert {row.quantity: row.points for row in at.rows}["dx"] == 1


def test_verify_catches_a_wrong_rule_in_the_branch_the_undefined_one_leaves():
    """The else branch's gradient made wrong: caught, at the points where
    x < 0 (the then branch has no value there; before, no point was kept)."""
    good = stagegen.generate(UNDEFINED_BRANCH)
    bad = good.replace("else (-1) * dnegx", "else (-1.5) * dnegx")
    assert bad != good
    module = types.ModuleType("edited")
    exec(compile(bad, "<edited>", "exec"), module.__dict__)
    report = stagegen.verify(module, points=12)
    failed = {row.quantity for row in report.rows if not row.ok}
    assert "dx" in failed, report.table()


def test_verify_discards_points_where_the_taken_branch_has_no_value():
    source = "x: scalar\nf = where(x > 0, sqrt(-x), x)\n"  # the taken branch is sqrt of a negative
    report = stagegen.verify(source, points=8)
    assert report.ok and report.discarded > 0, report.table()
    given = stagegen.verify(source, at=[{"x": 2.0}])
    assert not given.ok and "not finite and real at the point given" in given.table()


def test_verify_keeps_array_points_whose_elements_take_the_defined_branch():
    source = "x: vector(n)\ny: vector(n)\nf = sum(where(x > 0, sqrt(x) * y, -x * y))\n"
    for backend in ("numpy", "array"):
        report = stagegen.verify(source, points=6, backend=backend)
        assert report.ok and report.discarded == 0, report.table()


# -- random where programs: a lazy reference evaluator, finite differences, NumPy --------

X, Y = ("x",), ("y",)
SMOOTH = ("add", "sub", "mul")
UNSAFE = ("sqrt", "log", "recip")  # no value where their argument is <= 0


def _text(node) -> str:
    op, *args = node
    if op in ("x", "y"):
        return op
    if op == "num":
        return repr(args[0])
    if op in ("sin", "tanh", "sqrt", "log"):
        return f"{op}({_text(args[0])})"
    if op == "recip":
        return f"(1 / {_text(args[0])})"
    if op == "where":
        return f"where({_text(args[0])}, {_text(args[1])}, {_text(args[2])})"
    if op == "not":
        return f"~{_text(args[0])}"
    symbol = {"add": "+", "sub": "-", "mul": "*", "gt": ">", "lt": "<", "and": "&", "or": "|"}[op]
    return f"({_text(args[0])} {symbol} {_text(args[1])})"


def _eval(node, env):
    """The program's value at floats (`env`: input -> value), a branch evaluated
    only where it is taken."""
    op, *args = node
    if op in ("x", "y"):
        return env[op]
    if op == "num":
        return args[0]
    if op == "where":
        return _eval(args[1], env) if _eval(args[0], env) else _eval(args[2], env)
    a = [_eval(arg, env) for arg in args]
    return {
        "add": lambda: a[0] + a[1],
        "sub": lambda: a[0] - a[1],
        "mul": lambda: a[0] * a[1],
        "sin": lambda: math.sin(a[0]),
        "tanh": lambda: math.tanh(a[0]),
        "sqrt": lambda: math.sqrt(a[0]),
        "log": lambda: math.log(a[0]),
        "recip": lambda: 1 / a[0],
        "gt": lambda: a[0] > a[1],
        "lt": lambda: a[0] < a[1],
        "and": lambda: a[0] and a[1],
        "or": lambda: a[0] or a[1],
        "not": lambda: not a[0],
    }[op]()


def _inputs(node) -> bool:
    return node[0] in ("x", "y") or any(isinstance(a, tuple) and _inputs(a) for a in node[1:])


@st.composite
def _smooth(draw, depth):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([X, Y, ("num", 0.5), ("num", 2.0)]))
    kind = draw(st.sampled_from(("sin", "tanh", *SMOOTH)))
    if kind in SMOOTH:
        return (kind, draw(_smooth(depth - 1)), draw(_smooth(depth - 1)))
    return (kind, draw(_smooth(depth - 1)))


@st.composite
def _condition(draw, g):
    """g > 0, maybe joined with another comparison (the unsafe branch stays where g > 0)."""
    cond = ("gt", g, ("num", 0.0))
    extra = draw(st.sampled_from(["", "and", "not-or"]))
    if extra:
        other = ("lt", draw(_smooth(1)), ("add", draw(_smooth(1)), Y))
        cond = ("and", cond, other) if extra == "and" else ("not", ("or", ("not", cond), other))
    return cond


@st.composite
def _guarded(draw, depth):
    """A where whose taken branch has no value where its condition fails."""
    g = draw(_smooth(depth))
    g = g if _inputs(g) else ("add", g, X)  # a condition that depends on an input
    unsafe = (draw(st.sampled_from(UNSAFE)), g)
    taken = draw(st.sampled_from([unsafe, ("mul", unsafe, draw(_smooth(1))), ("sin", unsafe)]))
    cond, other = draw(_condition(g)), draw(_smooth(depth))
    return ("where", cond, taken, other) if draw(st.booleans()) else ("where", ("not", cond), other, taken)


@st.composite
def where_programs(draw):
    node = draw(_guarded(2))
    for _ in range(draw(st.integers(0, 2))):
        node = (draw(st.sampled_from(SMOOTH)), node, draw(st.one_of(_smooth(1), _guarded(1))))
    return node


RANDOM_POINTS = _points(24, seed=7)
# and points on conditions' boundaries, where the gradient is the taken branch's (no finite differences)
POINTS = RANDOM_POINTS + [(0.0, 0.0), (-1.0, 1.0), (1e-9, -2.0)]


@given(where_programs())
def test_random_where_programs(node):
    source = "f = " + _text(node) + "\n"
    module = stagegen.load(source, inputs=None, style="compact")
    names = module.INPUTS
    numpy_module = stagegen.load(source, backend="numpy")

    def ref(*p):
        return _eval(node, dict(zip(names, p, strict=True)))

    for point in POINTS:
        p = point[: len(names)]
        value, grads = module.value_and_grad(*p)
        assert close(value, ref(*p), 1e-12, 1.0), (source, p)
        for i, g in enumerate(grads):
            assert math.isfinite(g), (source, p, grads)
            if point not in RANDOM_POINTS:
                continue
            fd = central_difference(ref, p, i)
            if close(fd, central_difference(ref, p, i, 5e-4), FD_RTOL, 1.0):  # no condition flips nearby
                assert close(g, fd, FD_RTOL, 1.0), (source, p, i, g, fd)
    arrays = [np.array([point[k] for point in POINTS]) for k in range(len(names))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, grads = numpy_module.value_and_grad(*arrays)
    for k, point in enumerate(POINTS):
        value, want = module.value_and_grad(*point[: len(names)])
        assert close(values[k], value, 1e-12, 1.0)
        assert all(close(g[k], w, 1e-12, 1.0) for g, w in zip(grads, want, strict=True)), (source, point)


def test_a_stage_two_wheres_read_is_guarded_by_either_condition():
    source = "p = x > 1\nf = where(x > 0, sqrt(x), 0) + where(p, sqrt(x) * y, y)\n"
    text = stagegen.generate(source)
    assert "        sqrtx = math.sqrt(x) if p or xgt0 else 0.0  # (3)" in function_lines(text, "forward")
    module = stagegen.load(source)
    assert module.value_and_grad(-1.0, 2.0) == (2.0, (0.0, 1.0))
    value, (dx, dy) = module.value_and_grad(4.0, 3.0)
    assert (value, dx, dy) == (8.0, 0.25 + 0.75, 2.0)


def test_a_mask_computed_later_guards_nothing_before_it():
    """Stages run in the source's order: a condition written after a stage cannot
    guard it. The docstring names the stage, and the math backend's error names it."""
    source = "f = where(x > 0, sqrt(x), 0) + where(x > 1, sqrt(x) * y, y)\n"
    text = stagegen.generate(source)
    assert "(computed and differentiated everywhere): sqrtx (2)." in " ".join(text.split())
    with pytest.raises(ValueError, match=r"stage \(2\) sqrtx = math.sqrt\(x\)"):
        stagegen.load(source).value_and_grad(-1.0, 2.0)


@pytest.mark.parametrize("source, meaning", PROGRAMS[:4], ids=IDS[:4])
def test_numba_compiles_where_programs_as_the_math_backend(source, meaning, tmp_path, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    compiled, python = stagegen.load(source, backend="numba"), stagegen.load(source)
    for point in _points(20, seed=9) + [(-1.0, 0.5), (-0.5, 2.0)]:
        assert compiled.value_and_grad(*point) == python.value_and_grad(*point), point

"""Numerics: grouped gates at extreme inputs, stage-located errors, subgradient
comments, visible rewrites, and a generated gradient inside scipy's optimiser."""

import math
import random
import runpy
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.optimize import minimize

import stagegen
from gradcheck import RTOL, central_difference, close
from helpers import EXAMPLES, adjoint_lines, example
from stagegen.gates import REGISTRY

GROUPED = sorted(name for name, gate in REGISTRY.items() if gate.grouped)
EXTREMES = [
    1e3,
    -1e3,
    1e308,
    -1e308,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    0.0,
    -0.0,
    -745.0,
    -720.0,
    -699.5,
]
FLOAT_MAX = 1.7976931348623157e308


OTHER = 0.5  # the value of a grouped gate's other operands (logaddexp(x, 0.5))


def reference(gate, x: float):
    """(value, derivative in x) of the gate's meaning at x (its other operands at
    OTHER), evaluated by mpmath with 2,200 bits, enough for cancellations such
    as exp(5e-324) - 1 near the smallest float; None where the meaning is not real."""
    t = sp.Symbol("t", real=True)
    f = gate.forward(t, *[sp.Rational(OTHER)] * (len(gate.operands) - 1))
    if abs(x) > 1e100 and gate.name == "norm_cdf":
        # mpmath's erfc fails above ~1e154 (n**2 overflows a float in its series
        # test); Phi and its slope at 1e100 are those at 1e308 to every float digit
        x = math.copysign(1e100, x)
    with mpmath.workprec(2200):
        value = sp.lambdify(t, f, "mpmath")(mpmath.mpf(x))
        try:
            slope = sp.lambdify(t, sp.diff(f, t), "mpmath")(mpmath.mpf(x))
        except ZeroDivisionError:  # a pole of the slope (log2'(0)): infinite
            slope = mpmath.inf
        if isinstance(value, mpmath.mpc) or isinstance(slope, mpmath.mpc):
            return None
        return +value, +slope


def same(got: float, ref) -> bool:
    """got equals the reference rounded to float64, to RTOL or within one ulp."""
    r = float(ref)
    return abs(got - r) <= max(RTOL * abs(r), math.ulp(r))


def representable(x) -> bool:
    return mpmath.isfinite(x) and abs(x) <= FLOAT_MAX


@pytest.mark.parametrize("x", EXTREMES, ids=repr)
@pytest.mark.parametrize("name", GROUPED)
def test_grouped_gates_at_extreme_inputs(name, x):
    gate = REGISTRY[name]
    operands = ", ".join(["x", *[repr(OTHER)] * (len(gate.operands) - 1)])
    module = stagegen.load(f"f = {gate.source}({operands})")
    ref = reference(gate, x)
    if ref is None:  # no real value: the module reports a located domain error
        with pytest.raises(ValueError, match=r"^stage \(1\) f = "):
            module.value_and_grad(x)
        return
    value, slope = ref
    if not representable(value):  # the true value overflows float64 (log2(0) is -inf): a located error
        with pytest.raises((OverflowError, ValueError), match=r"^stage \(1\) f = "):
            module.value_and_grad(x)
        return
    got, (grad,) = module.value_and_grad(x)
    assert math.isfinite(got)
    assert same(got, value), (got, float(value))
    if representable(slope):
        assert math.isfinite(grad) and same(grad, slope), (grad, float(slope))
    else:  # the true slope overflows float64 (log2 at 5e-324): so does the gradient
        assert math.isinf(grad) and grad * float(slope) > 0, (grad, float(slope))


LOCATED = [
    (
        "lnx = log(x)\nf = lnx * y",
        (-1.0, 2.0),
        ValueError,
        "stage (1) lnx = math.log(x): math domain error (x = -1.0)",
    ),
    (
        "f = sqrt(x) + y",
        (-1.0, 2.0),
        ValueError,
        "stage (1) sqrtx = math.sqrt(x): math domain error (x = -1.0)",
    ),
    (
        "f = y / x",
        (2.0, 0.0),
        ZeroDivisionError,
        "stage (1) invx = 1.0 / x: float division by zero (x = 0.0)",
    ),
    (
        "f = acos(x) * y",
        (2.0, 1.0),
        ValueError,
        "stage (1) acosx = math.acos(x): math domain error (x = 2.0)",
    ),
    (
        "f = exp(x) * y",
        (1000.0, 1.0),
        OverflowError,
        "stage (1) expx = math.exp(x): math range error (x = 1000.0)",
    ),
    (
        "f = sqrt(x)",
        (0.0,),
        ZeroDivisionError,
        "backprop of stage (1) dx = (0.5 / f) * dout: float division by zero (f = 0.0, dout = 1.0)",
    ),
]


@pytest.mark.parametrize("source, point, error, message", LOCATED, ids=[m.split(":")[0] for *_, m in LOCATED])
def test_domain_errors_name_the_stage(source, point, error, message):
    module = stagegen.load(source)
    with pytest.raises(error) as caught:
        module.value_and_grad(*point)
    assert str(caught.value) == message
    original = caught.value.__cause__
    assert type(original) is error and str(original) == message.split(": ", 1)[1].split(" (")[0]
    if not message.startswith("backprop"):
        with pytest.raises(error, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            module.forward(*point)


def test_backward_errors_name_the_stage():
    module = stagegen.load("f = sqrt(x) * y")
    _, cache = module.forward(0.0, 1.0)
    with pytest.raises(ZeroDivisionError, match=r"^backprop of stage \(1\) dx = \(0\.5 / sqrtx\) \* dsqrtx"):
        module.backward(1.0, cache)


def test_located_error_in_a_line_black_wrapped():
    module = stagegen.load("f = softplus(1 / (x * y))")
    with pytest.raises(ZeroDivisionError, match=r"^stage \(2\) "):
        module.value_and_grad(0.0, 1.0)


def test_non_smooth_backward_lines_state_their_convention():
    text = stagegen.generate("f = max(x, y) + relu(x) + abs(y) + min(x, y, 0)")
    lines = {line.split("  # ")[1] for line in text.splitlines() if "# (" in line and " * " in line}
    conventions = {line.split("; ", 1)[1] for line in lines if "; " in line}
    assert conventions == {"a tie goes to the first operand", "0 at x = 0"}
    # max(x, y) and min(x, y, 0) each send two lines to inputs, in backward and value_and_grad
    assert sum("tie goes to the first operand" in line for line in text.splitlines()) == 8


def test_rewrites_are_listed_in_the_docstring():
    text = stagegen.generate(example("neuron.txt"), filename="examples/neuron.txt")
    assert "    10:5 1 / (1 + exp(-dot)) -> sigmoid: no overflow for any float" in text
    text = stagegen.generate("f = log(1 + x**2) + (exp(y) - 1) + log(1 + exp(x))")
    assert "1:5 log(1 + x**2) -> log1p" in text
    assert "-> expm1" in text and "-> softplus" in text and text.count("-> log1p") == 1
    assert "Rewrites" not in stagegen.generate(example("neuron.txt"), gates="fine")
    assert "Rewrites" not in stagegen.generate("f = sigmoid(x) * log1p(y)")  # written as such: no rewrite


@pytest.mark.parametrize("source, fine", [("f = log(1 + x)", 0.0), ("f = exp(x) - 1", 0.0)])
def test_log1p_and_expm1_keep_small_arguments(source, fine):
    grouped = stagegen.load(source).value_and_grad(1e-20)
    assert grouped == (1e-20, (1.0,))
    assert stagegen.load(source, gates="fine").value_and_grad(1e-20)[0] == fine


def test_constants_of_the_notes_are_parameters():
    """The notes' f_c and f_a gates: translate by c, scale by a; both get gradients."""
    module = stagegen.load("c: scalar\na: scalar\nf = a * (x + c)")
    assert module.value_and_grad(2.0, 3.0, 5.0) == (21.0, (3.0, 7.0, 3.0))


def test_wrt_removes_lines():
    full = adjoint_lines(stagegen.generate(example("notes.txt")))
    only_x = adjoint_lines(stagegen.generate(example("notes.txt"), wrt="x"))
    assert len(full) == 12 and len(only_x) == 9  # dy = ..., dy += ... and dsigy = ... go
    assert {t for t, *_ in only_x} == {t for t, *_ in full} - {"dy", "dsigy"}


def test_generated_gradient_drives_scipy_minimize():
    fit = runpy.run_path(str(EXAMPLES / "cooling_fit.py"))
    result = fit["fit"]()
    assert result.success
    # the same fit with scipy's own finite-difference gradient
    module = stagegen.load(fit["LOSS"], **fit["OPTIONS"])
    data = (fit["TIMES"], fit["TEMPS"])
    plain = minimize(lambda p: module.forward(*p, *data)[0], x0=[0.05, 80.0, 15.0], method="BFGS")
    assert np.allclose(result.x, plain.x, rtol=1e-4)
    assert result.njev <= plain.nfev / 3  # one gradient call replaces 1 + 3 evaluations
    k, T0, Tenv = result.x
    assert 0.05 < k < 0.12 and 85 < T0 < 95 and 20 < Tenv < 30
    value = lambda *p: float(module.forward(*p, *data)[0])  # noqa: E731
    _, grads = module.value_and_grad(*result.x, *data)
    for i, g in enumerate(grads):
        assert close(g, central_difference(value, list(result.x), i, step=1e-6), 1e-4, scale=1e-3)
    # the loss is checked where its parameters are declared, with the SymPy reference of arrays
    report = stagegen.verify(fit["LOSS"], points=10, **fit["OPTIONS"])
    assert report.ok and "k in [0.01, 0.5]" in report.table(), report.table()


# -- the numpy backend: the same extreme inputs, all at once in one array ----------------------


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("name", GROUPED)
def test_grouped_gates_at_extreme_inputs_in_numpy(name, style):
    """All extremes in one array, and each alone in an array of its own (an
    emitted form may choose its branch for the whole array: sigmoid's fast
    form runs only when no element is below -700)."""
    gate = REGISTRY[name]
    operands = ", ".join(["x", *[repr(OTHER)] * (len(gate.operands) - 1)])
    module = stagegen.load(f"f = {gate.source}({operands})", backend="numpy", style=style)
    everything = np.array(EXTREMES)
    for xs in [everything] + [everything[k : k + 1] for k in range(len(EXTREMES))]:
        with np.errstate(all="ignore"):  # NumPy's rules: inf/nan (with warnings) where the maths is
            values, (grads,) = module.value_and_grad(xs)
            _, cache = module.forward(xs)
            (backs,) = module.backward(np.ones_like(xs), cache)
        assert values.shape == grads.shape == backs.shape == xs.shape
        for x, got, grad, back in zip(xs.tolist(), values, grads, backs, strict=True):
            ref = reference(gate, x)
            if ref is None:  # no real value
                assert math.isnan(got), (x, got)
                continue
            value, slope = ref
            if not representable(value):
                assert math.isinf(got) and got * float(value) > 0, (x, got)
                continue
            assert math.isfinite(got), (x, got, grad)
            assert same(got, value), (x, got, float(value))
            assert grad == back, (x, grad, back)
            if representable(slope):
                assert math.isfinite(grad) and same(grad, slope), (x, grad, float(slope))
            else:
                assert math.isinf(grad) and grad * float(slope) > 0, (x, grad, float(slope))


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("name, edge", [("sigmoid", -700.0), ("softplus", 700.0)])
def test_numpy_forms_that_branch_on_the_whole_array(name, edge, style):
    """sigmoid and softplus take their short form only when no element is past
    the edge where it would overflow; one element past it switches the whole
    array to the overflow-free form. Either way, every element against mpmath."""
    gate = REGISTRY[name]
    text = stagegen.generate(f"f = {gate.source}(x)", backend="numpy", style=style)
    assert f"if np.all(x {'>' if edge < 0 else '<'} {edge})" in text
    module = stagegen.module_from_text(text, "<branch>")
    inside = [edge * 0.999, edge / 2, -1.5, 0.0, 1.5]  # (sigmoid saturates past 36: a known limit)
    outside = [edge * 1.001, edge * 1.1]
    for xs in ([inside], [inside + outside[:1]], [inside + outside[1:]], [outside]):
        xs = np.array(xs[0])
        values, (grads,) = module.value_and_grad(xs)
        for x, got, grad in zip(xs.tolist(), values, grads, strict=True):
            value, slope = reference(gate, x)
            assert same(got, value), (x, got, float(value))
            if representable(slope) and abs(slope) > 1e-300:
                assert same(grad, slope), (x, grad, float(slope))


def test_numpy_follows_numpys_floating_point_rules():
    module = stagegen.load("lnx = log(x)\nf = lnx * y", backend="numpy")
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log"):
        value, (dx, dy) = module.value_and_grad(np.array([-1.0, 2.0]), np.array([2.0, 3.0]))
    assert math.isnan(value[0]) and value[1] == math.log(2.0) * 3.0
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        module.value_and_grad(np.array([-1.0]), np.array([2.0]))


@pytest.mark.parametrize("style", ["seed", "compact"])
def test_numpy_subgradients_at_kinks_and_ties(style):
    def grads(source, *args):
        return stagegen.load(source, backend="numpy", style=style).value_and_grad(*args)[1]

    zero_and_one = np.array([0.0, -0.0, 1.0, -1.0])
    (drelu,) = grads("f = relu(x)", zero_and_one)
    assert drelu.tolist() == [0.0, 0.0, 1.0, 0.0]
    (dabs,) = grads("f = abs(x)", zero_and_one)
    assert dabs.tolist() == [0.0, 0.0, 1.0, -1.0]
    tie = np.array([2.0, 2.0, 1.0])
    # a tie of all three, of the first two, and none: the whole gradient to the first extreme
    dx, dy, dz = grads("f = max(x, y, z)", tie, np.array([2.0, 2.0, 3.0]), np.array([2.0, 1.0, 0.0]))
    assert dx.tolist() == [1.0, 1.0, 0.0] and dy.tolist() == [0.0, 0.0, 1.0] and dz.tolist() == [0.0] * 3
    dx, dy = grads("f = min(x, y)", tie, np.array([2.0, 5.0, 0.5]))
    assert dx.tolist() == [1.0, 1.0, 0.0] and dy.tolist() == [0.0, 0.0, 1.0]
    # clip: x below, at lo, inside, at hi, above; then lo > hi (the value is hi)
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.0])
    lo, hi = np.array([-1.0] * 5 + [3.0]), np.array([1.0] * 5 + [2.0])
    value = stagegen.load("f = clip(x, lo, hi)", backend="numpy", style=style).forward(x, lo, hi)[0]
    assert value.tolist() == np.clip(x, lo, hi).tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0, 2.0]
    dx, dlo, dhi = grads("f = clip(x, lo, hi)", x, lo, hi)
    assert dx.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert dlo.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert dhi.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("scipy", [True, False], ids=["scipy", "fallback"])
def test_numpy_erf_and_erfc_with_and_without_scipy(scipy, monkeypatch):
    """A numpy module takes scipy.special's erf and erfc where SciPy imports, else
    stagegen's vectorised ones: both agree with mpmath to a few ulp (values) on
    both tails, erfc keeping the upper tail's digits."""
    if not scipy:
        monkeypatch.setitem(sys.modules, "scipy.special", None)  # import fails
    module = stagegen.load("f = erf(x) + 0 * y\ng = erfc(y)\nf, g", backend="numpy")
    assert isinstance(module._erf, np.ufunc) == scipy  # scipy.special's are ufuncs
    assert (module._erf is module._erf_array) != scipy
    xs = np.array([-6.0, -1.5, -1e-8, 0.0, 3e-9, 0.5, 2.0, 5.5])
    ys = np.array([-3.0, -0.5, 0.0, 1.0, 4.0, 10.0, 26.0, 27.2])
    (f, g), _ = module.forward(xs, ys)
    for got, want in [(f, [mpmath.erf(x) for x in xs]), (g, [mpmath.erfc(y) for y in ys])]:
        for a, b in zip(got, want, strict=True):
            assert abs(a - float(b)) <= 4 * math.ulp(float(b)), (a, b)


def _erf_points() -> np.ndarray:
    """Seeded points over every branch of the vectorised erf and erfc (the small
    argument's polynomial below 0.5, the tail's above, both signs, the upper
    tail down to erfc's underflow), their edges, and special values."""
    rng = np.random.default_rng(4)
    edges = [0.0, -0.0, 0.5, -0.5, np.nextafter(0.5, 0), 1e-300, 5e-324, 6.0, 26.5, 27.2, 27.3, 28.0, 40.0]
    return np.concatenate(
        [
            rng.uniform(-0.5, 0.5, 400),
            rng.uniform(-6.0, 6.0, 600),
            rng.uniform(0.5, 28.0, 600),
            -rng.uniform(0.5, 28.0, 200),
            np.exp(rng.uniform(-700, 0, 100)),
            edges,
            np.negative(edges),
            [1e300, -1e300, np.inf, -np.inf],
        ]
    )


@pytest.mark.parametrize("name", ["erf", "erfc"])
@pytest.mark.parametrize("scipy", [True, False], ids=["scipy", "fallback"])
def test_numpy_erf_and_erfc_accuracy(name, scipy, monkeypatch):
    """Both paths within 4 ulp of mpmath plus the condition number |x f'(x) / f(x)|
    in ulp, at seeded points over every branch; the same infinities, zeros and
    signs; NaN stays NaN."""
    if not scipy:
        monkeypatch.setitem(sys.modules, "scipy.special", None)
    module = stagegen.load("f = erf(x) + 0 * y\ng = erfc(y)\nf, g", backend="numpy")
    fn, exact = getattr(module, "_" + name), getattr(mpmath, name)
    xs = _erf_points()
    got = fn(xs)
    assert np.isnan(fn(np.array([np.nan]))).all()
    with mpmath.workdps(40):
        for x, g in zip(xs.tolist(), got.tolist(), strict=True):
            # mpmath's erfc fails above ~1e154; both functions are flat long before
            ref = exact(mpmath.mpf(max(min(x, 1e100), -1e100)))
            r = float(ref)
            if scipy and name == "erfc" and x > 26.0:
                continue  # SciPy's erfc rounds the square: 334 ulp at 26.5, 0.0 from 27 (its own)
            if r == 0.0 or abs(r) < 2.2250738585072014e-308 or math.isinf(x):
                assert abs(g - r) <= 5e-324 * 4 or g == r, (name, x, g, r)  # the underflowed tail
                continue
            slope = 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-mpmath.mpf(x) ** 2)
            cond = float(abs(x * slope / ref))
            error = float(abs(mpmath.mpf(g) - ref)) / math.ulp(r)
            assert (
                error <= 4 + cond
            ), f"{name}({x!r}) = {g!r}, mpmath {r!r}: {error:.1f} ulp, condition {cond:.1f}"


def test_numpy_erf_fallback_matches_scipy_closely():
    """The vectorised fallback and SciPy's erf and erfc, each within 4 ulp plus
    the condition number of the exact value, differ by at most twice that on
    10**5 points (measured: erf 3 ulp; erfc 11 ulp below |x| = 2, 36 ulp at
    x = 5.7, where the condition number 2 x**2 is 65)."""
    import scipy.special

    module = stagegen.load("f = erf(x) + 0 * y\ng = erfc(y)\nf, g", backend="numpy")
    xs = np.random.default_rng(5).uniform(-6.0, 6.0, 10**5)
    for ours, theirs in [(module._erf_array, scipy.special.erf), (module._erfc_array, scipy.special.erfc)]:
        a, b = ours(xs), theirs(xs)
        ulps = np.abs(a - b) / np.spacing(np.abs(b))
        cond = np.abs(xs * 2 / math.sqrt(math.pi) * np.exp(-xs * xs) / b)
        assert np.all(ulps <= 2 * (4 + cond)), (ulps - 2 * (4 + cond)).max()


# -- lgamma and gamma, and digamma and trigamma (their gradients, second order) --

# (lo, hi, log-uniform?) ranges the accuracy tests draw from: both sides of 0,
# around digamma's zero 1.4616..., around lgamma's zeros 1 and 2, the recurrences'
# and the asymptotic series' ranges
GAMMA_RANGES = [
    (1e-300, 1e-5, True),
    (1e-5, 1.0, False),
    (1.0, 2.0, False),
    (1.36, 1.56, False),
    (1.45, 1.47, False),
    (0.9, 1.1, False),
    (1.9, 2.1, False),
    (2.0, 10.0, False),
    (10.0, 1e15, True),
    (-60.0, 0.0, False),
]
# mpmath references: the function and its derivative (for its condition number)
GAMMA_FAMILY = {
    "digamma": (mpmath.digamma, lambda x: mpmath.polygamma(1, x)),
    "trigamma": (lambda x: mpmath.polygamma(1, x), lambda x: mpmath.polygamma(2, x)),
    "lgamma": (lambda x: mpmath.re(mpmath.loggamma(x)), mpmath.digamma),
    "gamma": (mpmath.gamma, lambda x: mpmath.gamma(x) * mpmath.digamma(x)),
}
# The bound, in ulp of the reference plus its condition number |x f'(x) / f(x)|
# in ulp, plus an absolute floor in ulp of 1. digamma and trigamma are stagegen's
# own (4 ulp), and so is lgamma without SciPy (4 ulp, within an ulp of 1 near its
# zeros). lgamma and gamma are otherwise the math module's or SciPy's: measured,
# CPython's math.lgamma is 4.8 ulp of 1 off at x = 1.9988 (near a zero of
# lgamma), SciPy's gammaln 15 ulp at x = -2.63 (condition number 5), math.gamma
# 5.4 ulp at x = 1.80 (condition number 0.5).
GAMMA_BOUND = {"digamma": (4, 0), "trigamma": (4, 0), "lgamma": (4, 5), "gamma": (6, 0)}
# PyTorch's own digamma and trigamma (the array backend takes them on tensors):
# measured, torch.special.digamma is up to 8.7e-16 off near its zero (x = 1.4608,
# where it is -0.00085), torch.special.polygamma(1, x) 4.1e-10 relative (x = 0.70)
TORCH_BOUND = {"digamma": (4, 6), "trigamma": (1e-9 / 2.0**-52, 0)}


def _gamma_points(per_range: int = 40) -> list[float]:
    rng = random.Random(16)
    points = []
    for lo, hi, log in GAMMA_RANGES:
        for _ in range(per_range):
            x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if log else rng.uniform(lo, hi)
            points.append(x if x != math.floor(x) else x + 0.5)  # not a pole
    return points


def _assert_accurate(name: str, xs, got, torch: bool = False, fallback: bool = False) -> None:
    f, df = GAMMA_FAMILY[name]
    ulps, floor = GAMMA_BOUND[name]
    if torch and name in TORCH_BOUND:
        ulps, floor = TORCH_BOUND[name]
    if fallback and name == "lgamma":  # stagegen's own: the bound, an ulp of 1 at most
        ulps, floor = 4, 1
    with mpmath.workdps(40):
        for x, g in zip(xs, got, strict=True):
            ref = f(mpmath.mpf(x))
            r = float(ref)
            if not math.isfinite(r):  # gamma past overflow
                assert g == r or math.isinf(g), (name, x, g)
                continue
            cond = float(abs(x * df(mpmath.mpf(x)) / ref))
            error = float(abs(mpmath.mpf(float(g)) - ref))
            bound = (ulps + cond) * math.ulp(r) + floor * math.ulp(1.0)
            assert (
                error <= bound
            ), f"{name}({x!r}) = {float(g)!r}, mpmath {r!r}: {error / math.ulp(r):.1f} ulp"


@pytest.mark.parametrize("path", ["math", "numpy-scipy", "numpy-fallback", "array-numpy", "array-torch"])
@pytest.mark.parametrize("name", sorted(GAMMA_FAMILY))
def test_gamma_family_against_mpmath(name, path, monkeypatch):
    """lgamma, gamma and their gradients' digamma and trigamma on every path a
    module takes: the math module's (stagegen's digamma and trigamma), SciPy's
    (numpy backend), the NumPy fallback without SciPy, the array backend on
    NumPy (the host) and on PyTorch; each within its bound of mpmath."""
    if path == "numpy-fallback":
        monkeypatch.setitem(sys.modules, "scipy.special", None)  # import fails
    if path == "array-torch":
        torch = pytest.importorskip("torch")
    backend = path.split("-")[0]
    source = "f = lgamma(x) + gamma(x)" if backend == "math" else "f = sum(lgamma(x) + gamma(x))"
    module = stagegen.load(source, backend=backend, with_=("hvp",))
    fn = (
        getattr(module, "_" + name)
        if name in ("digamma", "trigamma") or backend != "math"
        else getattr(math, name)
    )
    xs = _gamma_points()
    if backend == "math":
        got = [_or_inf(fn, x) for x in xs]
    elif path == "array-torch":
        got = fn(torch.tensor(xs, dtype=torch.float64)).tolist()
    else:
        got = np.asarray(fn(np.array(xs))).tolist()
    _assert_accurate(name, xs, got, torch=path == "array-torch", fallback=path == "numpy-fallback")


def _or_inf(fn, x: float) -> float:
    try:
        return fn(x)
    except OverflowError:  # math.gamma past 171.6
        return math.inf


@pytest.mark.parametrize("scipy", [True, False], ids=["scipy", "fallback"])
def test_gamma_family_at_poles_and_overflow(scipy, monkeypatch):
    """At the poles and past overflow the numpy backend's values are SciPy's,
    with SciPy or without: lgamma inf, gamma ±inf at ±0, NaN at -1, inf past
    171.6; digamma -inf at 0 (inf at -0) and NaN at -1, -2, ...; trigamma inf
    at the poles."""
    if not scipy:
        monkeypatch.setitem(sys.modules, "scipy.special", None)
    module = stagegen.load("f = sum(lgamma(x) + gamma(x))", backend="numpy", with_=("hvp",))
    x = np.array([0.0, -0.0, -1.0, -2.0, 200.0, 1e308])
    with np.errstate(all="ignore"):
        assert module._lgamma(x[[0, 1, 2, 3, 5]]).tolist() == [math.inf] * 5
        gamma = module._gamma(x)
        assert gamma[:2].tolist() == [math.inf, -math.inf] and math.isnan(gamma[2]) and math.isnan(gamma[3])
        assert gamma[4:].tolist() == [math.inf, math.inf]
        assert module._digamma(x[:2]).tolist() == [-math.inf, math.inf]
        assert np.isnan(module._digamma(x[2:4])).all()
        assert module._trigamma(x[:4]).tolist() == [math.inf] * 4


@pytest.mark.parametrize("backend", ["math", "numpy", "array"])
def test_lgamma_and_gamma_second_order(backend):
    """hvp of lgamma and gamma (trigamma in the second derivative) against
    SymPy's second derivatives at 50 digits, on both sides of 0."""
    source = "f = lgamma(x) * gamma(y) + lgamma(x * y)"
    if backend != "math":
        source = "x: vector(3)\ny: vector(3)\nf = sum(lgamma(x) * gamma(y) + lgamma(x * y))"
    report = stagegen.verify(source, backend=backend, with_=("hvp", "jvp"), points=12)
    assert report.ok, report.table()


def test_gamma_also_names_a_value():
    """gamma is a gate and still a free name (a batchnorm's scale, a discount
    factor): a bare name is the value, a call the gate."""
    source = "f = gamma * gamma(x) + lgamma(gamma * gamma)"
    assert stagegen.load(source).INPUTS == ("gamma", "x")
    report = stagegen.verify(source, points=12, domain={"gamma": (0.5, 2.0), "x": (0.5, 3.0)})
    assert report.ok, report.table()


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_logsumexp_near_its_maximum_keeps_its_digits(backend):
    """log(exp(0) + exp(-40)) = log1p(exp(-40)) = 4.25e-18: the form max + log(sum)
    rounds it to 0.0; overflow-free at 1000 as before."""
    module = stagegen.load("A: matrix(2, 2)\nf = sum(logsumexp(A, axis=1)) + logsumexp(A)\n", backend=backend)
    A = np.array([[0.0, -40.0], [1000.0, 1000.0 - 50.0]])
    value, (dA,) = module.value_and_grad(A)
    with mpmath.workdps(60):
        rows = [mpmath.log(sum(mpmath.exp(mpmath.mpf(a)) for a in row)) for row in A.tolist()]
        whole = mpmath.log(sum(mpmath.exp(mpmath.mpf(a)) for a in A.ravel().tolist()))
        want = float(rows[0] + rows[1] + whole)
    assert value == pytest.approx(want, rel=1e-15)
    row = module.forward(A)[1]
    lse = next(v for v in row if np.shape(v) == (2,))
    assert abs(lse[0] - 4.248354255291589e-18) <= 4e-34 and lse[1] == 1000.0 + math.log1p(math.exp(-50.0))
    assert np.all(np.isfinite(dA))

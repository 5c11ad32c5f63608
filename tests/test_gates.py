"""Every gate of the registry, checked from its own record (docs/ARCHITECTURE.md, "Adding a gate").

The tests are parametrised over `stagegen.gates.REGISTRY` itself (ids are gate
names; a gate with `test_params` gets one case per parameter tuple, a variadic
gate one case per arity 2 and 3), so a new gate is tested without editing this
file. Per gate:

1. its local-gradient rule equals `sympy.diff` of its `forward` meaning:
   numerically at seeded points of its `domain` (50 digits) and, for smooth
   gates, symbolically; non-smooth gates are compared away from their kinks,
   and their kink conventions (docs/ARCHITECTURE.md) are checked on their own;
2. the generated code's gradient matches central finite differences;
3. its `special` values give the 50-digit reference (or the kink convention);
4. its emitted form for the ``math`` backend agrees with `forward`;
5. its `forward` (and source form) lowers back to exactly this gate;
6. `stagegen.verify` accepts a one-line program applying it.

Tolerances and the finite-difference step are the named constants of
`gradcheck.py`; every reference comes from SymPy/mpmath, never from the rules.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import zlib
from dataclasses import dataclass

import mpmath
import pytest
import sympy as sp

import stagegen
from gradcheck import DPS, FD_RTOL, FD_STEP, RTOL, central_difference, close, reference
from stagegen.backends import MATH, SOURCE
from stagegen.expr import Num
from stagegen.gates import REGISTRY, Gate, slot, sympy_number
from stagegen.lower import lower
from stagegen.parse import from_sympy, parse
from stagegen.printer import Forms
from stagegen.sympy_source import SourcePrinter
from stagegen.verify import to_sympy

N_POINTS = 20  # seeded random points per gate and check
NAMES = ("x", "y", "z", "u", "v", "w")  # input names of the one-line programs
KINK_GRID = (-1.0, -0.0, 0.0, 1.0)  # operand values that make every tie and zero crossing

# docs/ARCHITECTURE.md, "Conventions": the gradient a non-smooth gate must
# give everywhere, kinks included (there the oracle is this, not SymPy's Heaviside(0) = 1/2).
# Written from the contract, independently of the registry's rules.


def _first_extreme(extreme):
    def convention(*xs):
        first = xs.index(extreme(xs))  # the first operand equal to the extreme
        return tuple(1.0 if i == first else 0.0 for i in range(len(xs)))

    return convention


def _polar(scale):
    """atan2 (y, x) and hypot (x, y): their textbook gradients (50 digits, then
    rounded), 0 at (0, 0)."""

    def convention(a, b):
        with mpmath.workdps(DPS):
            a, b = mpmath.mpf(a), mpmath.mpf(b)
            r2 = a * a + b * b
            return (0.0, 0.0) if r2 == 0 else tuple(float(g) for g in scale(a, b, r2))

    return convention


CONVENTIONS = {
    "relu": lambda x: (1.0 if x > 0 else 0.0,),
    "abs": lambda x: (1.0 if x > 0 else -1.0 if x < 0 else 0.0,),
    "max": _first_extreme(max),
    "min": _first_extreme(min),
    "sign": lambda x: (0.0,),
    "floor": lambda x: (0.0,),
    "ceil": lambda x: (0.0,),
    # min(max(x, lo), hi) with max's and min's ties: x keeps a tie with a bound;
    # lo > hi makes the value hi, whatever x
    "clip": lambda x, lo, hi: (
        (1.0, 0.0, 0.0) if lo <= x <= hi else (0.0, 1.0, 0.0) if x < lo <= hi else (0.0, 0.0, 1.0)
    ),
    "atan2": _polar(lambda y, x, r2: (x / r2, -y / r2)),
    "hypot": _polar(lambda x, y, r2: (x / mpmath.sqrt(r2), y / mpmath.sqrt(r2))),
}

# Values at signed zeros, which SymPy does not have: IEEE 754's atan2(-0.0, -1) is
# -pi (the far side of the cut), SymPy's atan2(0, -1) is pi.
SIGNED_ZERO = {"atan2": math.atan2}

# Bugs found by these tests, each marking exactly one test (strict: a fix makes it fail).
KNOWN_BUGS = {
    (
        "special_gradient",
        "sigmoid@40.0",
    ): "sigmoid's local gradient (1 - out) * out cancels to 0.0 once sigmoid(x) rounds to 1.0 "
    "(x > ~36.7): at x = 40 the generated gradient is 0.0, the 50-digit reference 4.25e-18",
}


# -- the cases: one per gate, arity and parameter tuple ------------------------------------


@dataclass(frozen=True)
class Case:
    gate: Gate
    arity: int
    params: tuple  # numbers (`Num`), as a Stage holds them

    @property
    def id(self) -> str:
        text = self.gate.name + (f"-{self.arity}" if self.gate.variadic else "")
        for name, value in zip(self.gate.params, self.params, strict=True):
            text += f"-{name}={value}"
        return text

    @property
    def sympy_params(self) -> dict:
        return {name: sympy_number(v) for name, v in zip(self.gate.params, self.params, strict=True)}

    @property
    def instance(self):
        return self.gate.instance(self.arity, self.params)

    @property
    def slots(self) -> list[sp.Symbol]:
        return [slot(i) for i in range(self.arity)]

    def rng(self, test: str) -> random.Random:
        return random.Random(zlib.crc32(f"{test}:{self.id}".encode()))

    def sample(self, rng: random.Random, n: int) -> tuple[float, ...]:
        return tuple(rng.uniform(*self.gate.domain) for _ in range(n))


def _cases() -> list[Case]:
    cases = []
    for gate in REGISTRY.values():
        if gate.structural:  # array gates: tests/test_arrays.py
            continue
        if gate.mask or gate.conditions:  # masks and where: tests/test_where.py
            continue
        for arity in (2, 3) if gate.variadic else (len(gate.operands),):
            for params in gate.test_params:
                cases.append(Case(gate, arity, tuple(map(Num, params))))
    return cases


CASES = _cases()
SMOOTH = [c for c in CASES if c.gate.smooth]
NONSMOOTH = [c for c in CASES if not c.gate.smooth]
SPECIAL = [(c, s) for c in CASES for s in c.gate.special]


def _params(test: str, items, ids) -> list:
    """pytest params with ids; a known bug marks its one test as a strict xfail."""
    out = []
    for item, id_ in zip(items, ids, strict=True):
        reason = KNOWN_BUGS.get((test, id_))
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
        out.append(pytest.param(*item if isinstance(item, tuple) else (item,), id=id_, marks=marks))
    return out


def cases(test: str, which=None) -> list:
    which = CASES if which is None else which
    return _params(test, which, [c.id for c in which])


def special_cases(test: str) -> list:
    return _params(test, SPECIAL, [f"{c.id}@{s!r}" for c, s in SPECIAL])


# -- the one-line program that applies a gate ------------------------------------------------


@dataclass(frozen=True)
class Application:
    text: str  # "f = x / 3"
    inputs: tuple[str, ...]  # the program's inputs, in order
    operands: tuple  # per operand: an input index (int) or a constant (SymPy number)

    def operand_values(self, point) -> list:
        return [point[op] if isinstance(op, int) else float(op) for op in self.operands]

    def symbols(self) -> list[sp.Symbol]:
        return [sp.Symbol(n, real=True) for n in self.inputs]

    def operand_exprs(self) -> list[sp.Expr]:
        symbols = self.symbols()
        return [symbols[op] if isinstance(op, int) else op for op in self.operands]

    def meaning(self, case: Case) -> sp.Expr:
        """The gate's forward meaning over this program's input symbols."""
        return case.gate.forward(*self.operand_exprs(), **case.sympy_params)


def _constant(domain: tuple[float, float]) -> sp.Expr:
    """A constant operand inside `domain`: an integer if one fits (x / 3 is SymPy's x * 1/3)."""
    lo, hi = domain
    for n in range(math.floor(hi), math.ceil(lo) - 1, -1):
        if abs(n) >= 2:
            return sp.Integer(n)
    return sp.Rational(repr(hi))


@functools.lru_cache(maxsize=None)
def application(case: Case) -> Application:
    """The gate in stagegen's input language (its `display` form), operands as inputs.

    Some gates exist only with constant operands (div is a / const: SymPy writes
    a / b as a * b**-1, which is mul and reciprocal); for those, operands from the
    last one backwards become a constant from the domain until the program lowers
    to one stage of this gate. If none does, the all-inputs form is returned and
    `test_forward_lowers_back_to_the_gate` reports it.
    """
    n = case.arity
    display = case.instance.display
    constant = _constant(case.gate.domain)
    found = []
    for k in range(n):
        for fixed in itertools.combinations(reversed(range(n)), k):
            operands, names = [], []
            for i in range(n):
                if i in fixed:
                    operands.append(constant)
                else:
                    operands.append(len(names))
                    names.append(NAMES[len(names)])
            texts = [names[op] if isinstance(op, int) else _num(op) for op in operands]
            app = Application(f"f = {Forms(SOURCE).fill(display, texts)}", tuple(names), tuple(operands))
            found.append(app)
            if [(s.gate, s.params) for s in lower(parse(app.text)).stages] == [(case.gate.name, case.params)]:
                return app
    return found[0]


def _num(value: sp.Expr) -> Num:
    """A SymPy constant of the tests as the number a Stage holds."""
    return Num(int(value)) if value.is_Integer else Num(float(value))


@functools.lru_cache(maxsize=None)
def module(text: str):
    return stagegen.load(text)


# -- 50-digit evaluation ------------------------------------------------------------------


def _mp(value) -> mpmath.mpf:
    """A real SymPy/mpmath/Python number as an mpf (fails on anything else)."""
    if isinstance(value, sp.Basic):
        assert value.is_number and value.is_real, f"not a real number: {value}"
        value = value.evalf(DPS)
    return mpmath.mpf(value)


def _subs(symbols, point) -> dict:
    return {s: sp.Float(repr(float(v)), DPS) for s, v in zip(symbols, point, strict=True)}


@functools.lru_cache(maxsize=None)
def _forward_fn(case: Case):
    return sp.lambdify(case.slots, case.instance.forward, modules="mpmath")


def _forward50(case: Case, operands) -> mpmath.mpf:
    # Evaluated with enough bits for cancellations down to the smallest float
    # (exp(5e-324) - 1, log(1 + 1e-300)), then rounded to 50 digits.
    with mpmath.workprec(2200):
        value = _mp(_forward_fn(case)(*map(mpmath.mpf, operands)))
    with mpmath.workdps(DPS):
        return +value


def _at_kink(case: Case, operands) -> bool:
    """The forward meaning is not differentiable here: one-sided slopes (50 digits) differ."""
    fn = _forward_fn(case)
    with mpmath.workdps(DPS):
        h = mpmath.mpf(10) ** (-(DPS // 2))
        p = [mpmath.mpf(v) for v in operands]
        f0 = _mp(fn(*p))
        for i in range(len(p)):
            up, down = list(p), list(p)
            up[i] += h
            down[i] -= h
            right, left = (_mp(fn(*up)) - f0) / h, (f0 - _mp(fn(*down))) / h
            if not close(right, left, RTOL, scale=1):
                return True
            if not close(_mp(fn(*up)), _mp(fn(*down)), RTOL, scale=1):  # a step (sign)
                return True
    return False


def _finite64(value: mpmath.mpf) -> bool:
    return mpmath.isfinite(value) and math.isfinite(float(value))


def _operand_points(case: Case, special: float, n: int, rng: random.Random) -> list[tuple]:
    """Every mix of `special` and seeded domain values over n operands, `special` at least once."""
    others = case.sample(rng, n)
    return [
        tuple(special if s else o for s, o in zip(mask, others, strict=True))
        for mask in itertools.product((True, False), repeat=n)
        if any(mask)
    ]


# -- 1. the local-gradient rule equals sympy.diff of forward --------------------------------


@pytest.mark.parametrize("case", cases("rule_numeric"))
def test_local_rule_matches_sympy_diff_numerically(case):
    inst, xs = case.instance, case.slots
    rules = [to_sympy(rule, out=inst.forward) for rule in inst.local]
    diffs = [sp.diff(inst.forward, x) for x in xs]
    rng = case.rng("rule_numeric")
    compared = 0
    for _ in range(N_POINTS):
        point = case.sample(rng, case.arity)
        if not case.gate.smooth and _at_kink(case, point):
            continue  # the convention decides there: test_kink_convention
        subs = _subs(xs, point)
        with mpmath.workdps(DPS):
            for i, (rule, diff) in enumerate(zip(rules, diffs, strict=True)):
                got, want = _mp(rule.evalf(DPS, subs=subs)), _mp(diff.evalf(DPS, subs=subs))
                assert close(got, want, RTOL), f"d/d operand {i} at {point}: rule {got}, sympy.diff {want}"
        compared += 1
    assert compared >= N_POINTS // 2, f"only {compared} of {N_POINTS} points were away from a kink"


def _vanishes_on_domain(expr: sp.Expr, case: Case) -> bool:
    """simplify proves expr == 0, as it stands or with each operand written lo + t, t > 0."""
    if sp.simplify(expr) == 0:
        return True
    lo = sp.Rational(repr(case.gate.domain[0]))
    shifted = {x: lo + sp.Symbol(f"t{i}", positive=True) for i, x in enumerate(case.slots)}
    return sp.simplify(expr.subs(shifted)) == 0


def _exact(expr: sp.Expr) -> sp.Expr:
    """Each float constant of a rule as the closed form it rounds (1.1283791670955126
    is 2/sqrt(pi)); a float that is not one stays a float, and the proof fails."""
    return expr.xreplace({f: sp.nsimplify(f, [sp.pi, sp.E]) for f in expr.atoms(sp.Float)})


@pytest.mark.parametrize("case", cases("rule_symbolic", SMOOTH))
def test_local_rule_equals_sympy_diff_symbolically(case):
    inst = case.instance
    for i, (rule, x) in enumerate(zip(inst.local, case.slots, strict=True)):
        difference = _exact(to_sympy(rule, out=inst.forward) - sp.diff(inst.forward, x))
        assert _vanishes_on_domain(
            difference, case
        ), f"d/d operand {i}: rule - sympy.diff = {sp.simplify(difference)}"


@pytest.mark.parametrize("case", cases("kink", NONSMOOTH))
def test_kink_convention(case):
    """The conventions: max/min give the whole gradient to the first extreme operand; abs, relu 0 at 0."""
    assert case.gate.name in CONVENTIONS, (
        f"{case.gate.name} is not smooth, but docs/ARCHITECTURE.md states no convention for its kinks: "
        "state one there (and in the gate's record) and add it to CONVENTIONS"
    )
    convention = CONVENTIONS[case.gate.name]
    inst, xs = case.instance, case.slots
    app = application(case)
    mod = module(app.text)
    values = KINK_GRID + tuple(s for s in case.gate.special if repr(s) not in map(repr, KINK_GRID))
    kinks = 0
    for point in itertools.product(values, repeat=len(app.inputs)):
        operands = app.operand_values(point)
        expected = convention(*operands)
        kinks += _at_kink(case, operands)
        # the rule, evaluated exactly at the point
        subs = {x: sp.Float(v) for x, v in zip(xs, operands, strict=True)}
        for i, rule in enumerate(inst.local):
            local = to_sympy(rule, out=inst.forward).subs(subs)
            assert (
                local.is_Number and float(local) == expected[i]
            ), f"rule d/d operand {i} at {operands} is {local}, the convention says {expected[i]}"
        # the generated code
        value, grads = mod.value_and_grad(*point)
        reference = SIGNED_ZERO.get(case.gate.name, lambda *v: float(_forward50(case, v)))(*operands)
        assert value == reference, f"{app.text} at {point}: value {value}"
        want = tuple(expected[op] for op in app.operands if isinstance(op, int))
        # a convention's 0 and 1 are exact; other values (hypot's x / out) within rounding
        assert all(
            g == w or (w not in (0.0, 1.0, -1.0) and math.isclose(g, w, rel_tol=4.5e-16))
            for g, w in zip(grads, want, strict=True)
        ), f"{app.text} at {point}: gradient {grads}, the convention says {want}"
    assert kinks > 0, f"no kink of {case.gate.name} on the grid {KINK_GRID}"


# -- 2. the generated gradient against central finite differences --------------------------


@pytest.mark.parametrize("case", cases("finite_differences"))
def test_generated_gradient_matches_finite_differences(case):
    app = application(case)
    mod = module(app.text)
    assert mod.INPUTS == app.inputs
    rng = case.rng("finite_differences")
    compared = 0
    for _ in range(N_POINTS):
        point = list(case.sample(rng, len(app.inputs)))
        value, grads = mod.value_and_grad(*point)
        forward_value, cache = mod.forward(*point)
        assert forward_value == value
        c = rng.uniform(0.5, 2.0)
        scaled = mod.backward(c, cache)
        assert len(grads) == len(scaled) == len(point)

        def f(*p):
            return mod.forward(*p)[0]

        for i, (g, gc) in enumerate(zip(grads, scaled, strict=True)):
            assert close(gc, c * g, RTOL), f"backward({c}) gives {gc}, expected {c} * {g}"
            # The stencil's rounding error is about eps * |f| / step: |f| is its scale.
            fd = central_difference(f, point, i)
            if not case.gate.smooth and not close(
                fd, central_difference(f, point, i, FD_STEP / 2), FD_RTOL, abs(value)
            ):
                continue  # a kink inside the stencil
            assert close(
                g, fd, FD_RTOL, abs(value)
            ), f"{app.text}: d/d{app.inputs[i]} at {point} is {g}, finite differences {fd}"
            compared += 1
    assert compared >= N_POINTS * len(app.inputs) // 2


# -- 3. special values ----------------------------------------------------------------------


def _special_points(case: Case, special: float) -> tuple[Application, list[tuple]]:
    app = application(case)
    return app, _operand_points(case, special, len(app.inputs), case.rng(f"special:{special!r}"))


@pytest.mark.parametrize("case, special", special_cases("special_value"))
def test_special_value(case, special):
    app, points = _special_points(case, special)
    mod = module(app.text)
    for point in points:
        ref = _forward50(case, app.operand_values(point))
        try:
            value, _ = mod.value_and_grad(*point)
        except OverflowError:
            assert not _finite64(ref), f"{app.text} at {point}: OverflowError, reference {float(ref)!r}"
            continue
        if _finite64(ref):
            assert isinstance(value, float) and math.isfinite(value), f"{app.text} at {point}: {value!r}"
            assert close(
                value, float(ref), RTOL
            ), f"{app.text} at {point}: {value!r}, reference {float(ref)!r}"
        else:
            assert not math.isfinite(value), f"{app.text} at {point}: {value!r}, reference {ref}"


@pytest.mark.parametrize("case, special", special_cases("special_gradient"))
def test_special_gradient(case, special):
    app, points = _special_points(case, special)
    mod = module(app.text)
    expr, symbols = app.meaning(case), app.symbols()
    for point in points:
        operands = app.operand_values(point)
        try:
            _, grads = mod.value_and_grad(*point)
        except OverflowError:
            assert not _finite64(_forward50(case, operands)), f"{app.text} at {point}: OverflowError"
            continue
        if not case.gate.smooth and _at_kink(case, operands):
            conv = CONVENTIONS[case.gate.name](*operands)
            want = [conv[k] for k, op in enumerate(app.operands) if isinstance(op, int)]
        else:
            want = reference(expr, symbols, point)[1]
        for name, g, r in zip(app.inputs, grads, want, strict=True):
            if math.isfinite(r):
                assert isinstance(g, float) and close(
                    g, r, RTOL
                ), f"{app.text}: d/d{name} at {point} is {g!r}, reference {r!r}"


# -- 4. the emitted form agrees with forward ------------------------------------------------


@pytest.mark.parametrize("case", cases("emitted"))
def test_emitted_math_form_matches_forward(case):
    inst = case.instance
    names = NAMES[: case.arity]
    text = Forms(MATH.syntax, "math").fill(inst.code["math"], names)
    fn = eval(f"lambda {', '.join(names)}: {text}", {"math": math})
    rng = case.rng("emitted")
    points = [case.sample(rng, case.arity) for _ in range(N_POINTS)]
    for special in case.gate.special:
        points += _operand_points(case, special, case.arity, rng)
    compared = 0
    for point in points:
        ref = _forward50(case, point)
        if not _finite64(ref):
            continue
        got = fn(*point)
        assert close(got, float(ref), RTOL), f"{text} at {point}: {got!r}, forward gives {float(ref)!r}"
        compared += 1
    assert compared >= N_POINTS


# -- 5. forward lowers back to exactly this gate --------------------------------------------


def _one_stage(graph, what: str):
    assert len(graph.stages) == 1, f"{what} lowers to {len(graph.stages)} stages:\n{graph.dump()}"
    return graph.stages[-1]


def _assert_is_application(stage, case: Case, app: Application, what: str) -> None:
    assert stage.gate == case.gate.name, f"{what} lowers to the gate {stage.gate}, not {case.gate.name}"
    assert stage.params == case.params, f"{what}: parameters {stage.params}, expected {case.params}"
    operands = tuple(op if isinstance(op, int) else _num(op) for op in app.operands)
    assert stage.operands == operands, f"{what}: operands {stage.operands}, expected {operands}"


@pytest.mark.parametrize("case", cases("lowering"))
def test_forward_lowers_back_to_the_gate(case):
    gate, app = case.gate, application(case)
    # its source form, parsed
    _assert_is_application(_one_stage(lower(parse(app.text)), app.text), case, app, app.text)
    # its meaning as SymPy writes it; a grouped gate from each of its circuits
    for form in (gate.forward, *gate.patterns):
        expr = form(*app.operand_exprs(), **case.sympy_params)
        programs = [("SymPy", from_sympy(expr, inputs=app.inputs))]
        if gate.grouped:
            text = f"f = {SourcePrinter().doprint(expr)}"
            programs.append((repr(text), parse(text)))
        for origin, program in programs:
            what = f"{expr} ({origin})"
            stage = _one_stage(lower(program, gates="grouped"), what)
            if (
                stage.gate != gate.name
                and origin == "SymPy"
                and gate.source is not None
                and not gate.grouped
                and any(isinstance(op, Num) for op in stage.operands)
            ):
                # SymPy cannot tell a named gate from another gate with a constant operand
                # (relu(x) is Max(x, 0)); its source name (checked above) is the way to write it.
                other = REGISTRY[stage.gate]
                args = [
                    app.symbols()[op] if isinstance(op, int) else sympy_number(op) for op in stage.operands
                ]
                params = {name: sympy_number(v) for name, v in zip(other.params, stage.params, strict=True)}
                meaning = other.forward(*args, **params)
                assert meaning == expr, f"{what} lowers to {stage.gate}, whose meaning {meaning} differs"
                continue
            _assert_is_application(stage, case, app, what)


@pytest.mark.parametrize("case", cases("fine", [c for c in CASES if c.gate.grouped]))
def test_grouped_gate_expands_under_fine_gates(case):
    app = application(case)
    graph = lower(parse(app.text), gates="fine")
    assert len(graph.stages) > 1 and all(s.gate != case.gate.name for s in graph.stages), graph.dump()
    assert not any(REGISTRY[s.gate].grouped for s in graph.stages), graph.dump()


# -- 6. end to end: stagegen.verify ---------------------------------------------------------


@pytest.mark.parametrize("case", cases("verify"))
def test_verify_accepts_the_gate(case):
    report = stagegen.verify(application(case).text, points=N_POINTS)
    assert report.ok and report.points == N_POINTS, report.table()


@pytest.mark.parametrize(
    "make",
    [
        sp.sign,
        sp.floor,
        sp.ceiling,
        sp.erfc,
        lambda x: sp.atan2(x, 1 - x),
        lambda x: sp.sqrt(x**2 + 4 * x**2),
    ],
    ids=["sign", "floor", "ceiling", "erfc", "atan2", "sqrt-of-squares"],
)
def test_sympys_own_functions_reach_their_gates(make):
    """SymPy's classes (sign, floor, ceiling, erfc, atan2) at the front door
    become the gates (not a comparison, not an unknown function); the module
    verifies against SymPy's own derivative."""
    x = sp.Symbol("x", real=True)
    build = stagegen.build(make(x) * x + x)
    report = stagegen.verify(build, points=8)
    assert report.ok, report.table()


@pytest.mark.parametrize(
    "source, gates, first",
    [
        ("min(max(x, y), z)", ["max", "min"], "x"),
        ("min(z, max(x, y))", ["max", "min"], "z"),
        ("max(min(x, z), y)", ["min", "max"], "x"),
    ],
)
def test_min_of_max_stays_min_and_max(source, gates, first):
    """clip is its own head: a program's min and max circuits keep their gates
    and their tie convention, never clip's (at a tie of all three the whole
    gradient goes to the outer gate's first operand, through the inner's)."""
    assert [s.gate for s in lower(parse(f"f = {source}")).stages] == gates
    mod = stagegen.load(f"f = {source}")
    _, grads = mod.value_and_grad(*[1.0] * len(mod.INPUTS))
    assert dict(zip(mod.INPUTS, grads, strict=True)) == {n: float(n == first) for n in mod.INPUTS}

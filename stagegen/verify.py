"""A generated module checked against SymPy (mpmath, 50 digits) and finite differences.

What is compared, at random points where the references are finite and real
(a stage that only a where's untaken branch reads may have no real value
there: sqrt(x) in where(x > 0, sqrt(x), -x) at x < 0; no reference reads it,
`_reached`):

- the value, from `value_and_grad` and `forward`, against the program itself:
  its SymPy statements evaluated node by node with mpmath at 50 digits, with
  no lowering and no gate rule in between (so lowering is checked too);
- every requested gradient, from `value_and_grad`, `backward(1.0, cache)` and
  `backward(c, cache)` for a random c, and every intermediate adjoint ``dv``,
  against one reverse sweep over the stage DAG at 50 digits: each stage's
  value from its gate's meaning, each adjoint the sum over the stage's uses of
  SymPy's partial derivative of the using gate's meaning times that gate's
  adjoint. The sweep's cost is linear in the number of stages, and a shared
  stage is computed once;
- every gradient against central finite differences of the module's own
  `forward` (skipped where two step sizes disagree: the point is near a kink).

The intermediate adjoints, and each backward line's own contribution, are
read from the module's own text, instrumented (`modules.instrumented`): an
edited line is checked as it is written, and a wrong one is named.

An array program is instantiated at small sizes, one scalar node per element
(`elements`), and gets the same references element by element (`_ArrayChecker`).

No reference reads what it checks: not the gates' gradient rules (`local`,
`vjp`), not the reverse pass, not the module. The tolerance is
``|g - r| <= RTOL * (|r| + s)``, s the magnitude of the terms that make r, a
first-order running-error bound propagated in the same sweep from the
meanings alone: a value's s is its magnitude plus its operands' s times the
partial derivatives' magnitudes (inputs are exact); an adjoint's adds, over
its contributions, |partial| * s(upstream) and s(partial) * |upstream|, with
s(partial) from SymPy's second derivatives of the meaning. Where that bound
is large, float64 cannot do better than it, and a difference below RTOL times
it is rounding, not a wrong rule; elsewhere the check is as tight as RTOL.
"""

from __future__ import annotations

import functools
import math
import random
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import mpmath
import sympy as sp

from . import elements, pipeline
from .backends import BACKENDS
from .differentiate import guards, index_bounds
from .errors import UsageError
from .expr import Num
from .fresh import Record, read, record, unversioned
from .gates import BY_FUNCTION, FUNCTIONS, REGISTRY, slot, sympy_number
from .ir import Domain
from .modules import AFTER, COPIES, LINES, assignments, instrumented, python_module, stage_names
from .parse import from_sympy, is_sympy
from .shapes import linear, size_value

RTOL = 1e-9  # against the 50-digit reference
FD_RTOL = 1e-6  # against finite differences of the float64 forward
FD_STEP = 1e-3  # relative step of the finite differences, shrunk by 4 until they settle
FD_REFINEMENTS = 8  # smaller steps tried
FD_NOISE = 1e-15  # rounding of a difference quotient: about eps * |f| / h
DPS = 50  # mpmath digits of the reference
SAMPLE_HALF_WIDTH = 3.0  # inputs are sampled uniformly in [-3, 3]
TRIES_PER_POINT = 50  # samples drawn per accepted point before giving up
FLOAT_MAX = 1e300  # larger magnitudes would overflow float64 on the way
# Below float64's smallest normal number a result keeps an absolute precision,
# not a relative one (gradual underflow): exp(-x**8) at x = 2.45 is 1e-565 and
# comes out 0.0, as it must. Differences this small are not counted.
UNDERFLOW = 2.0**-1022
MAX_CHECKED_ELEMENTS = 1_000_000  # per array input the array check instantiates
_UNUSABLE = (ValueError, ZeroDivisionError, TypeError, OverflowError)  # the maths has no real value here


@dataclass
class Row:
    quantity: str
    reference: str
    error: float = 0.0  # max over points of |g - r| / (|r| + s)
    points: int = 0
    tolerance: float = RTOL
    failure: str = ""
    seen: set = field(default_factory=set, repr=False)  # points compared
    worst: tuple = field(default=(), repr=False)  # (got, expected, where) of the largest error
    wrong_in: set = field(default_factory=set, repr=False)  # the functions that gave a wrong number

    @property
    def ok(self) -> bool:
        return not self.failure and self.error <= self.tolerance

    def add(self, got, ref, scale, where: str, function: str = "") -> None:
        self.seen.add(where.split(" [", 1)[0])
        self.points = len(self.seen)
        if got is None or isinstance(got, complex) or not math.isfinite(got):
            self.failure = self.failure or f"{got!r} at {where}"
            self.error = math.inf
            self.wrong_in.add(function)
            return
        diff = max(abs(got - ref) - UNDERFLOW, 0)
        err = float(diff / (abs(ref) + scale) if abs(ref) + scale > 0 else diff)
        if err > self.tolerance:
            self.wrong_in.add(function)
        if err > self.error:
            self.error = err
            if err > self.tolerance:
                self.worst = (got, float(ref), where)
                self.failure = f"got {got!r}, expected {float(ref)!r} at {where}"


@dataclass
class Report:
    rows: list[Row]
    points: int
    discarded: int
    notes: list[str] = field(default_factory=list)
    sampled: str = ""  # where the points came from: "x in [-3, 3], y in (0, 1)", or the points given
    inputs: tuple = ()  # the inputs' names
    given: bool = False  # the points were given, not drawn

    @property
    def ok(self) -> bool:
        return self.points > 0 and all(row.ok for row in self.rows)

    def table(self) -> str:
        width = max([len(r.quantity) for r in self.rows] + [8])
        lines = [f"{'quantity':<{width}}  {'reference':<18}  {'max error':>9}  {'points':>6}  status"]
        for r in self.rows:
            status = "MISMATCH: " + (r.failure or "") if not r.ok else "ok" if r.points else "not checked"
            lines.append(f"{r.quantity:<{width}}  {r.reference:<18}  {r.error:9.1e}  {r.points:6d}  {status}")
        lines.append(
            f"{self.points} points ({self.discarded} discarded: reference not finite or not real); "
            f"error = |g - r| / (|r| + s), tolerance {RTOL:g} (finite differences {FD_RTOL:g})"
        )
        if self.sampled:
            lines.append(f"points: {self.sampled}")
        lines += self.notes
        if self.points == 0 and self.given:
            lines.append("FAILED: the expression is not finite and real at any of the points given")
        elif self.points == 0:
            x = self.inputs[0] if self.inputs else "x"
            lines.append(
                "FAILED: no point found where the expression is finite and real; sample where it "
                f"is defined: declare a range ({x}: scalar in [5, 10]), or pass --domain {x}=5:10 "
                f"(verify(..., domain={{'{x}': (5, 10)}})), or give points (--check-at {x}=6)"
            )
        return "\n".join(lines)


def verify(target, *, points: int = 20, seed: int = 0, domain=None, at=None, **options) -> Report:
    """Check `target`: a `Build`, source text or a SymPy expression (generated
    with `options`), a generated module object, or the path of a generated
    module file (built once more from the source its docstring holds).

    Points are drawn at random (`points` of them, from `seed`), each input in
    its range: `domain` (a mapping from input name to (lo, hi), closed), else
    the range its declaration gives (x: scalar in [lo, hi]), else [-3, 3]. With
    `at` (a sequence of mappings from input name to value: a number, or for an
    array input an array), the check runs at exactly those points."""
    notes: list[str] = []
    module = program = None
    if isinstance(target, pipeline.Build):
        if options:
            raise UsageError(f"verify of a Build takes no generation options (got {', '.join(options)})")
        build, text = target, target.text
    elif isinstance(target, types.ModuleType) or (
        isinstance(target, (str, Path)) and str(target).endswith(".py") and Path(target).is_file()
    ):
        module, text, made = _module_and_text(target)
        build = made.build()
        if text is not None and unversioned(text) != unversioned(build.text):
            notes.append(
                "the module's text differs from what its source generates now (edited, or generated "
                "by another stagegen); it is checked as it is written"
            )
    else:
        build = pipeline.build(target, **options)
        text = build.text
        if is_sympy(target):  # the value against the expression itself, not its printed source
            program = from_sympy(target, options.get("inputs"), build.program.filename)
    if module is None:
        module = python_module(build.text, build.program.filename)
    sampling = _Sampling(build, domain, at)
    if not build.graph.elementwise:
        report = _ArrayChecker(build, module, _per_stage(build, text, notes), notes, sampling).run(
            points, seed
        )
    else:
        checker = _Checker(build, module, _per_stage(build, text, notes), notes, sampling, program)
        report = checker.run(points, seed)
    report.sampled, report.inputs, report.given = (
        sampling.describe(),
        tuple(sampling.names),
        sampling.at is not None,
    )
    return report


class _Sampling:
    """Where the points come from: each input's range, or the points given."""

    def __init__(self, build, domain, at):
        inputs, filename = build.graph.inputs, build.program.filename
        names = [i.name for i in inputs]
        given = dict(domain or {})
        unknown = [n for n in given if n not in names]
        if unknown:
            raise UsageError(
                f"a domain names {', '.join(map(str, unknown))}, which is not an input; "
                f"the inputs are {', '.join(names)}",
                file=filename,
            )
        self.names = names
        self.domains = [
            _domain(given[i.name], i.name, filename) if i.name in given else i.domain for i in inputs
        ]
        self.default = [d is None for d in self.domains]
        self.domains = [d or Domain(-SAMPLE_HALF_WIDTH, SAMPLE_HALF_WIDTH) for d in self.domains]
        self.graph = build.graph
        self.at = (
            None if at is None else [self._given(p, filename) for p in ([at] if isinstance(at, dict) else at)]
        )
        if self.at == []:
            raise UsageError("no point given to check at", file=filename)

    def _given(self, point, filename):
        check_point(point, self.graph, "at=", filename)
        return [point[n] for n in self.names]

    def draw(self, rng: random.Random, k: int) -> float:
        domain = self.domains[k]
        while True:
            x = rng.uniform(domain.lo, domain.hi)
            if domain.closed or domain.lo < x < domain.hi:
                return x

    def describe(self) -> str:
        if self.at is not None:
            return "the point given" if len(self.at) == 1 else f"the {len(self.at)} points given"
        return ", ".join(
            (
                f"{i.name} integers in the range of the axes it indexes"
                if i.integer
                else f"{i.name} in {d}" + (" (the default)" if default else "")
            )
            for i, d, default in zip(self.graph.inputs, self.domains, self.default, strict=True)
        )


def check_point(point: dict, graph, where: str, file: str, hint: str = "", shape_hint: str = "") -> None:
    """A value for each input of `graph` and no other name, each of the shape the
    check needs: a number in a program of scalars, an array of the declared sizes
    in an array program (a size name the same size throughout); else a UsageError
    that starts with `where`."""
    names = [i.name for i in graph.inputs]
    extra = [str(n) for n in point if n not in names]
    missing = [n for n in names if n not in point]
    problems = []
    if extra:
        problems.append(
            f"names {', '.join(extra)}, which {'is not an input' if len(extra) == 1 else 'are not inputs'}"
        )
    if missing:
        problems.append(f"misses {', '.join(missing)}")
    if problems:
        raise UsageError(
            f"{where}: the point {', and '.join(problems)} (the inputs are {', '.join(names)})",
            file=file,
            hint=hint or f"give every input a value: {', '.join(f'{n}=...' for n in names)}",
        )
    sizes: dict = {}
    for i in graph.inputs:
        shape = getattr(point[i.name], "shape", ())
        needed = () if graph.elementwise else i.shape
        if needed is not None and not _fits(shape, needed, sizes):
            raise UsageError(
                f"{where}: {i.name} is {_described(shape)}; the program needs {_described(needed, sizes)}",
                file=file,
                hint=shape_hint or hint or "give each input a value of its declared shape",
            )


def _fits(shape: tuple, needed: tuple, sizes: dict) -> bool:
    def fits(n: int, d) -> bool:
        c, name, k = linear(d) or (1, d, 0)  # a multiple of a name (4*H) ties the name
        if name is not None and name not in sizes and (n - k) % c == 0:
            sizes[name] = (n - k) // c
        return n == (k if name is None else c * sizes.get(name, -1) + k)

    return len(shape) == len(needed) and all(fits(n, d) for n, d in zip(shape, needed, strict=True))


def _described(shape: tuple, sizes: dict | None = None) -> str:
    """A shape in words; a size name bound in `sizes` shows its size (m=3)."""
    if not shape:
        return "a number"
    dims = [f"{d}={sizes[d]}" if sizes and d in sizes else str(d) for d in shape]
    return f"an array of shape ({', '.join(dims)}{',' * (len(dims) == 1)})"


def _domain(value, name: str, filename: str) -> Domain:
    """A range given as (lo, hi), "lo:hi" or a Domain (closed)."""
    if isinstance(value, Domain):
        return value
    try:
        lo, hi = (float(v) for v in (value.split(":") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise UsageError(
            f"the domain of {name} is {value!r}; give (lo, hi) or 'lo:hi'", file=filename
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UsageError(f"the domain of {name}, {value!r}, is not a range lo < hi", file=filename)
    return Domain(lo, hi)


def _per_stage(build, text: str | None, notes: list[str]) -> str | None:
    """The module's own text, for the per-stage check, if its stages are the
    build's (each line numbered (k) binds stage k's name)."""
    graph, names = build.graph, build.names
    expected = {k + 1: names.values[stage.out] for k, stage in enumerate(graph.stages)}
    if text is None or stage_names(text) != expected:
        notes.append(
            "the module's stages differ from what its source generates now (or its text is not "
            "available): the per-stage adjoint check is skipped"
        )
        return None
    return text


def _adjoint_rows(build) -> list[tuple[int, str, str]]:
    """(stage, label, the adjoint's name in the module) for every stage adjoint the module computes."""
    graph, names, backward = build.graph, build.names, build.backward
    return [
        (k, f"d{names.values[s.out]} ({k + 1})", names.adjoint(backward, s.out))
        for k, s in enumerate(graph.stages)
        if (len(graph.outputs) > 1 or s.out not in graph.outputs)
        and (s.out in names.adjoints or s.out in backward.alias)
    ]


def _culprits(build, contributions: list, rows: dict[int, Row]) -> list[str]:
    """The lines that turn correct adjoints into a wrong one, each by number
    and text and how far off it is. `rows`: the adjoint rows by value."""
    graph = build.graph
    wrong = {v for v, row in rows.items() if not row.ok}
    notes = []
    for v, row in rows.items():
        if v not in wrong:
            continue
        users = [j for j, s in enumerate(graph.stages) if v in s.values()]
        if any(graph.stages[j].out in wrong for j in users):
            continue
        parts = [p for p in contributions if p.value == v and p.function in row.wrong_in]
        culprits = [p for p in parts if not p.row.ok]
        head = f"{row.quantity} is wrong, and every adjoint it is made from is right; "
        if culprits:
            notes.append(
                head
                + f"the line{'s' * (len(culprits) > 1)} that make{'s' * (len(culprits) == 1)} it wrong:"
                + "".join(f"\n  {_off(p)}" for p in culprits)
            )
        elif parts:  # each line is right alone: one is missing, or one too many
            notes.append(
                head
                + "no line of it is off alone (is one missing, or one too many?); the lines that make it:"
                + "".join(
                    f"\n  line {line.number} ({line.function}): {line.text}"
                    for p in parts
                    for line in p.lines
                )
            )
        else:
            marks = ", ".join(f"({j + 1})" for j in users)
            notes.append(head + f"check the backward lines marked {marks}")
    return notes


@dataclass
class _Contribution:
    """The lines of one function of the module that add stage `stage`'s share
    to the adjoint of `value` (one line, or one per operand slot it fills)."""

    function: str
    stage: int
    value: int
    lines: list
    row: Row


def _off(part: _Contribution) -> str:
    """Where a wrong contribution is written, how far off it is, and its text."""
    got, expected, where = part.row.worst or (None, 0.0, "")
    off = f"{abs(got - expected) / abs(expected):.1e} relative" if part.row.worst and expected else "wrong"
    line = part.lines[0]
    more = "".join(f" and line {other.number}" for other in part.lines[1:])
    text = "; ".join(other.text for other in part.lines)
    return f"line {line.number}{more} ({part.function}) is off by {off} at {where}: {text}"


def _finished(text: str) -> dict[tuple[str, str], int]:
    """(function, name) -> the line of the last numbered assignment to the name
    in the function: once it has run, the name holds its final value."""
    last: dict[tuple[str, str], int] = {}
    for (name, _), lines in assignments(text).items():
        for line in lines:
            key = (line.function, name)
            last[key] = max(last.get(key, 0), line.number)
    return last


def _adjoint_values(got: dict, finished: dict, function: str) -> dict:
    """The locals of an instrumented function, each name that numbered lines
    assign as it was once the last of them had run (a later line may update an
    array in place, through a view of it)."""
    after = got.get(AFTER, {})
    values = dict(got)
    for (where, name), line in finished.items():
        if where == function and line in after:
            values[name] = after[line]
    return values


def _contributions(build, text: str) -> list[_Contribution]:
    """Every backward line of the module's text, grouped by what it contributes:
    a line ``dv = ...  # (k)`` or ``dv += ...  # (k)`` is stage k's share of the
    adjoint of the operand of stage k whose adjoint is named dv."""
    graph, names, backward = build.graph, build.names, build.backward
    made = assignments(text)
    groups: dict[tuple, _Contribution] = {}
    for k, stage in enumerate(graph.stages):
        for v in dict.fromkeys(op for op in stage.operands if isinstance(op, int)):
            if not (v in names.adjoints or v in backward.alias):
                continue
            for line in made.get((names.adjoint(backward, v), k + 1), ()):
                key = (line.function, k, v)
                if key not in groups:
                    groups[key] = _Contribution(line.function, k, v, [], Row("", ""))
                groups[key].lines.append(line)
    return list(groups.values())


def _module_and_text(target) -> tuple[types.ModuleType, str | None, Record]:
    """The module, its text (None if not to be had) and its record; a file is
    run only once its docstring says stagegen generated it."""
    if isinstance(target, types.ModuleType):
        import inspect
        import linecache

        made = record(target.__doc__)
        lines = linecache.getlines(getattr(target, "__file__", "") or "")
        if lines:
            return target, "".join(lines), made
        try:
            return target, inspect.getsource(target), made
        except (OSError, TypeError):
            return target, None, made
    text, made = read(target)
    return python_module(text, str(target)), text, made


# -- references: the program's meaning, never the rules under test -------------


def _heaviside(x, at_zero=0.5):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(at_zero)


# SymPy writes derivatives of max, min and relu with Heaviside; printed as a
# function it avoids the (slow) rewrite to Piecewise. Its value at 0 is never
# used: points on a kink compare the value only.
_MODULES = [{"Heaviside": _heaviside}, "mpmath"]


def _lambdified(args, expr) -> Callable | None:
    """`expr` as an mpmath function of `args`; None for an expression that is 0.
    DiracDelta (a derivative of a kink) is 0: kinks have measure zero."""
    expr = sp.sympify(expr).replace(sp.DiracDelta, lambda *a: sp.Integer(0))
    return None if expr == 0 else sp.lambdify(args, expr, modules=_MODULES)


@dataclass(frozen=True)
class _Meaning:
    """One gate application's meaning in mpmath: its value, SymPy's first and
    second partial derivatives of it, and its kinks. Never its gradient rules."""

    value: Callable
    partials: tuple  # d value / d operand i (None: 0)
    second: tuple  # [i][j]: d partials[i] / d operand j (None: 0)
    kink: tuple | None  # (distance to a kink, its slopes per operand); None: smooth
    # a where's (condition, then, else) operands: it reads only the branch taken
    select: tuple[int, int, int] | None = None


@functools.lru_cache(maxsize=None)
def _value(gate_name: str, arity: int, params: tuple) -> Callable:
    """A gate application's value, in mpmath (all the program check needs)."""
    xs = [slot(i) for i in range(arity)]
    return sp.lambdify(xs, REGISTRY[gate_name].meaning(*xs, *map(sympy_number, params)), modules=_MODULES)


@functools.lru_cache(maxsize=None)
def _meaning(gate_name: str, arity: int, params: tuple) -> _Meaning:
    gate = REGISTRY[gate_name]
    xs = [slot(i) for i in range(arity)]
    f = sp.sympify(gate.meaning(*xs, *map(sympy_number, params)))
    kinks = None if gate.smooth else gate.kink(*xs)
    meaning = _derived(f, xs, _value(gate_name, arity, params), kinks)
    if gate.branches is None:
        return meaning
    return replace(meaning, select=(gate.conditions[0], *gate.branches))


@functools.lru_cache(maxsize=None)
def _expression_meaning(expr: sp.Expr, arity: int) -> _Meaning:
    """An element of a structural gate's output: its expression over slot(i)
    (`elements`); smooth, as matmul and the reductions are."""
    return _derived(expr, [slot(i) for i in range(arity)], _expression_value(expr, arity), None)


@functools.lru_cache(maxsize=None)
def _expression_value(expr: sp.Expr, arity: int) -> Callable:
    return sp.lambdify([slot(i) for i in range(arity)], expr, modules=_MODULES)


def _derived(f: sp.Expr, xs: list, value: Callable, kinks) -> _Meaning:
    """A meaning's value, SymPy's first and second partial derivatives, and its kinks."""
    first = [sp.diff(f, x) for x in xs]
    return _Meaning(
        value=value,
        partials=tuple(_lambdified(xs, d) for d in first),
        second=tuple(tuple(_lambdified(xs, sp.diff(d, x)) for x in xs) for d in first),
        kink=(
            None
            if kinks is None
            else tuple((_lambdified(xs, e), [_lambdified(xs, sp.diff(e, x)) for x in xs]) for e in kinks)
        ),
    )


def _element_meaning(node) -> _Meaning:
    """The meaning of one element of an instantiated array program (`elements.Node`)."""
    if node.gate is not None:
        return _meaning(node.gate, len(node.operands), node.params)
    return _expression_meaning(node.expr, len(node.operands))


def _element_value(node) -> Callable:
    if node.gate is not None:
        return _value(node.gate, len(node.operands), node.params)
    return _expression_value(node.expr, len(node.operands))


@functools.lru_cache(maxsize=None)
def _head(func, arity: int) -> Callable:
    """A SymPy function class (Add, Mul, Pow, exp, Max, ...) applied to `arity`
    arguments, as an mpmath function."""
    xs = [sp.Dummy(real=True) for _ in range(arity)]
    return sp.lambdify(xs, func(*xs), modules=_MODULES)


def _call(fn, args):
    return _real(fn(*args)) if fn is not None else mpmath.mpf(0)


def _or_nan(fn, args):
    """`_call`, or NaN where the maths has no real value (a stage that only a
    where's untaken branch reads may have none: `_reached` leaves it out)."""
    try:
        return _call(fn, args)
    except _UNUSABLE:
        return mpmath.nan


def _reached(nodes, values, outputs) -> list[bool]:
    """Which values the outputs read at this point: back from the outputs through
    every operand, but through a where only its condition and the branch it takes
    there (where(x > 0, sqrt(x), 0) reads no sqrt of a negative x)."""
    n = len(values) - len(nodes)
    reached = [False] * len(values)
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if reached[v]:
            continue
        reached[v] = True
        if v < n:
            continue
        meaning, operands = nodes[v - n]
        read = range(len(operands))
        if meaning.select is not None:
            condition, then, other = meaning.select
            c = operands[condition]
            read = (condition, then if (values[c] if isinstance(c, int) else c) != 0 else other)
        stack.extend(operands[i] for i in read if isinstance(operands[i], int))
    return reached


class _Program:
    """The program's output as its own SymPy statements compute it: every
    distinct node of every statement once, in an order that evaluates operands
    first, at 50 digits. Gate applications take their meaning; SymPy's own
    functions are evaluated as SymPy defines them. No lowering, no rules."""

    def __init__(self, program):
        with mpmath.workdps(DPS):
            self._steps(program)

    def _steps(self, program) -> None:
        slots = {i.name: k for k, i in enumerate(program.inputs)}
        self.n_inputs = len(slots)
        self.steps: list[tuple[Callable | None, tuple[int, ...], object]] = (
            []
        )  # (fn, operand slots, constant)
        for statement in program.statements:
            memo: dict[int, int] = {}
            stack = [(statement.expr, False)]
            while stack:
                node, ready = stack.pop()
                if id(node) in memo:
                    continue
                if isinstance(node, sp.Symbol):
                    memo[id(node)] = slots[node.name]
                    continue
                fn, operands = self._decode(node)
                if not ready:
                    stack.append((node, True))
                    stack.extend((a, False) for a in reversed(operands) if id(a) not in memo)
                    continue
                constant = None if operands else mpmath.mpf(sp.N(node, DPS))
                self.steps.append((fn, tuple(memo[id(a)] for a in operands), constant))
                memo[id(node)] = self.n_inputs + len(self.steps) - 1
            slots[statement.name] = memo[id(statement.expr)]
        self.outputs = [slots[name] for name in program.outputs]

    @staticmethod
    def _decode(node) -> tuple[Callable | None, tuple]:
        """The node's function and its operands (a gate's parameters are part of its function)."""
        if not node.args:
            return None, ()
        gate = BY_FUNCTION.get(node.func)
        if gate is not None:
            n = gate.arity(len(node.args))
            return _value(gate.name, n, tuple(node.args[n:])), node.args[:n]
        return _head(node.func, len(node.args)), node.args

    def value(self, point):
        values = list(map(mpmath.mpf, point))
        for fn, operands, constant in self.steps:
            values.append(constant if fn is None else _or_nan(fn, [values[k] for k in operands]))
        return [values[k] for k in self.outputs]


@dataclass
class _Sweep:
    """One point of the stage DAG at 50 digits: values, the partial derivatives
    of each stage, every adjoint (d output / d value), and rounding scales."""

    values: list
    adjoint: list
    value_scale: list  # s of each value
    adjoint_scale: list  # s of each adjoint
    kink: bool  # a non-smooth gate is on (or float64-indistinguishably near) its kink
    parts: dict  # (stage index, operand value) -> (its contribution to the adjoint, the scale)
    reached: list  # which values the outputs read here (`_reached`): the others may be NaN


def _forward(nodes, point) -> tuple[list, list, list]:
    """Every value of a program of scalar nodes at `point`, each node's operand
    values, and its partial derivatives there (None for a constant operand)."""
    values = list(map(mpmath.mpf, point))
    args, partials = [], []
    for meaning, operands in nodes:
        a = [values[op] if isinstance(op, int) else op for op in operands]
        values.append(_or_nan(meaning.value, a))
        args.append(a)
    for (meaning, operands), a in zip(nodes, args, strict=True):
        partials.append(
            [
                _or_nan(d, a) if isinstance(op, int) else None
                for op, d in zip(operands, meaning.partials, strict=True)
            ]
        )
    return values, args, partials


def _sweep(nodes, point, seeds: dict) -> _Sweep:
    """The values, adjoints and scales of a program of scalar nodes at `point`
    (node k defines value ``len(point) + k``; an operand is a value id or a
    number), the adjoints seeded with `seeds` (value id -> d output / d value)."""
    n = len(point)
    values, args, partials = _forward(nodes, point)
    reached = _reached(nodes, values, seeds)
    zero = mpmath.mpf(0)
    scale = [zero] * n + [abs(values[v]) if reached[v] else zero for v in range(n, len(values))]
    for k, ds in enumerate(partials):  # inputs are exact; stages round once
        for op, d in zip(nodes[k][1], ds, strict=True):
            if d is not None and reached[n + k] and reached[op]:
                scale[n + k] += abs(d) * scale[op]
    adjoint, adjoint_scale = [zero] * len(values), [zero] * len(values)
    for v, seed in seeds.items():
        adjoint[v], adjoint_scale[v] = mpmath.mpf(seed), abs(mpmath.mpf(seed))
    parts: dict = {}
    for k in reversed(range(len(nodes))):
        (meaning, operands), a, ds = nodes[k], args[k], partials[k]
        up, up_scale = adjoint[n + k], adjoint_scale[n + k]
        if (up == 0 and up_scale == 0) or not reached[n + k]:
            continue
        for i, (op, d) in enumerate(zip(operands, ds, strict=True)):
            if d is None or not reached[op]:  # (a where's untaken branch: its partial is 0)
                continue
            # the partial's own rounding: |d| plus its slopes times its operands' scales
            d_scale = abs(d) + sum(
                (
                    abs(_call(dd, a)) * scale[o]
                    for o, dd in zip(operands, meaning.second[i], strict=True)
                    if dd is not None and isinstance(o, int) and reached[o]
                ),
                zero,
            )
            part, part_scale = parts.get((k, op), (zero, zero))
            parts[(k, op)] = (part + d * up, part_scale + abs(d) * up_scale + d_scale * abs(up))
            adjoint[op] += d * up
            adjoint_scale[op] += abs(d) * up_scale + d_scale * abs(up)
    kink = _at_kink(nodes, args, scale, reached)
    return _Sweep(values, adjoint, scale, adjoint_scale, kink, parts, reached)


def _tangents(nodes, partials, tangent, reached) -> tuple[list, list]:
    """Every value's tangent along `tangent` (one number per input), from the
    nodes' partial derivatives (`_forward`), and its scale; 0 for a value the
    outputs do not read there (`_reached`)."""
    zero = mpmath.mpf(0)
    n = len(tangent)
    tangents = list(map(mpmath.mpf, tangent)) + [zero] * len(nodes)
    scales = [abs(t) for t in tangents]
    for k, ((_, operands), ds) in enumerate(zip(nodes, partials, strict=True)):
        if not reached[n + k]:
            continue
        terms = [(d, op) for op, d in zip(operands, ds, strict=True) if d is not None and reached[op]]
        tangents[n + k] = sum((d * tangents[op] for d, op in terms), zero)
        scales[n + k] = sum((abs(d) * scales[op] for d, op in terms), zero)
    return tangents, scales


def _second_order(nodes, point, seeds: dict, tangent) -> tuple[list, list]:
    """Forward over reverse at 50 digits from SymPy's first and second partial
    derivatives of the meanings (never the gates' rules): the derivative of
    every adjoint along `tangent` (one number per input), and its scale (the
    magnitudes of the terms that make it)."""
    n = len(point)
    values, args, partials = _forward(nodes, point)
    reached = _reached(nodes, values, seeds)
    zero = mpmath.mpf(0)
    tangents, _ = _tangents(nodes, partials, tangent, reached)
    adjoint, moved, scale = [zero] * len(values), [zero] * len(values), [zero] * len(values)
    for v, seed in seeds.items():
        adjoint[v] = mpmath.mpf(seed)
    for k in reversed(range(len(nodes))):
        (meaning, operands), a, ds = nodes[k], args[k], partials[k]
        up, moved_up = adjoint[n + k], moved[n + k]
        if (up == 0 and moved_up == 0) or not reached[n + k]:
            continue
        for i, (op, d) in enumerate(zip(operands, ds, strict=True)):
            if d is None or not reached[op]:
                continue
            slopes = [
                _call(dd, a) * tangents[o]
                for o, dd in zip(operands, meaning.second[i], strict=True)
                if dd is not None and isinstance(o, int) and reached[o]
            ]
            adjoint[op] += d * up
            moved[op] += sum(slopes, zero) * up + d * moved_up
            scale[op] += sum((abs(t) for t in slopes), zero) * abs(up) + abs(d) * scale[n + k]
    return moved, scale


def _at_kink(nodes, args, scale, reached) -> bool:
    """Some non-smooth node the outputs read is at a kink, or closer to one than
    float64 can tell (max(log(exp(x)), x): a tie in exact arithmetic, not after
    rounding)."""
    n = len(reached) - len(nodes)
    for k, ((meaning, operands), a) in enumerate(zip(nodes, args, strict=True)):
        if not reached[n + k]:
            continue
        for distance, slopes in meaning.kink or ():
            spread = sum(
                (
                    abs(_call(d, a)) * (scale[op] if isinstance(op, int) else abs(x))
                    for d, op, x in zip(slopes, operands, a, strict=True)
                ),
                mpmath.mpf(0),
            )
            if abs(_call(distance, a)) <= RTOL * spread:
                return True
    return False


class _Checker:
    def __init__(self, build, module, text: str | None, notes, sampling: _Sampling, program=None):
        """`text`: the module's own text, instrumented for the per-stage check (None: no such
        check); `program`: the value's reference, if not the build's (a SymPy expression's own)."""
        self.build, self.module, self.text, self.notes = build, module, text, notes
        self.instrumented = None if text is None else instrumented(text, build.program.filename)
        self.sampling = sampling
        graph, backward = build.graph, build.backward
        self.names = [i.name for i in graph.inputs]
        self.wrt = [graph.inputs[k].name for k in backward.wrt]
        self.meanings = [_meaning(s.gate, len(s.operands), s.params) for s in graph.stages]
        self.program = _Program(program or build.program)
        self.outputs = graph.outputs
        self.constants: dict[int, mpmath.mpf] = {}  # id(number operand) -> its value at 50 digits
        with mpmath.workdps(DPS):
            for stage in graph.stages:
                for op in stage.operands:
                    if isinstance(op, Num) and id(op) not in self.constants:
                        self.constants[id(op)] = mpmath.mpf(sp.N(sympy_number(op), DPS))
        # (stage, label, the adjoint's name in the module) for every adjoint the module computes
        self.adjoint_rows = [] if text is None else _adjoint_rows(build)
        self.contributions = [] if text is None else _contributions(build, text)
        self.finished = {} if text is None else _finished(text)
        # the stages as the sweep reads them: a meaning and its operands (value ids or numbers at 50 digits)
        self.nodes = [
            (meaning, tuple(op if isinstance(op, int) else self.constants[id(op)] for op in stage.operands))
            for stage, meaning in zip(graph.stages, self.meanings, strict=True)
        ]

    # -- the references at one point --------------------------------------------
    def _points(self, rng: random.Random, points: int):
        """The points to check: those given, or random ones from the inputs' ranges."""
        if self.sampling.at is not None:
            yield from ([float(x) for x in point] for point in self.sampling.at)
            return
        while True:
            yield [self.sampling.draw(rng, k) for k in range(len(self.names))]

    def _sample(self, point, weights):
        """(point, the outputs' values, the sweep seeded with `weights`), or None
        where a reference is not finite and real."""
        with mpmath.workdps(DPS):
            try:
                values = self.program.value(point)
                seeds = {out: mpmath.mpf(w) for out, w in zip(self.outputs, weights, strict=True)}
                sweep = _sweep(self.nodes, point, seeds)
            except _UNUSABLE:
                return None
        grads = [sweep.adjoint[k] for k in self.build.backward.wrt]
        if not _usable([*values, *grads]) or not _usable(_read(sweep)):
            return None
        return point, values, sweep

    def _weights(self, rng: random.Random) -> list[float]:
        """dout at one point: 1.0 for one output; for several, a distinct weight
        each (a swapped or dropped output shows)."""
        if len(self.outputs) == 1:
            return [1.0]
        return [round(rng.uniform(0.5, 2.0), 3) for _ in self.outputs]

    # -- the run --------------------------------------------------------------
    def run(self, points: int, seed: int) -> Report:
        rng = random.Random(seed)
        graph, wrt_ids = self.build.graph, self.build.backward.wrt
        several = len(self.outputs) > 1
        value_rows = [Row(self.build.names.values[o], "sympy/mpmath") for o in self.outputs]
        value_row = value_rows[0]  # failures are reported on the first
        grad_rows = {
            w: Row(f"d{w}" if f"d{w}" not in self.names else f"gradient of {w}", "sympy/mpmath")
            for w in self.wrt
        }
        fd_rows = {w: Row(grad_rows[w].quantity, "finite differences", tolerance=FD_RTOL) for w in self.wrt}
        adj_rows = {k: Row(label, "mpmath, per stage") for k, label, _ in self.adjoint_rows}
        function_rows = _function_rows(self.build.options.with_, per_stage=self.instrumented is not None)
        self.tangent_rows: dict = {}
        accepted = discarded = kinks = 0
        smooth = []  # (point, reference, value scale, gradient scales, where) away from kinks
        candidates = self._points(rng, points)
        given = self.sampling.at is not None
        while given or (accepted < points and discarded < points * TRIES_PER_POINT):
            point = next(candidates, None)
            if point is None:
                break
            weights = self._weights(rng)
            sample = self._sample(point, weights)
            if sample is None:
                discarded += 1
                if given:  # a point asked for that cannot be checked: say which
                    value_row.failure = value_row.failure or (
                        "the reference is not finite and real at the point given "
                        + "("
                        + ", ".join(f"{n}={x!r}" for n, x in zip(self.names, point, strict=True))
                        + ")"
                    )
                    value_row.error = math.inf
                continue
            accepted += 1
            point, values, sweep = sample
            grad_ref = [sweep.adjoint[k] for k in wrt_ids]
            value_scales = [_finite(sweep.value_scale[o]) for o in self.outputs]
            scales = [_finite(sweep.adjoint_scale[k]) for k in wrt_ids]
            where = "(" + ", ".join(f"{n}={x!r}" for n, x in zip(self.names, point, strict=True)) + ")"
            if several:
                where += " with dout = (" + ", ".join(map(repr, weights)) + ")"
            try:
                results = self._evaluate(point, rng, weights)
            except Exception as exc:  # the module failed at a point where the maths is finite
                value_row.failure = f"raised {type(exc).__name__}: {exc} at {where}"
                value_row.error = math.inf
                continue
            if sweep.kink:
                # A non-smooth gate sits exactly on its kink (a tie of max, relu at 0):
                # SymPy's derivative there is an average (Heaviside(0) = 1/2), the
                # module follows the gate's convention; only the value compares.
                kinks += 1
                for row, got, ref, scale in zip(value_rows, results[0][0], values, value_scales, strict=True):
                    row.add(got, ref, scale, where)
                continue
            for got_values, grads, label in results:
                if got_values is not None:
                    for row, got, ref, scale in zip(
                        value_rows, got_values, values, value_scales, strict=True
                    ):
                        row.add(got, ref, scale, f"{where} [{label}]")
                for w, g, r, sc in zip(self.wrt, grads, grad_ref, scales, strict=True):
                    grad_rows[w].add(g, r, sc, f"{where} [{label}]", label.split("(", 1)[0])
            smooth.append((point, [*values, *grad_ref], value_scales, scales, where))
            weighted_scale = sum(w * sc for w, sc in zip(weights, value_scales, strict=True))
            self._finite_differences(point, weights, results[0][1], scales, weighted_scale, fd_rows, where)
            if self.adjoint_rows:
                self._adjoints(point, weights, sweep, adj_rows, where)
            if function_rows:
                self._functions(
                    point,
                    (values, value_scales, value_rows),
                    weights,
                    results[0][1],
                    rng,
                    function_rows,
                    where,
                )
        integer_rows = []
        if BACKENDS[self.build.options.backend].arrays and smooth and not several:
            self._arrays(smooth, value_row, grad_rows)
            integer_rows.append(Row("integer inputs", "the same as floats"))
            columns = [[item[0][i] for item in smooth] for i in range(len(self.names))]
            _integers(self.module, columns, self.wrt, integer_rows[0], "(the points as arrays)")
        rows = [
            *value_rows,
            *grad_rows.values(),
            *fd_rows.values(),
            *integer_rows,
            *function_rows.values(),
            *adj_rows.values(),
        ]
        notes = list(self.notes)
        if several:
            notes.append(
                "the gradients are backward's, with a weight per output as dout (drawn per point); "
                "their reference is the gradient of the weighted sum of the outputs"
            )
        if kinks:
            notes.append(
                f"{kinks} of the points lie exactly on a kink (a tie of max or min, 0 in relu or "
                "abs): there the gradients follow the subgradient convention of the gate table, "
                "and only the value was compared with SymPy"
            )
        if self.text is not None:
            inputs = {self.build.backward.wrt[i]: grad_rows[w] for i, w in enumerate(self.wrt)}
            stages = {graph.stages[k].out: row for k, row in adj_rows.items()}
            notes += _culprits(self.build, self.contributions, inputs | stages)
            for function, per_value in self.tangent_rows.items():
                notes += _tangent_culprits(self.build, self.text, function, per_value, stages)
        return Report(rows, accepted, discarded, notes)

    def _arrays(self, smooth, value_row, grad_rows):
        """The numpy backend: every point at once, as arrays, element by element
        against the same references."""
        import numpy as np

        columns = [np.array([item[0][i] for item in smooth]) for i in range(len(self.names))]
        try:
            value, grads = self.module.value_and_grad(*columns)
            value = np.broadcast_to(value, (len(smooth),))
            grads = [np.broadcast_to(g, (len(smooth),)) for g in grads]
        except Exception as exc:
            value_row.failure = f"raised {type(exc).__name__}: {exc} on arrays of the points"
            value_row.error = math.inf
            return
        for k, (_, ref, value_scales, scales, where) in enumerate(smooth):
            where = f"{where} [element {k} of arrays of all the points]"
            value_row.add(float(value[k]), ref[0], value_scales[0], where)
            for w, g, r, sc in zip(self.wrt, grads, ref[1:], scales, strict=True):
                grad_rows[w].add(float(g[k]), r, sc, where)

    def _evaluate(self, point, rng, weights):
        """[(the outputs' values or None, the gradients for dout = weights, how)]."""
        m = self.module
        c = rng.uniform(0.5, 2.0)
        if len(self.outputs) > 1:
            values, cache = m.forward(*point)
            g = m.backward(tuple(weights), cache)
            gc = m.backward(tuple(c * w for w in weights), cache)
            return [
                (list(values), list(g), "backward(dout)"),
                (None, [x / c for x in gc], f"backward({c!r} * dout) / {c!r}"),
            ]
        value, grads = m.value_and_grad(*point)
        v2, cache = m.forward(*point)
        g1 = m.backward(1.0, cache)
        gc = m.backward(c, cache)
        return [
            ([value], list(grads), "value_and_grad"),
            ([v2], list(g1), "backward(1.0)"),
            (None, [g / c for g in gc], f"backward({c!r}) / {c!r}"),
        ]

    def _finite_differences(self, point, weights, grads, scales, value_scale, rows, where):
        """Each gradient against central differences of the module's forward
        (of the outputs' sum weighted by `weights`, for several).

        Steps shrink by 4 until three consecutive estimates agree (the function
        is smooth on that scale; two can agree by chance where it oscillates); a
        quotient's own rounding, about eps * |f| / h, is part of the allowance.
        No agreement: nothing is compared at this point.
        """
        if len(self.outputs) == 1:
            fwd = self.module.forward
        else:

            def fwd(*p):
                return (sum(w * v for w, v in zip(weights, self.module.forward(*p)[0], strict=True)),)

        for w, g, s in zip(self.wrt, grads, scales, strict=True):
            i = self.names.index(w)
            h = FD_STEP * max(1.0, abs(point[i]))
            try:
                estimates = [_central(fwd, point, i, h)]
                agreed = 0
                for _ in range(FD_REFINEMENTS):
                    h /= 4
                    estimates.append(_central(fwd, point, i, h))
                    noise = FD_NOISE * value_scale / h
                    close = abs(estimates[-1] - estimates[-2]) <= FD_RTOL * abs(estimates[-1]) + noise
                    agreed = agreed + 1 if close else 0
                    if agreed == 2:
                        rows[w].add(g, estimates[-1], s + noise / FD_RTOL, where)
                        break
            except (ValueError, ZeroDivisionError, OverflowError):
                continue

    def _functions(self, point, value_refs, weights, grads, rng, rows, where):
        """value_and_jacobian entry by entry, and jvp along a random tangent,
        against one sweep per output (each output's gradient at 50 digits); jvp
        also against backward: <jvp(t), w> = <t, backward(w)>."""
        values, value_scales, value_rows = value_refs
        with mpmath.workdps(DPS):
            sweeps = [_sweep(self.nodes, point, {o: mpmath.mpf(1)}) for o in self.outputs]
        jac = [[s.adjoint[k] for k in self.build.backward.wrt] for s in sweeps]
        jac_scale = [[_finite(s.adjoint_scale[k]) for k in self.build.backward.wrt] for s in sweeps]
        several = len(self.outputs) > 1
        for function in ("jacobian", "jacobian_diag"):
            if function not in rows:
                continue
            calls = [(point, f"value_and_{function}", lambda x: x)]
            if function == "jacobian_diag" and BACKENDS[self.build.options.backend].arrays:
                import numpy as np

                calls.append(([np.array([x]) for x in point], "on arrays of one element", lambda x: x[0]))
            for args, how, element in calls:
                got_values, got = getattr(self.module, f"value_and_{function}")(*args)
                got_values = list(got_values) if several else [got_values]
                for row, g, r, sc in zip(value_rows, got_values, values, value_scales, strict=True):
                    row.add(element(g), r, sc, f"{where} [{how}]")
                if len(got) != len(self.outputs) or any(len(r) != len(self.wrt) for r in got):
                    rows[function].failure = (
                        f"J is not {len(self.outputs)} rows of {len(self.wrt)} at {where}"
                    )
                    rows[function].error = math.inf
                    return
                for i, out in enumerate(self.outputs):
                    for j, w in enumerate(self.wrt):
                        entry = f"d{self.build.names.values[out]}/d{w}"
                        rows[function].add(
                            element(got[i][j]), jac[i][j], jac_scale[i][j], f"{where} [{entry}, {how}]"
                        )
        for function in ("hvp", "hessian"):
            if function in rows:
                self._second_order(
                    function, point, values[0], value_scales[0], grads, rng, rows, value_rows, where
                )
        if "jvp" in rows:
            tangents = [round(rng.uniform(-1.0, 1.0), 3) for _ in self.wrt]
            got_values, got = self.module.jvp(*point, *tangents)
            got_values, got = (list(x) if several else [x] for x in (got_values, got))
            on = f"{where} with tangents ({', '.join(map(repr, tangents))})"
            for row, g, r, sc in zip(value_rows, got_values, values, value_scales, strict=True):
                row.add(g, r, sc, f"{on} [jvp]")
            for i in range(len(self.outputs)):
                ref = sum((jac[i][j] * t for j, t in enumerate(tangents)), mpmath.mpf(0))
                scale = sum(abs(sc * t) for sc, t in zip(jac_scale[i], tangents, strict=True))
                rows["jvp"].add(got[i], ref, scale, f"{on} [{self.build.names.values[self.outputs[i]]}]")
            if self.instrumented is not None:
                self._tangent_lines("jvp", point, tangents, rows, on)
            # the dot-product identity with backward, at the point's dout
            left = sum(w * g for w, g in zip(weights, got, strict=True))
            right = sum(t * g for t, g in zip(tangents, grads, strict=True))
            scale = sum(abs(w * g) for w, g in zip(weights, got, strict=True)) + sum(
                abs(t * g) for t, g in zip(tangents, grads, strict=True)
            )
            rows["dot"].add(left, right, scale, on)

    def _tangent_lines(self, function, point, direction, rows, where):
        """Every tangent the instrumented `function` (jvp, hvp) computes, stage by
        stage: a stage's tangent against the tangents at 50 digits from SymPy's
        partial derivatives, and (hvp) each adjoint's tangent against forward over
        reverse; the per-stage rows are kept by value for `_tangent_culprits`."""
        names, graph = self.build.names, self.build.graph
        tangent = [0.0] * len(point)
        for k, t in zip(self.build.backward.wrt, direction, strict=True):
            tangent[k] = t
        got = getattr(self.instrumented, COPIES[function])(*point, *direction)
        got = _adjoint_values(got, {}, function)
        with mpmath.workdps(DPS):
            values, _, partials = _forward(self.nodes, point)
            reached = _reached(self.nodes, values, self.outputs)
            tangents, scales = _tangents(self.nodes, partials, tangent, reached)
            if function == "hvp":
                moved, moved_scales = _second_order(self.nodes, point, {self.outputs[0]: 1}, tangent)
        # a stage only an untaken branch of a where reads has tangent 0.0 by design there
        taken = [
            not g or any(all((values[c] != 0) == holds for c, holds in term) for term in g)
            for g in guards(graph)
        ]
        row = rows[f"{function} tangents"]
        per_value = self.tangent_rows.setdefault(function, {})
        for k, stage in enumerate(graph.stages):
            name = names.tangents.get(stage.out)
            if name in got and taken[k]:
                at = f"{where} [{name}]"
                per_value.setdefault(("t", stage.out), Row(name, "")).add(
                    got[name], tangents[stage.out], _finite(scales[stage.out]), at
                )
                row.add(got[name], tangents[stage.out], _finite(scales[stage.out]), at)
        if function == "hvp":
            for v, name in names.adjoint_tangents.items():
                if name in got and v not in graph.outputs:
                    at = f"{where} [{name}]"
                    per_value.setdefault(("d", v), Row(name, "")).add(
                        got[name], moved[v], _finite(moved_scales[v]), at
                    )
                    row.add(got[name], moved[v], _finite(moved_scales[v]), at)

    def _second_order(self, function, point, value, value_scale, grads, rng, rows, value_rows, where):
        """hvp along a random direction, or every column of the hessian, against
        forward over reverse at 50 digits (`_second_order`); their values and
        gradients against the value's and backward's."""
        wrt = self.build.backward.wrt
        if function == "hvp":
            directions = [[round(rng.uniform(-1.0, 1.0), 3) for _ in wrt]]
            got_value, got_grads, got = self.module.hvp(*point, *directions[0])
            got = [got]
            if self.instrumented is not None:
                self._tangent_lines("hvp", point, directions[0], rows, where)
        else:
            directions = [[1.0 if i == j else 0.0 for i in range(len(wrt))] for j in range(len(wrt))]
            got_value, got_grads, H = self.module.hessian(*point)
            got = [[H[i][j] for i in range(len(wrt))] for j in range(len(wrt))]  # by column
        value_rows[0].add(got_value, value, value_scale, f"{where} [{function}]")
        for g, r in zip(got_grads, grads, strict=True):
            rows[function].add(g, r, 0.0, f"{where} [{function}: the gradient]")
        for direction, column in zip(directions, got, strict=True):
            tangent = [0.0] * len(point)
            for k, t in zip(wrt, direction, strict=True):
                tangent[k] = t
            with mpmath.workdps(DPS):
                moved, scale = _second_order(self.nodes, point, {self.outputs[0]: 1}, tangent)
            on = f"{where} along ({', '.join(map(repr, direction))})"
            for k, w, g in zip(wrt, self.wrt, column, strict=True):
                rows[function].add(g, moved[k], _finite(scale[k]), f"{on} [d{w}]")

    def _adjoints(self, point, weights, sweep: _Sweep, rows, where):
        """Every adjoint, and every line's contribution to one, as
        ``value_and_grad`` and ``backward(dout, cache)`` compute them."""
        module = self.instrumented
        cache = module.forward(*point)[1]
        if len(self.outputs) == 1:
            runs = [
                ("value_and_grad", module.value_and_grad(*point)),
                ("backward", module.backward(1.0, cache)),
            ]
        else:
            runs = [("backward", module.backward(tuple(weights), cache))]
        for function, got in runs:
            # one output's adjoint is 1.0 (in the compact style an alias of it
            # is that literal, not a variable)
            got = _adjoint_values(got, self.finished, function)
            got.setdefault(self.build.names.dout, 1.0)
            for k, _, name in self.adjoint_rows:
                v = self.build.graph.stages[k].out
                ref = sweep.adjoint[v]
                if _usable([ref]):
                    rows[k].add(
                        got.get(name), ref, _finite(sweep.adjoint_scale[v]), f"{where} [{function}]", function
                    )
            computed = got.get(LINES, {})
            for part in self.contributions:
                if part.function != function:
                    continue
                ref, scale = sweep.parts.get((part.stage, part.value), (0, 0))
                values = [computed.get(line.number) for line in part.lines]
                if _usable([ref]) and None not in values:
                    part.row.add(sum(values), ref, _finite(scale), where, function)


def _value_and_grad(module, args, several: bool):
    """(value, gradients) for dout = 1: `value_and_grad`, or for several outputs
    `forward` and then `backward` with ones (the values a tuple)."""
    import numpy as np

    if not several:
        return module.value_and_grad(*args)
    values, cache = module.forward(*args)
    return values, module.backward(tuple(np.ones(np.shape(v)) if np.ndim(v) else 1.0 for v in values), cache)


def _function_rows(functions: tuple[str, ...], per_stage: bool = False) -> dict:
    """The rows of the functions asked for (--with): the Jacobian, jvp and the
    dot-product identity of jvp and backward (their values go to the value rows);
    `per_stage`: every tangent line of jvp and hvp too."""
    rows: dict = {}
    for function in ("jvp", "hvp"):
        if per_stage and function in functions:
            rows[f"{function} tangents"] = Row(f"{function} tangents", "mpmath, per stage")
    for function in ("jacobian", "jacobian_diag"):
        if function in functions:
            rows[function] = Row(f"value_and_{function}", "sympy/mpmath")
    if "hvp" in functions:
        rows["hvp"] = Row("hvp", "sympy/mpmath")
    if "hessian" in functions:
        rows["hessian"] = Row("hessian", "sympy/mpmath")
    if "jvp" in functions:
        rows["jvp"] = Row("jvp", "sympy/mpmath")
        rows["dot"] = Row("<jvp(t), w>", "<t, backward(w)>")
    return rows


def _tangent_culprits(build, text: str, function: str, rows: dict, adjoints: dict) -> list[str]:
    """The tangent lines of `function` that make a tangent wrong from right ones:
    a stage's tangent wrong while its operands' are right; (hvp) an adjoint's
    tangent wrong while the stages' tangents, the adjoints and the tangents of
    the adjoints it is made from are right. Each by line, text and how far off."""
    graph, names = build.graph, build.names
    lines = assignments(text, (function,))
    wrong = {key for key, row in rows.items() if not row.ok}
    notes = []
    for key in sorted(wrong, key=lambda key: (key[0] == "d", key[1])):
        kind, v = key
        k = v - len(graph.inputs)
        if kind == "t":
            if any(("t", op) in wrong for op in graph.stages[k].values()):
                continue
            made = lines.get((names.tangents[v], k + 1), [])
        else:
            users = [j for j, s in enumerate(graph.stages) if v in s.values()]
            upstream = [("d", graph.stages[j].out) for j in users] + [("t", s.out) for s in graph.stages]
            if any(u in wrong for u in upstream) or not all(row.ok for row in adjoints.values()):
                continue
            made = [line for j in users for line in lines.get((names.adjoint_tangents[v], j + 1), [])]
        row = rows[key]
        got, expected, where = row.worst or (None, 0.0, "")
        off = f"{abs(got - expected) / abs(expected):.1e} relative" if row.worst and expected else "wrong"
        texts = "".join(f"\n  line {line.number} ({function}): {line.text}" for line in made)
        notes.append(f"{row.quantity} is off by {off} at {where}, and what it is made from is right:{texts}")
    return notes


def _integers(module, args, wrt, row: Row, where: str, several: bool = False) -> None:
    """The module at integer arrays (the point's values rounded) against the same
    values as floats: the same value and gradients, each gradient a float array."""
    import numpy as np

    ints = [np.rint(a).astype(np.int64) if np.ndim(a) else round(a) for a in args]
    # (an index input, integers in `args` already, is integers either way)
    floats = [
        a if np.asarray(given).dtype.kind in "iu" else np.asarray(a, dtype=float) if np.ndim(a) else float(a)
        for a, given in zip(ints, args, strict=True)
    ]
    with np.errstate(all="ignore"):
        try:
            got = _value_and_grad(module, ints, several)
            want = _value_and_grad(module, floats, several)
        except Exception as exc:
            row.failure = f"raised {type(exc).__name__}: {exc} at integer inputs {where}"
            row.error = math.inf
            return
    got_values, want_values = (list(x[0]) if several else [x[0]] for x in (got, want))
    names = ["value"] * len(got_values) + list(wrt)
    for name, g, r in zip(names, [*got_values, *got[1]], [*want_values, *want[1]], strict=True):
        if name != "value" and not np.issubdtype(np.asarray(g).dtype, np.floating):
            row.failure = row.failure or f"d{name} has dtype {np.asarray(g).dtype} at integer inputs {where}"
            row.error = math.inf
        with np.errstate(all="ignore"):
            difference = np.abs(np.asarray(g, dtype=float) - np.asarray(r, dtype=float))
            scale = np.abs(np.asarray(r, dtype=float))
        usable = np.isfinite(scale)
        error = float(np.max(difference[usable] / (scale[usable] + 1e-300), initial=0.0))
        row.add(0.0 if error <= RTOL else error, 0.0, 1.0, f"{where} [{name}]")


def _finite(x) -> float:
    return float(x) if mpmath.isfinite(x) else math.inf


def _real(x):
    if isinstance(x, mpmath.mpc):
        if x.imag != 0:
            raise ValueError("complex")
        x = x.real
    if isinstance(x, (int, float)) or hasattr(x, "_mpf_"):
        return mpmath.mpf(x)
    return mpmath.mpf(sp.N(x, DPS))


def _read(sweep: _Sweep) -> list:
    """The values of a sweep that its outputs read at its point (`_reached`)."""
    return [v for v, reached in zip(sweep.values, sweep.reached, strict=True) if reached]


def _usable(xs) -> bool:
    return all(mpmath.isfinite(x) and abs(x) < FLOAT_MAX for x in xs)


def _central(f, point, i, h):
    def at(dx):
        p = list(point)
        p[i] += dx
        return f(*p)[0]

    return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)


class _Instance:
    """An array program instantiated at one set of input shapes (`elements`):
    the lowered program's element nodes with their meanings, for the sweeps;
    the parsed program's with their values, for the value."""

    def __init__(self, build, shapes: list[tuple], indexes: dict):
        self.graph = elements.of_graph(build.graph, shapes, indexes)
        program, self.program_outputs = elements.of_program(build.program, shapes, indexes)
        self.indexes = indexes
        with mpmath.workdps(DPS):
            self.nodes = [(_element_meaning(n), _numbers(n.operands)) for n in self.graph.nodes]
            self.program = [(_element_value(n), _numbers(n.operands)) for n in program.nodes]
        self.outputs = [self.graph.arrays[out] for out in build.graph.outputs]

    def point(self, args) -> list[float]:
        """The inputs' elements in id order: input by input, each row-major (an
        index input's values are not elements)."""
        import numpy as np

        return [float(x) for k, a in enumerate(args) if k not in self.indexes for x in np.ravel(a)]

    def sweep(self, args, douts) -> _Sweep:
        """The sweep with each output's adjoint seeded with its dout (an array of its
        shape), at 50 digits (wherever it is called from)."""
        import numpy as np

        seeds = {}
        for output, seed in zip(self.outputs, douts, strict=True):
            for index in np.ndindex(output.shape):
                if isinstance(output[index], int):
                    seeds[output[index]] = seeds.get(output[index], 0) + float(np.asarray(seed)[index])
        with mpmath.workdps(DPS):
            return _sweep(self.nodes, self.point(args), seeds)

    def at(self, args):
        """(the program's values, the sweep seeded with ones) at `args`; None
        where the references are not finite and real."""
        import numpy as np

        point = self.point(args)
        with mpmath.workdps(DPS):
            try:
                values = list(map(mpmath.mpf, point))
                for fn, operands in self.program:
                    values.append(_or_nan(fn, [values[op] if isinstance(op, int) else op for op in operands]))
                sweep = self.sweep(args, [np.ones(out.shape) for out in self.outputs])
            except _UNUSABLE:
                return None
        outputs = [values[v] for ids in self.program_outputs for v in np.ravel(ids) if isinstance(v, int)]
        if not (_usable(outputs) and _usable(_read(sweep)) and _usable(sweep.adjoint)):
            return None
        return values, sweep

    def shares(self, sweep: _Sweep) -> dict:
        """stage index -> operand element -> (the stage's share of that element's adjoint, its scale)."""
        shares: dict = {}
        for (k, u), (part, scale) in sweep.parts.items():
            by_element = shares.setdefault(self.graph.stage[k], {})
            old = by_element.get(u, (0, 0))
            by_element[u] = (old[0] + part, old[1] + scale)
        return shares


def _numbers(operands) -> tuple:
    """Element operands for mpmath: ids as they are, constants at 50 digits."""
    return tuple(op if isinstance(op, int) else mpmath.mpf(sp.N(op, DPS)) for op in operands)


def _gather(ids, table, default=0):
    """An object array of `ids`' shape: each id's entry in `table` (a list or a
    dict), a constant element as itself at 50 digits."""
    import numpy as np

    out = np.empty(ids.shape, dtype=object)
    for index in np.ndindex(ids.shape):
        item = ids[index]
        if isinstance(item, int):
            out[index] = table.get(item, default) if isinstance(table, dict) else table[item]
        else:
            out[index] = mpmath.mpf(sp.N(item, DPS))
    return out


def _compare(row: Row, got, reference, scale, where: str, function: str = "", broadcasts=False) -> None:
    """An array (or number) from the module against a reference array, element by
    element; `broadcasts`: an adjoint a reduction gave as the value that broadcasts
    to its shape (`Line.broadcast`: sum's dout at every element) is that array."""
    import numpy as np

    if broadcasts and got is not None and np.shape(got) != reference.shape:
        try:
            got = np.broadcast_to(got, reference.shape)
        except ValueError:
            pass
    if got is None or np.shape(got) != reference.shape:
        row.failure = row.failure or f"has shape {np.shape(got)}, expected {reference.shape} at {where}"
        row.error = math.inf
        row.wrong_in.add(function)
        return
    got = np.asarray(got)
    for index in np.ndindex(reference.shape):
        at = f"{where} [element {index}]" if index else where
        row.add(float(got[index]), reference[index], _finite(scale[index]), at, function)


class _ArrayChecker:
    """Array programs (declared matrices and vectors, matmul, reductions).

    At each point the program is instantiated at the point's sizes
    (`elements`: one scalar node per element, NumPy's own semantics on object
    arrays) and compared element by element as a scalar program is: the value
    (from `value_and_grad` and `forward`) with the parsed program at 50 digits;
    every gradient (from `value_and_grad`, and `backward(w, cache)` for a
    random w), every intermediate adjoint array and every backward line's
    contribution with reverse sweeps over the element nodes of the lowered
    program. Every gradient is also compared with central finite differences
    of the module's forward along random directions, a second row.

    Size names take small sizes in several combinations (`_combinations`);
    sizes too large to instantiate (over `elements.MAX_ELEMENTS` nodes) are
    checked against finite differences only, and the report says where."""

    # Richardson's extrapolation of two steps cancels the h**2 term; two such
    # estimates from three steps that disagree say a kink lies within the steps
    STEPS = (1e-4, 5e-5, 2.5e-5)
    FUNCTION_POINTS = 3  # points at which value_and_jacobian and jvp are checked (a sweep per element)
    DIRECTIONS = 3  # per point

    def __init__(self, build, module, text: str | None, notes, sampling: _Sampling):
        self.build, self.module, self.notes, self.sampling = build, module, notes, sampling
        graph = build.graph
        self.inputs = graph.inputs
        self.wrt = [graph.inputs[k].name for k in build.backward.wrt]
        self.wrt_index = list(build.backward.wrt)
        self.bounds = index_bounds(graph)  # index inputs: the sizes of the axes they index
        for i in self.inputs:  # declared sizes are instantiated: refuse what memory cannot hold
            count = math.prod(d for d in (i.shape or ()) if isinstance(d, int))
            if count > MAX_CHECKED_ELEMENTS:
                raise UsageError(
                    f"the check would make '{i.name}' an array of {count:,} elements "
                    f"(the limit is {MAX_CHECKED_ELEMENTS:,})",
                    file=build.program.filename,
                    hint="declare its sizes by name (vector(n), matrix(n, m)): the check picks small ones",
                )
        names = dict.fromkeys(
            linear(d)[1] for i in self.inputs for d in (i.shape or ()) if not isinstance(d, int)
        )
        self.combinations = _combinations(list(names))
        self.instances: dict[tuple, _Instance | None] = {}
        self.too_large: list[str] = []  # the shapes no instance could be made at
        self.text = text
        self.instrumented = None if text is None else instrumented(text, build.program.filename)
        self.adjoint_rows = [] if text is None else _adjoint_rows(build)
        self.contributions = [] if text is None else _contributions(build, text)
        self.finished = {} if text is None else _finished(text)

    def _sample(self, rng: random.Random, given, index: int):
        import numpy as np

        generator = np.random.default_rng(rng.getrandbits(32))
        if given is not None:  # a point given: the arrays as they are
            return (
                [
                    np.asarray(a, dtype=np.int64 if i.integer else float) if np.ndim(a) else float(a)
                    for i, a in zip(self.inputs, given, strict=True)
                ],
                {},
                generator,
            )
        sizes = self.combinations[index % len(self.combinations)]
        args = []
        for k, i in enumerate(self.inputs):
            dims = tuple(size_value(d, sizes) for d in (i.shape or ()))
            if i.integer:  # in the range of every axis it indexes, negative values too
                size = min(size_value(d, sizes) for d in self.bounds[k])
                args.append(generator.integers(-size, size, dims))
                continue
            domain = self.sampling.domains[k]
            args.append(generator.uniform(domain.lo, domain.hi, dims) if dims else self.sampling.draw(rng, k))
        return args, sizes, generator

    def _instance(self, args) -> _Instance | None:
        import numpy as np

        shapes = tuple(np.shape(a) for a in args)
        indexes = {k: np.asarray(args[k]) for k, i in enumerate(self.inputs) if i.integer}
        # an instance is made for these shapes and these index values (what a gather picks)
        key = (shapes, *(tuple(v.ravel().tolist()) for v in indexes.values()))
        if key not in self.instances:
            try:
                self.instances[key] = _Instance(self.build, list(shapes), indexes)
            except elements.TooLarge:
                self.instances[key] = None
                self.too_large.append(
                    ", ".join(f"{i.name} {s}" for i, s in zip(self.inputs, shapes, strict=True))
                )
        return self.instances[key]

    def run(self, points: int, seed: int) -> Report:
        import numpy as np

        rng = random.Random(seed)
        outs = [self.build.names.values[o] for o in self.build.graph.outputs]
        several = len(outs) > 1
        ones = "backward(ones)" if several else "value_and_grad"  # how the gradients for dout = 1 are had
        rows = {
            **{("value", k): Row(out, "sympy/mpmath") for k, out in enumerate(outs)},
            **{w: Row(f"d{w}", "sympy/mpmath") for w in self.wrt},
            **{("fd", w): Row(f"d{w}", "finite differences", tolerance=FD_RTOL) for w in self.wrt},
            "shape": Row("gradient shapes", "the inputs' shapes"),
            "integer": Row("integer inputs", "the same as floats"),
            **_function_rows(self.build.options.with_),
            **{k: Row(label, "mpmath, per stage") for k, label, _ in self.adjoint_rows},
        }
        accepted = discarded = kinks = 0
        given = iter(self.sampling.at) if self.sampling.at is not None else None
        while given is not None or (accepted < points and discarded < points * TRIES_PER_POINT):
            point = next(given, None) if given is not None else None
            if given is not None and point is None:
                break
            args, sizes, generator = self._sample(rng, point, accepted + discarded)
            where = "(" + ", ".join([f"{n}={v}" for n, v in sizes.items()] + [f"point {accepted}"]) + ")"
            instance = self._instance(args)
            reference = None if instance is None else instance.at(args)
            first = rows[("value", 0)]  # failures are reported on the first output's row
            with np.errstate(all="ignore"):
                try:
                    values, grads = _value_and_grad(self.module, args, several)
                    forward_values, cache = self.module.forward(*args)
                except Exception as exc:
                    first.failure = f"raised {type(exc).__name__}: {exc} at {where}"
                    first.error = math.inf
                    break
                values = list(values) if several else [values]
                forward_values = list(forward_values) if several else [forward_values]
                if (instance is not None and reference is None) or not all(
                    np.all(np.isfinite(v)) for v in values
                ):
                    discarded += 1
                    if given is not None:  # a point asked for that cannot be checked: say which
                        first.failure = first.failure or (
                            f"the reference is not finite and real at the point given {where}"
                        )
                        first.error = math.inf
                    continue
                accepted += 1
                _integers(self.module, args, self.wrt, rows["integer"], where, several)
                douts = [generator.standard_normal(np.shape(v)) for v in values]
                weighted = self.module.backward(tuple(douts) if several else douts[0], cache)
                if not self._shapes(args, weighted, rows["shape"], where):
                    continue
                if reference is not None:
                    program_values, sweep = reference
                    size = 0.0
                    for k, (ids, element_ids) in enumerate(
                        zip(instance.program_outputs, instance.outputs, strict=True)
                    ):
                        expected = _gather(ids, program_values)
                        scale = _gather(element_ids, sweep.value_scale)
                        for got, label in ((values[k], ones), (forward_values[k], "forward")):
                            _compare(rows[("value", k)], got, expected, scale, f"{where} [{label}]")
                        # the value's rounding, from the terms that make it (cancellation included)
                        size += float(np.sum(np.abs(douts[k]) * np.vectorize(_finite, otypes=[float])(scale)))
                    if sweep.kink:  # only the value compares on a kink (see _Checker.run)
                        kinks += 1
                        continue
                    self._against_sweeps(instance, sweep, args, grads, weighted, cache, douts, where, rows)
                    if accepted <= self.FUNCTION_POINTS:
                        self._functions(instance, args, douts, weighted, generator, where, rows)
                else:
                    size = sum(abs(float(np.sum(d * v))) for d, v in zip(douts, values, strict=True))
                self._finite_differences(args, weighted, douts, size, rows, generator, where)
        notes = list(self.notes)
        used = self.combinations[: min(len(self.combinations), accepted + discarded)]
        if self.sampling.at is None and used and used[0]:
            notes.append(
                "sizes, in turn: " + "; ".join(", ".join(f"{n}={v}" for n, v in c.items()) for c in used)
            )
        if self.too_large:
            notes.append(
                f"too large to instantiate element by element (over {elements.MAX_INPUT_ELEMENTS:,} input "
                f"elements or {elements.MAX_ELEMENTS:,} nodes) at "
                + "; ".join(self.too_large)
                + ": there only finite differences were compared"
            )
        if kinks:
            notes.append(f"{kinks} of the points lie exactly on a kink: there only the value was compared")
        if self.text is not None:
            graph = self.build.graph
            by_value = {self.build.backward.wrt[i]: rows[w] for i, w in enumerate(self.wrt)}
            by_value |= {graph.stages[k].out: rows[k] for k, _, _ in self.adjoint_rows}
            notes += _culprits(self.build, self.contributions, by_value)
        return Report(list(rows.values()), accepted, discarded, notes)

    def _functions(self, instance, args, douts, weighted, generator, where, rows):
        """value_and_jacobian element by element against one sweep per output
        element; jvp along a random tangent against the sweep seeded with dout
        (<jvp(t), dout> = <t, gradient>) and against backward."""
        import numpy as np

        graph = self.build.graph
        several = len(douts) > 1
        if "jacobian" in rows:
            _, got = self.module.value_and_jacobian(*args)
            for i, ids in enumerate(instance.outputs):
                for index in np.ndindex(ids.shape):
                    seeds = [np.zeros(o.shape) for o in instance.outputs]
                    seeds[i][index] = 1.0
                    s = instance.sweep(args, seeds)
                    entry = f"d{self.build.names.values[graph.outputs[i]]}{list(index)}"
                    for j, k in enumerate(self.wrt_index):
                        element = got[i][j][index] if index else got[i][j]
                        ids_k = instance.graph.arrays[k]
                        _compare(
                            rows["jacobian"],
                            element,
                            _gather(ids_k, s.adjoint),
                            _gather(ids_k, s.adjoint_scale),
                            f"{where} [{entry}/d{self.wrt[j]}]",
                        )
        if "hvp" in rows:
            self._hvp(instance, args, generator, where, rows["hvp"])
        if "jvp" in rows:
            tangents = [generator.uniform(-1.0, 1.0, np.shape(args[k])) for k in self.wrt_index]
            _, got = self.module.jvp(*args, *tangents)
            got = list(got) if several else [got]
            s = instance.sweep(args, douts)
            left = sum(float(np.sum(d * g)) for d, g in zip(douts, got, strict=True))
            ref = mpmath.mpf(0)
            scale = 0.0
            for k, t in zip(self.wrt_index, tangents, strict=True):
                ids_k = instance.graph.arrays[k]
                adjoint, adjoint_scale = _gather(ids_k, s.adjoint), _gather(ids_k, s.adjoint_scale)
                for index in np.ndindex(ids_k.shape):
                    ref += adjoint[index] * float(np.asarray(t)[index])
                    scale += _finite(adjoint_scale[index]) * abs(float(np.asarray(t)[index]))
            rows["jvp"].add(left, ref, scale, f"{where} [<jvp(t), dout>]")
            right = sum(float(np.sum(t * g)) for t, g in zip(tangents, weighted, strict=True))
            size = sum(float(np.sum(np.abs(d * g))) for d, g in zip(douts, got, strict=True))
            rows["dot"].add(
                left,
                right,
                size + sum(float(np.sum(np.abs(t * g))) for t, g in zip(tangents, weighted, strict=True)),
                where,
            )

    def _hvp(self, instance, args, generator, where, row):
        """hvp along random arrays against forward over reverse over the element
        nodes at 50 digits (`_second_order`, seeded at the scalar output)."""
        import numpy as np

        direction = [generator.uniform(-1.0, 1.0, np.shape(args[k])) for k in self.wrt_index]
        _, _, got = self.module.hvp(*args, *direction)
        point = instance.point(args)
        tangent = [0.0] * len(point)
        for k, v in zip(self.wrt_index, direction, strict=True):
            ids = instance.graph.arrays[k]
            for index in np.ndindex(ids.shape):
                tangent[ids[index]] = float(np.asarray(v)[index])
        out = instance.outputs[0][()]
        with mpmath.workdps(DPS):
            moved, scale = _second_order(instance.nodes, point, {out: 1}, tangent)
        for j, k in enumerate(self.wrt_index):
            ids = instance.graph.arrays[k]
            _compare(row, got[j], _gather(ids, moved), _gather(ids, scale), f"{where} [d{self.wrt[j]}]")

    def _shapes(self, args, grads, row: Row, where: str) -> bool:
        import numpy as np

        ok = True
        for w, k, g in zip(self.wrt, self.wrt_index, grads, strict=True):
            same = np.shape(g) == np.shape(args[k])
            row.add(0.0 if same else math.inf, 0.0, 1.0, where)
            if not same:
                row.failure = f"d{w} has shape {np.shape(g)}, {w} {np.shape(args[k])} at {where}"
                ok = False
        return ok

    def _against_sweeps(self, instance, sweep, args, grads, weighted, cache, douts, where, rows):
        """The gradients, every stage's adjoint and every line's contribution, as
        value_and_grad (seeded with ones; for several outputs, backward with
        ones) and backward(dout, cache) compute them."""
        graph = self.build.graph
        several = len(douts) > 1
        ones = "backward(ones)" if several else "value_and_grad"
        sweeps = {ones: sweep, "backward": instance.sweep(args, douts)}
        results = {ones: grads, "backward": weighted}
        for function, s in sweeps.items():
            for w, k, g in zip(self.wrt, self.wrt_index, results[function], strict=True):
                ids = instance.graph.arrays[k]
                _compare(
                    rows[w],
                    g,
                    _gather(ids, s.adjoint),
                    _gather(ids, s.adjoint_scale),
                    f"{where} [{function}]",
                    function,
                )
        if self.instrumented is None:
            return
        got_by_function = {
            "backward": self.instrumented.backward(tuple(douts) if several else douts[0], cache)
        }
        if not several:
            got_by_function["value_and_grad"] = self.instrumented.value_and_grad(*args)
        for function, got in got_by_function.items():
            s = sweeps[function]
            got = _adjoint_values(got, self.finished, function)
            got.setdefault(self.build.names.dout, 1.0 if function == "value_and_grad" else douts[0])
            broadcast = {line.target for line in self.build.backward.lines if line.broadcast}
            for k, _, name in self.adjoint_rows:
                ids = instance.graph.arrays[graph.stages[k].out]
                _compare(
                    rows[k],
                    got.get(name),
                    _gather(ids, s.adjoint),
                    _gather(ids, s.adjoint_scale),
                    f"{where} [{function}]",
                    function,
                    broadcasts=graph.stages[k].out in broadcast,
                )
            computed = got.get(LINES, {})
            shares = instance.shares(s)
            for part in self.contributions:
                values = [computed.get(line.number) for line in part.lines]
                if part.function != function or any(v is None for v in values):
                    continue
                ids = instance.graph.arrays[part.value]
                total = values[0] if len(values) == 1 else sum(values)
                share = shares.get(part.stage, {})
                expected = _gather(ids, {u: v for u, (v, _) in share.items()})
                scale = _gather(ids, {u: s for u, (_, s) in share.items()})
                _compare(
                    part.row, total, expected, scale, where, function, broadcasts=part.value in broadcast
                )

    def _finite_differences(self, args, grads, douts, size: float, rows, generator, where):
        """Each gradient against central differences of forward along random directions
        (a direction skipped where the steps disagree: a kink lies within them);
        `size`: the magnitude the rounding of <dout, forward> is relative to."""
        import numpy as np

        several = len(douts) > 1

        def weighted(*a) -> float:  # <dout, forward(a)>
            values = self.module.forward(*a)[0]
            return sum(
                float(np.sum(d * v)) for d, v in zip(douts, values if several else [values], strict=True)
            )

        for w, k, g in zip(self.wrt, self.wrt_index, grads, strict=True):
            for _ in range(self.DIRECTIONS):
                v = generator.standard_normal(np.shape(args[k]))
                slope = float(np.sum(g * v))
                estimates = []
                for h in self.STEPS:
                    shifted = [list(args), list(args)]
                    shifted[0][k] = args[k] + h * v
                    shifted[1][k] = args[k] - h * v
                    plus, minus = (weighted(*a) for a in shifted)
                    estimates.append((plus - minus) / (2 * h))
                fd, finer = (
                    (4 * fine - coarse) / 3
                    for coarse, fine in zip(estimates[:-1], estimates[1:], strict=True)
                )
                # the quotient's own rounding, about eps * size / h, is allowed in full
                scale = float(np.sum(np.abs(g * v))) + FD_NOISE * size / h / FD_RTOL
                if abs(fd - finer) > FD_RTOL * scale:  # a kink (max's tie) within the steps
                    continue
                rows[("fd", w)].add(slope, fd, scale, where)


def _combinations(names: list[str]) -> list[dict[str, int]]:
    """Sizes for the size names: all 2, then 2, 3, 4, ... in order, the same
    reversed, and all 3 (distinct sizes catch a transposed axis; the same size
    everywhere, a broadcast that should not have happened)."""
    k = len(names)
    combos = [
        dict.fromkeys(names, 2),
        {n: 2 + i for i, n in enumerate(names)},
        {n: 1 + k - i for i, n in enumerate(names)},
        dict.fromkeys(names, 3),
    ]
    return [c for i, c in enumerate(combos) if c not in combos[:i]]


# -- stagegen's expressions as SymPy, for tests of the rules ----------------------

_COMPARE_AT_ZERO = {">": 0, ">=": 1, "<": 0, "<=": 1}  # a comparison's value where both sides are equal


def to_sympy(expr, out: sp.Expr | None = None, dout: sp.Expr | None = None) -> sp.Expr:
    """`expr` (stagegen's expression language) as SymPy: operand i as `slot(i)`,
    the output as `out`, the adjoint as `dout`; each operation by the meaning of
    the gate that owns it (its `fn` or source name), a comparison as a Heaviside
    step with its value at the tie. For the tests that check rules against
    SymPy's derivatives; `verify` itself never reads a rule."""
    from .expr import Call, Compare, Dout, Num, Out, Select, Slot, nodes

    done: dict[int, sp.Expr] = {}
    for node in nodes(expr):
        if isinstance(node, Slot):
            value = slot(node.index)
        elif isinstance(node, Out):
            value = sp.Symbol("_out", real=True) if out is None else out
        elif isinstance(node, Dout):
            value = sp.Symbol("_dout", real=True) if dout is None else dout
        elif isinstance(node, Num):
            value = sympy_number(node)
        elif isinstance(node, Compare):
            a, b = done[id(node.a)], done[id(node.b)]
            difference = a - b if node.op.startswith(">") else b - a
            value = sp.Heaviside(difference, _COMPARE_AT_ZERO[node.op])
        elif isinstance(node, Select):
            value = sp.Piecewise((done[id(node.a)], done[id(node.cond)] > 0), (done[id(node.b)], True))
        elif isinstance(node, Call):
            args = [done[id(a)] for a in node.args]
            function = _SYMPY_FUNCTIONS.get(node.fn)
            value = function(*args) if function is not None else sp.Function(node.fn)(*args)
        else:
            raise TypeError(f"no SymPy form of {node!r}")
        done[id(node)] = value
    return done[id(expr)]


_SYMPY_FUNCTIONS = {
    **{(g.fn or g.source): g.meaning for g in REGISTRY.values() if (g.fn or g.source) and not g.keywords},
    **FUNCTIONS,
}

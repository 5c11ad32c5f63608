"""A generated module checked against SymPy (mpmath, 50 digits) and finite differences.

What is compared, at random points where the reference is finite and real:

- the value, and every requested gradient from `value_and_grad`,
  `backward(1.0, cache)` and `backward(c, cache)` for a random c, against
  ``sympy.diff`` of the source expression (every stage substituted), evaluated
  with mpmath at 50 digits;
- every gradient against central finite differences of the module's own
  `forward` (skipped where two step sizes disagree: the point is near a kink);
- every intermediate adjoint ``dv`` of an instrumented rendering of the same
  statements against d output / d v, obtained by composing the stage formulas
  (the gates' SymPy meanings) downstream of v with v as a free variable and
  differentiating that composition with mpmath at 100 digits.

No reference reads the gate registry's gradient rules: references come from
the gates' `forward` meanings and SymPy's own derivatives. The tolerance is
``|g - r| <= RTOL * (|r| + s)``, s the magnitude of the terms that make r: a
first-order running-error bound of the computation as the module performs it
(each value's magnitude is its own plus its operands' magnitudes times the
partial derivatives; each adjoint's adds |local| * magnitude(upstream) and
magnitude(local) * |upstream| over its contributions). Where that bound is
large, float64 cannot do better than it, and a difference below RTOL times it
is rounding, not a wrong rule; elsewhere the check is as tight as RTOL.
"""

from __future__ import annotations

import functools
import math
import random
import types
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import sympy as sp

from .differentiate import differentiate
from .errors import UsageError
from .gates import OUT, REGISTRY, slot
from .ir import Const
from .shapes import elementwise

RTOL = 1e-9  # against the 50-digit reference
FD_RTOL = 1e-6  # against finite differences of the float64 forward
FD_STEP = 1e-3  # relative step of the finite differences, shrunk by 4 until they settle
FD_REFINEMENTS = 8  # smaller steps tried
FD_NOISE = 1e-15  # rounding of a difference quotient: about eps * |f| / h
DPS = 50  # mpmath digits of the reference
SAMPLE_HALF_WIDTH = 3.0  # inputs are sampled uniformly in [-3, 3]
TRIES_PER_POINT = 50  # samples drawn per accepted point before giving up
PER_STAGE_FLOOR = 1e-60  # mpmath.diff's own noise where a per-stage adjoint is exactly 0
PER_STAGE_LIMIT = 200  # larger programs skip the per-stage adjoint check
FLOAT_MAX = 1e300  # larger magnitudes would overflow float64 on the way
# Below float64's smallest normal number a result keeps an absolute precision,
# not a relative one (gradual underflow): exp(-x**8) at x = 2.45 is 1e-565 and
# comes out 0.0, as it must. Differences this small are not counted.
UNDERFLOW = 2.0**-1022


@dataclass
class Row:
    quantity: str
    reference: str
    error: float = 0.0  # max over points of |g - r| / (|r| + s)
    points: int = 0
    tolerance: float = RTOL
    failure: str = ""
    seen: set = field(default_factory=set, repr=False)  # points compared

    @property
    def ok(self) -> bool:
        return not self.failure and self.error <= self.tolerance

    def add(self, got, ref, scale, where: str) -> None:
        self.seen.add(where.split(" [", 1)[0])
        self.points = len(self.seen)
        if got is None or isinstance(got, complex) or not math.isfinite(got):
            self.failure = self.failure or f"{got!r} at {where}"
            self.error = math.inf
            return
        diff = max(abs(got - ref) - UNDERFLOW, 0)
        err = float(diff / (abs(ref) + scale) if abs(ref) + scale > 0 else diff)
        if err > self.error:
            self.error = err
            if err > self.tolerance:
                self.failure = f"got {got!r}, expected {float(ref)!r} at {where}"


@dataclass
class Report:
    rows: list[Row]
    points: int
    discarded: int
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.points > 0 and all(row.ok for row in self.rows)

    def table(self) -> str:
        width = max([len(r.quantity) for r in self.rows] + [8])
        lines = [f"{'quantity':<{width}}  {'reference':<18}  {'max error':>9}  {'points':>6}  status"]
        for r in self.rows:
            status = "ok" if r.ok else "MISMATCH: " + (r.failure or "")
            lines.append(f"{r.quantity:<{width}}  {r.reference:<18}  {r.error:9.1e}  {r.points:6d}  {status}")
        lines.append(
            f"{self.points} points ({self.discarded} discarded: reference not finite or not real); "
            f"error = |g - r| / (|r| + s), tolerance {RTOL:g} (finite differences {FD_RTOL:g})"
        )
        lines += self.notes
        if self.points == 0:
            lines.append("no point found where the expression is finite and real")
        return "\n".join(lines)


def verify(target, *, points: int = 20, seed: int = 0, **options) -> Report:
    """Check `target`: source text or a SymPy expression (generated with `options`),
    a generated module object, or the path of a generated module file."""
    from . import build as _build
    from . import module_from_text
    from .emit import emit

    notes: list[str] = []
    if isinstance(target, types.ModuleType) or (
        isinstance(target, (str, Path)) and str(target).endswith(".py") and Path(target).is_file()
    ):
        module, text = _module_and_text(target)
        source, filename, opts = _read_docstring(module)
        build = _build(
            source, filename=filename, backend=opts.backend, style=opts.style, gates=opts.gates, wrt=opts.wrt
        )
        same = text is not None and build.text == text
        if not same:
            notes.append(
                "the module's text differs from what its source generates now (edited, or made "
                "from a SymPy object); the per-stage adjoint check is skipped"
            )
    else:
        build = _build(target, **options)
        module = module_from_text(build.text, build.program.filename)
        same = True
    instrumented = None
    if same and len(build.graph.stages) <= PER_STAGE_LIMIT:
        instrumented = module_from_text(
            emit(build.program, build.graph, build.backward, build.names, build.options, instrument=True),
            build.program.filename,
        )
    elif same:
        notes.append(f"more than {PER_STAGE_LIMIT} stages: the per-stage adjoint check is skipped")
    if build.graph.shapes and not elementwise(build.graph):
        return _ArrayChecker(build, module, notes).run(points, seed)
    return _Checker(build, module, instrumented, notes).run(points, seed)


def _module_and_text(target) -> tuple[types.ModuleType, str | None]:
    from . import module_from_text

    if isinstance(target, types.ModuleType):
        import inspect
        import linecache

        lines = linecache.getlines(getattr(target, "__file__", "") or "")
        if lines:
            return target, "".join(lines)
        try:
            return target, inspect.getsource(target)
        except (OSError, TypeError):
            return target, None
    text = Path(target).read_text(encoding="utf-8")
    return module_from_text(text, str(target)), text


def _read_docstring(module: types.ModuleType):
    from .options import Options

    doc = module.__doc__ or ""
    command = next(
        (line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("Generated by:")), None
    )
    lines = doc.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("Source (")), None)
    if command is None or start is None:
        raise UsageError(
            "this module was not generated by stagegen (no 'Generated by:' and 'Source' " "in its docstring)"
        )
    filename, options = Options.from_command(command)
    body = lines[start + 1 :]
    source = "\n".join(line[4:] if line.startswith("    ") else line for line in body).strip("\n") + "\n"
    return source, filename, options


class _Checker:
    def __init__(self, build, module, instrumented, notes):
        self.build, self.module, self.instrumented, self.notes = build, module, instrumented, notes
        graph = build.graph
        self.names = [i.name for i in graph.inputs]
        self.wrt = [graph.inputs[k].name for k in build.backward.wrt]
        self.rules = [_rules(stage) for stage in graph.stages]
        self.lines = differentiate(graph, build.backward.wrt, "seed").lines  # every contribution
        self.reference = self._reference()
        self.adjoint_refs = self._adjoint_refs() if instrumented is not None else []

    # -- references (SymPy, independent of the gradient rules) ----------------
    def _reference(self):
        from .lower import meaning

        program = self.build.program
        stages: dict[str, sp.Expr] = {}
        for statement in program.statements:
            stages[statement.name] = meaning(statement.expr, stages)
        f = stages[program.output]
        symbols = {s.name: s for s in f.free_symbols if isinstance(s, sp.Symbol)}
        args = [symbols.get(n, sp.Symbol(n, real=True)) for n in self.names]
        exprs = [f] + [sp.diff(f, args[self.names.index(w)]) for w in self.wrt]
        return sp.lambdify(args, exprs, modules=_MODULES)

    def _adjoint_refs(self):
        """(stage index, label, adjoint name, the stages downstream of it, in order)."""
        graph, backward, names = self.build.graph, self.build.backward, self.build.names
        refs = []
        for k, stage in enumerate(graph.stages):
            v = stage.out
            if v == graph.output or (v not in names.adjoints and v not in backward.alias):
                continue
            tainted, downstream = {v}, []
            for j in range(k + 1, len(graph.stages)):
                if any(op in tainted for op in graph.stages[j].values()):
                    tainted.add(graph.stages[j].out)
                    downstream.append(j)
            refs.append((k, f"d{names.values[v]} ({k + 1})", names.adjoint(backward, v), downstream))
        return refs

    def _composed(self, k: int, downstream: list[int], values):
        """The output as a function of stage k's value: the stage formulas
        downstream of it composed, everything else held at `values`."""
        graph = self.build.graph
        v = graph.stages[k].out

        def output(V):
            vals = dict.fromkeys(())
            vals[v] = V
            for j in downstream:
                stage = graph.stages[j]
                args = [
                    vals.get(op, values[op]) if isinstance(op, int) else _mp(op, values)
                    for op in stage.operands
                ]
                vals[stage.out] = self.rules[j].forward(*args)
            return vals[graph.output]

        return output

    # -- sampling -----------------------------------------------------------
    def _sample(self, rng: random.Random):
        graph = self.build.graph
        point = [rng.uniform(-SAMPLE_HALF_WIDTH, SAMPLE_HALF_WIDTH) for _ in self.names]
        with mpmath.workdps(DPS):
            try:
                ref = [_real(r) for r in self.reference(*map(mpmath.mpf, point))]
                values = list(map(mpmath.mpf, point))
                for stage, rules in zip(graph.stages, self.rules, strict=True):
                    values.append(_real(rules.forward(*[_mp(op, values) for op in stage.operands])))
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                return None
        return point, ref, values

    def _at_kink(self, values, mag) -> bool:
        """Some non-smooth gate is at a kink, or closer to one than float64 can tell
        (max(log(exp(x)), x): a tie in exact arithmetic, not after rounding)."""
        graph = self.build.graph
        with mpmath.workdps(DPS):
            for stage, rules in zip(graph.stages, self.rules, strict=True):
                if rules.kink is None:
                    continue
                args = [_mp(op, values) for op in stage.operands]
                mags = [
                    mag[op] if isinstance(op, int) else abs(a)
                    for op, a in zip(stage.operands, args, strict=True)
                ]
                for distance, slopes in rules.kink:
                    spread = sum(
                        (abs(d(*args)) * m for d, m in zip(slopes, mags, strict=True)), mpmath.mpf(0)
                    )
                    if abs(distance(*args)) <= RTOL * spread:
                        return True
        return False

    def _scales(self, values):
        """Rounding-error magnitudes: of the output value, of every adjoint, of every value."""
        graph = self.build.graph
        zero = mpmath.mpf(0)
        with mpmath.workdps(DPS):
            n = len(self.names)
            mag = [zero] * n + [abs(v) for v in values[n:]]  # inputs are exact; stages round once
            for stage, rules in zip(graph.stages, self.rules, strict=True):
                args = [_mp(op, values) for op in stage.operands]
                for op, d in zip(stage.operands, rules.partials, strict=True):
                    if isinstance(op, int):
                        mag[stage.out] += _abs(d, args) * mag[op]
            adjoint = [zero] * len(values)
            adjoint_mag = [zero] * len(values)
            adjoint[graph.output] = adjoint_mag[graph.output] = mpmath.mpf(1)
            for line in self.lines:
                stage = graph.stages[line.stage]
                rules = self.rules[line.stage]
                args = [_mp(op, values) for op in stage.operands] + [values[stage.out]]
                reads = [op for op in stage.operands] + [stage.out]
                local = _abs(rules.local[line.operand], args, signed=True)
                local_mag = abs(local) + sum(
                    (
                        _abs(d, args) * (mag[v] if isinstance(v, int) else abs(args[j]))
                        for j, (d, v) in enumerate(
                            zip(rules.local_partials[line.operand], reads, strict=True)
                        )
                        if d is not None
                    ),
                    zero,
                )
                up = stage.out
                adjoint[line.target] += local * adjoint[up]
                adjoint_mag[line.target] += abs(local) * adjoint_mag[up] + local_mag * abs(adjoint[up])
        finite = lambda x: float(x) if mpmath.isfinite(x) else math.inf  # noqa: E731
        return finite(mag[graph.output]), [finite(m) for m in adjoint_mag], mag

    # -- the run --------------------------------------------------------------
    def run(self, points: int, seed: int) -> Report:
        rng = random.Random(seed)
        out = self.build.names.values[self.build.graph.output]
        value_row = Row(out, "sympy/mpmath")
        grad_rows = {
            w: Row(f"d{w}" if f"d{w}" not in self.names else f"gradient of {w}", "sympy/mpmath")
            for w in self.wrt
        }
        fd_rows = {w: Row(grad_rows[w].quantity, "finite differences", tolerance=FD_RTOL) for w in self.wrt}
        adj_rows = {k: Row(label, "mpmath, per stage") for k, label, _, _ in self.adjoint_refs}
        accepted = discarded = kinks = 0
        smooth = []  # (point, reference, value scale, gradient scales, where) away from kinks
        while accepted < points and discarded < points * TRIES_PER_POINT:
            sample = self._sample(rng)
            if sample is None or not _usable(sample[1]) or not _usable(sample[2]):
                discarded += 1
                continue
            accepted += 1
            point, ref, values = sample
            where = "(" + ", ".join(f"{n}={x!r}" for n, x in zip(self.names, point, strict=True)) + ")"
            value_scale, scales, mag = self._scales(values)
            kink = self._at_kink(values, mag)
            try:
                results = self._evaluate(point, rng)
            except Exception as exc:  # the module failed at a point where the maths is finite
                value_row.failure = f"raised {type(exc).__name__}: {exc} at {where}"
                value_row.error = math.inf
                continue
            if kink:
                # A non-smooth gate sits exactly on its kink (a tie of max, relu at 0):
                # SymPy's derivative there is an average (Heaviside(0) = 1/2), the
                # module follows DESIGN.md's convention; only the value compares.
                kinks += 1
                value_row.add(results[0][0], ref[0], value_scale, where)
                continue
            for value, grads, label in results:
                if value is not None:
                    value_row.add(value, ref[0], value_scale, f"{where} [{label}]")
                for w, g, r, s in zip(self.wrt, grads, ref[1:], self._wrt_scales(scales), strict=True):
                    grad_rows[w].add(g, r, s, f"{where} [{label}]")
            smooth.append((point, ref, value_scale, self._wrt_scales(scales), where))
            self._finite_differences(point, results[0][1], scales, value_scale, fd_rows, where)
            if self.adjoint_refs:
                self._adjoints(point, values, scales, adj_rows, where)
        if self.build.options.backend == "numpy" and smooth:
            self._arrays(smooth, value_row, grad_rows)
        rows = [value_row, *grad_rows.values(), *fd_rows.values(), *adj_rows.values()]
        notes = list(self.notes)
        if kinks:
            notes.append(
                f"{kinks} of the points lie exactly on a kink (a tie of max or min, 0 in relu or "
                "abs): there the gradients follow the subgradient convention of the gate table, "
                "and only the value was compared with SymPy"
            )
        return Report(rows, accepted, discarded, notes + self._culprits(adj_rows))

    def _culprits(self, adj_rows: dict[int, Row]) -> list[str]:
        """Backward lines that turn correct adjoints into a wrong one."""
        graph = self.build.graph
        wrong = {graph.stages[k].out for k, row in adj_rows.items() if not row.ok}
        notes = []
        for k, row in adj_rows.items():
            v = graph.stages[k].out
            if v not in wrong:
                continue
            users = [j for j, s in enumerate(graph.stages) if v in s.values()]
            if all(graph.stages[j].out not in wrong for j in users):
                lines = ", ".join(f"({j + 1})" for j in users)
                notes.append(
                    f"{row.quantity.split(' ')[0]} is wrong while every adjoint it is made from is "
                    f"right: check the backward lines marked {lines}"
                )
        return notes

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
        for k, (_, ref, value_scale, scales, where) in enumerate(smooth):
            where = f"{where} [element {k} of arrays of all the points]"
            value_row.add(float(value[k]), ref[0], value_scale, where)
            for w, g, r, sc in zip(self.wrt, grads, ref[1:], scales, strict=True):
                grad_rows[w].add(float(g[k]), r, sc, where)

    def _wrt_scales(self, scales):
        return [scales[self.names.index(w)] for w in self.wrt]

    def _evaluate(self, point, rng):
        m = self.module
        value, grads = m.value_and_grad(*point)
        v2, cache = m.forward(*point)
        g1 = m.backward(1.0, cache)
        c = rng.uniform(0.5, 2.0)
        gc = m.backward(c, cache)
        return [
            (value, list(grads), "value_and_grad"),
            (v2, list(g1), "backward(1.0)"),
            (None, [g / c for g in gc], f"backward({c!r}) / {c!r}"),
        ]

    def _finite_differences(self, point, grads, scales, value_scale, rows, where):
        """Each gradient against central differences of the module's forward.

        Steps shrink by 4 until three consecutive estimates agree (the function
        is smooth on that scale; two can agree by chance where it oscillates); a
        quotient's own rounding, about eps * |f| / h, is part of the allowance.
        No agreement: nothing is compared at this point.
        """
        fwd = self.module.forward
        for w, g, s in zip(self.wrt, grads, self._wrt_scales(scales), strict=True):
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

    def _adjoints(self, point, values, scales, rows, where):
        got = self.instrumented.value_and_grad(*point)
        # value_and_grad seeds the output's adjoint with 1.0 (in the compact
        # style an alias of it is that literal, not a variable)
        got.setdefault(self.build.names.dout, 1.0)
        with mpmath.workdps(DPS):
            for k, _, name, downstream in self.adjoint_refs:
                v = self.build.graph.stages[k].out
                try:
                    # d output / d v of the composition, differentiated by mpmath
                    # at twice the working precision (50 correct digits)
                    with mpmath.workdps(2 * DPS):
                        output = self._composed(k, downstream, values)
                        ref = _real(mpmath.diff(output, values[v], **_step(output, values[v])))
                except (ValueError, ZeroDivisionError, TypeError):
                    continue
                rows[k].add(got.get(name), ref, scales[v] + PER_STAGE_FLOOR / RTOL, where)


def _step(output, at) -> dict:
    """mpmath.diff options for d output / d at, whatever the magnitudes.

    mpmath's default step is absolute (~1e-104 here): it jumps over a stage
    value of 1e-117 (1/den changes sign) and is below the last digit of a value
    of 1e200. The step is made relative to the value, and the working precision
    is raised by the bits between the output's magnitude and the value's, so
    that output(at ± step) still resolves the step (x + 1e-117 has the
    derivative 1, not 0)."""
    if not at:
        return {}
    value = output(at)
    extra = max(0, int(mpmath.mag(value)) - int(mpmath.mag(at))) if value else 0
    return {"h": abs(at) * mpmath.ldexp(1, -mpmath.mp.prec - 10), "addprec": 10 + extra}


def _heaviside(x, at_zero=0.5):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(at_zero)


# SymPy writes derivatives of max, min and relu with Heaviside; printed as a
# function it avoids the (slow) rewrite to Piecewise. Its value at 0 is never
# used: points on a kink compare the value only.
_MODULES = [{"Heaviside": _heaviside}, "mpmath"]


@dataclass(frozen=True)
class _Rules:
    """A stage's gate, lambdified for mpmath: its meaning and SymPy's partial
    derivatives of it (the references), and its local-gradient rules with their
    own partial derivatives (only for the rounding-error magnitudes)."""

    forward: object
    partials: list
    local: list
    local_partials: list  # [operand][symbol read: operands..., out] -> function or None
    kink: list | None  # (distance to a kink, its slopes per operand); None: smooth


@functools.lru_cache(maxsize=None)
def _instance_rules(gate_name: str, arity: int, params: tuple) -> _Rules:
    gate = REGISTRY[gate_name]
    xs = [slot(i) for i in range(arity)]
    f = gate.meaning(*xs, *params)
    reads = [*xs, OUT]

    def fn(expr):
        expr = expr.replace(sp.DiracDelta, lambda *a: sp.Integer(0))  # kinks: measure zero
        return sp.lambdify(reads, expr, modules=_MODULES)

    local = gate.instance(arity, params).local
    return _Rules(
        forward=sp.lambdify(xs, f, modules=_MODULES),
        partials=[sp.lambdify(xs, sp.diff(f, x), modules=_MODULES) for x in xs],
        local=[fn(rule) for rule in local],
        local_partials=[
            [fn(sp.diff(rule, r)) if r in rule.free_symbols else None for r in reads] for rule in local
        ],
        kink=(
            None
            if gate.smooth
            else [
                (
                    sp.lambdify(xs, e, modules=_MODULES),
                    [sp.lambdify(xs, sp.diff(e, x), modules=_MODULES) for x in xs],
                )
                for e in gate.kink(*xs)
            ]
        ),
    )


def _rules(stage) -> _Rules:
    return _instance_rules(stage.gate, len(stage.operands), stage.params)


def _abs(fn, args, signed: bool = False):
    """fn(*args) in mpmath; 0 where it has no value (the measure-zero kinks)."""
    try:
        value = fn(*args)
    except (ValueError, ZeroDivisionError, TypeError):
        return mpmath.inf
    value = _real(value) if not isinstance(value, (int, float)) else mpmath.mpf(value)
    return value if signed else abs(value)


def _mp(op, values):
    return mpmath.mpf(sp.N(op.value, DPS)) if isinstance(op, Const) else values[op]


def _real(x):
    if isinstance(x, mpmath.mpc):
        if x.imag != 0:
            raise ValueError("complex")
        x = x.real
    if isinstance(x, (int, float)) or hasattr(x, "_mpf_"):
        return mpmath.mpf(x)
    return mpmath.mpf(sp.N(x, DPS))


def _usable(xs) -> bool:
    return all(mpmath.isfinite(x) and abs(x) < FLOAT_MAX for x in xs)


def _central(f, point, i, h):
    def at(dx):
        p = list(point)
        p[i] += dx
        return f(*p)[0]

    return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)


class _ArrayChecker:
    """Array programs (declared matrices and vectors, matmul, reductions): every
    gradient against central finite differences of the module's own forward,
    along random directions, at random float64 inputs of the declared shapes
    (a size name takes a random size from 1 to 5, the same wherever it appears)."""

    STEPS = (1e-4, 5e-5)  # Richardson's extrapolation of the two cancels the h**2 term
    DIRECTIONS = 3  # per point

    def __init__(self, build, module, notes):
        self.build, self.module, self.notes = build, module, notes
        graph = build.graph
        self.inputs = graph.inputs
        self.wrt = [graph.inputs[k].name for k in build.backward.wrt]
        self.wrt_index = list(build.backward.wrt)

    def _sample(self, rng: random.Random):
        import numpy as np

        sizes: dict = {}
        args = []
        generator = np.random.default_rng(rng.getrandbits(32))
        for i in self.inputs:
            shape = () if i.shape is None else i.shape
            dims = tuple(d if isinstance(d, int) else sizes.setdefault(d, rng.randint(1, 5)) for d in shape)
            args.append(
                generator.uniform(-SAMPLE_HALF_WIDTH, SAMPLE_HALF_WIDTH, dims)
                if dims
                else rng.uniform(-SAMPLE_HALF_WIDTH, SAMPLE_HALF_WIDTH)
            )
        return args, sizes, generator

    def run(self, points: int, seed: int) -> Report:
        import numpy as np

        rng = random.Random(seed)
        rows = {w: Row(f"d{w}", "finite differences", tolerance=FD_RTOL) for w in self.wrt}
        shape_row = Row("gradient shapes", "the inputs' shapes")
        accepted = discarded = 0
        fwd = self.module.forward
        while accepted < points and discarded < points * TRIES_PER_POINT:
            args, sizes, generator = self._sample(rng)
            where = (
                "("
                + ", ".join(f"{n}={v}" for n, v in sorted(sizes.items()))
                + f", seed {seed}, point {accepted})"
            )
            with np.errstate(all="ignore"):
                try:
                    value, grads = self.module.value_and_grad(*args)
                except Exception as exc:
                    shape_row.failure = f"raised {type(exc).__name__}: {exc} at {where}"
                    break
                if not np.all(np.isfinite(value)):
                    discarded += 1
                    continue
                accepted += 1
                dout = generator.standard_normal(np.shape(value))
                _, cache = fwd(*args)
                grads = self.module.backward(dout, cache)
                for w, k, g in zip(self.wrt, self.wrt_index, grads, strict=True):
                    ok = np.shape(g) == np.shape(args[k])
                    shape_row.add(0.0 if ok else math.inf, 0.0, 1.0, where)
                    if not ok:
                        shape_row.failure = (
                            f"d{w} has shape {np.shape(g)}, {w} {np.shape(args[k])} at {where}"
                        )
                        continue
                    for _ in range(self.DIRECTIONS):
                        v = generator.standard_normal(np.shape(args[k]))
                        slope = float(np.sum(g * v))
                        estimates = []
                        for h in self.STEPS:
                            shifted = [list(args), list(args)]
                            shifted[0][k] = args[k] + h * v
                            shifted[1][k] = args[k] - h * v
                            plus, minus = (float(np.sum(dout * fwd(*a)[0])) for a in shifted)
                            estimates.append((plus - minus) / (2 * h))
                        fd = (4 * estimates[1] - estimates[0]) / 3
                        scale = float(np.sum(np.abs(g * v))) + FD_NOISE * abs(float(np.sum(dout * value))) / h
                        rows[w].add(slope, fd, scale, where)
        notes = list(self.notes) + [
            "array program: gradients against central finite differences along random directions "
            "(no SymPy reference for matrix expressions); the value is not compared"
        ]
        return Report([shape_row, *rows.values()], accepted, discarded, notes)

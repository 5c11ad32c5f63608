"""A per-stage trace at one point: values, local gradients and adjoints.

A view, not a pass: it reads the stage DAG, the reverse pass and the names of
one `Build`, and takes every number from the generated module itself. The
instrumented module (`modules.instrumented`: the module's own text with
value_and_grad returning ``locals()``) gives each forward value and adjoint by
name; a local gradient is the module's own printed local factor
(`StagePrinter.local`, stagegen-generated text, never user text) evaluated in
that namespace. So the trace shows what the code computes, not what a second
evaluator thinks it should. Nothing here branches on a gate's name, and no
pass imports this module.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .backends import BACKENDS, SOURCE
from .errors import UsageError
from .gates import REGISTRY
from .modules import FORWARD, instrumented
from .pipeline import OPTIONS, build
from .printer import Forms

NOT_COMPUTED = "-"  # what the table shows for a number the module does not compute


@dataclass(frozen=True)
class Local:
    """The local gradient of a stage with respect to one operand."""

    operand: str  # the operand as the formula writes it: a name or a constant
    value: float | None  # None: not computed (a constant, or off every gradient path)


@dataclass(frozen=True)
class Row:
    """One forward stage at the point."""

    number: int  # the stage's number, (1), (2), ... in the generated code
    name: str
    formula: str  # the stage in the input language: "x + y", "sigmoid(dot)"
    value: float
    locals: tuple[Local, ...]  # one per operand, in written order
    adjoint: str | None  # the adjoint's name in the code ("dq"); None: not computed
    gradient: float | None  # d output / d stage after the backward pass; None: not computed


@dataclass(frozen=True)
class InputRow:
    name: str
    value: float
    adjoint: str | None
    gradient: float | None  # None: not asked for (--wrt)


@dataclass(frozen=True)
class Trace:
    inputs: tuple[InputRow, ...]
    rows: tuple[Row, ...]  # in forward (stage) order
    outputs: tuple[str, ...]
    filename: str

    def row(self, name: str) -> Row | InputRow:
        """The row of the stage or input called `name`."""
        for row in (*self.inputs, *self.rows):
            if row.name == name:
                return row
        raise KeyError(name)

    def table(self) -> str:
        return table(self)


def parse_point(
    text: str,
    option: str,
    filename: str,
    value: Callable[[str], object] = float,
    what: str = "a number",
    form: str = "x=3,y=-4",
) -> dict:
    """``x=3,y=-4`` (the text of a CLI option) as a mapping from input name to `value` of the text
    after '='; `value` raises ValueError for text that is not `what` (``--domain x=5:10``: a range)."""
    example = f"e.g. {option} {form}"
    point: dict = {}
    for item in text.split(","):
        name, eq, given = (part.strip() for part in item.partition("="))
        if not eq or not name:
            raise UsageError(f"{option}: {item.strip()!r} is not name=value ({example})", file=filename)
        if name in point:
            raise UsageError(f"{option}: {name} is given twice", file=filename)
        try:
            point[name] = value(given)
        except ValueError:
            raise UsageError(f"{option}: {name}={given} is not {what} ({example})", file=filename) from None
    return point


def check_point(graph, point: Mapping, filename: str, option: str = "the point") -> tuple[float, ...]:
    """The point's values in input order; every input exactly once, each a finite real number."""
    names = [i.name for i in graph.inputs]
    unknown = [n for n in point if n not in names]
    if unknown:
        what = "is not an input" if len(unknown) == 1 else "are not inputs"
        raise UsageError(
            f"{option} names {', '.join(map(str, unknown))}, which {what}; the inputs are {', '.join(names)}",
            file=filename,
        )
    missing = [n for n in names if n not in point]
    if missing:
        raise UsageError(
            f"{option} misses {', '.join(missing)}; give a value for every input "
            f"({', '.join(f'{n}=...' for n in names)})",
            file=filename,
        )
    values = []
    for name in names:
        value = point[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UsageError(f"{option}: {name}={value!r} is not a number", file=filename)
        if not math.isfinite(value):
            raise UsageError(f"{option}: {name}={value!r} is not a finite number", file=filename)
        values.append(float(value))
    return tuple(values)


def evaluate(build, point: Mapping, option: str = "the point") -> Trace:
    """The trace of `build`'s generated module at `point` (input name -> number)."""
    graph, backward, names, program = build.graph, build.backward, build.names, build.program
    if not graph.elementwise:
        raise UsageError(
            f"{option} shows one number per stage; this program works on arrays",
            file=program.filename,
            hint="trace a scalar program (one without matrix, vector or array gates)",
        )
    args = check_point(graph, point, program.filename, option)
    module = instrumented(build.text, program.filename)
    try:
        if len(graph.outputs) == 1:
            ns = module.value_and_grad(*args)
        else:  # the gradient of the outputs' sum: dout = 1.0 for each
            ns = getattr(module, FORWARD)(*args)
            ns.update(module.backward(tuple(1.0 for _ in graph.outputs), module.forward(*args)[1]))
    except (ArithmeticError, ValueError) as exc:
        # the module's own message names the stage, its statement and its operands
        at = ", ".join(f"{i.name}={x!r}" for i, x in zip(graph.inputs, args, strict=True))
        raise UsageError(
            f"{option} {at}: the generated code raised {type(exc).__name__}: {exc}",
            file=program.filename,
            hint="choose a point where every stage is defined",
        ) from None
    # value_and_grad seeds the output's adjoint with 1.0; the compact style
    # writes the literal instead of a variable
    ns.setdefault(names.dout, 1.0)

    def adjoint(value: int) -> str | None:
        computed = value in names.adjoints or value in backward.alias
        return names.adjoint(backward, value) if computed else None

    code, source = Forms(BACKENDS[build.options.backend].syntax, names.module, names.dtype), Forms(SOURCE)
    rows = []
    for k, stage in enumerate(graph.stages):
        instance = REGISTRY[stage.gate].instance(len(stage.operands), stage.params)
        operands = [names.values[op] if isinstance(op, int) else op for op in stage.operands]
        out, adj = names.values[stage.out], adjoint(stage.out)
        local = []
        for i, op in enumerate(stage.operands):
            value = None
            if isinstance(op, int) and adj is not None and adjoint(op) is not None:
                # the module's own local factor: stagegen's printed text, never user text
                text = code.fill(instance.rules[i], operands, out)
                value = float(eval(compile(text, "<stagegen local gradient>", "eval"), module.__dict__, ns))
            local.append(Local(source.operand(operands[i]), value))
        rows.append(
            Row(
                number=k + 1,
                name=out,
                formula=source.fill(instance.display, operands),
                value=float(ns[out]),
                locals=tuple(local),
                adjoint=adj,
                gradient=None if adj is None else float(ns[adj]),
            )
        )
    inputs = tuple(
        InputRow(i.name, x, adjoint(k), None if adjoint(k) is None else float(ns[adjoint(k)]))
        for k, (i, x) in enumerate(zip(graph.inputs, args, strict=True))
    )
    return Trace(inputs, tuple(rows), tuple(names.values[o] for o in graph.outputs), program.filename)


def trace(source, point: Mapping | None = None, /, **keywords) -> Trace:
    """Values, local gradients and adjoints of every stage of `source` at a point.

    The point is given as keywords (``trace(src, x=3, y=-4)``) or as a mapping
    (``trace(src, {"x": 3, "y": -4})``, for inputs named like an option); the
    other keywords are the options of `stagegen.build`.
    """
    options = {k: v for k, v in keywords.items() if k in OPTIONS}
    values = {k: v for k, v in keywords.items() if k not in OPTIONS}
    b = build(source, **options)
    both = [n for n in values if point is not None and n in point]
    if both:
        raise UsageError(f"the point gives {', '.join(both)} twice", file=b.program.filename)
    return evaluate(b, {**(point or {}), **values})


def number(x: float | None, digits: int = 6) -> str:
    """A number as the trace and the diagram print it (`digits` significant digits)."""
    if x is None:
        return NOT_COMPUTED
    text = f"{x:.{digits}g}"
    return "0" if text == "-0" else text


def gradient_of(outputs: tuple[str, ...]) -> str:
    """What the gradient column differentiates: the output, or (dout = 1 on
    every output) the outputs' sum."""
    return f"d{outputs[0]}" if len(outputs) == 1 else f"d({' + '.join(outputs)})"


def table(trace: Trace) -> str:
    """The trace as a text table: one line per stage, then one per input."""
    head = ("#", "stage", "formula", "value", "local gradients", "gradient")
    lines = [
        (
            f"({row.number})",
            row.name,
            row.formula,
            number(row.value),
            ", ".join(f"{loc.operand}: {number(loc.value)}" for loc in row.locals),
            number(row.gradient),
        )
        for row in trace.rows
    ]
    widths = [max(len(cells[c]) for cells in [head, *lines]) for c in range(len(head))]

    def layout(cells):
        return "  ".join(
            c.rjust(w) if k == 3 or k == 5 else c.ljust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [layout(head), *map(layout, lines), ""]
    ihead = ("input", "value", "gradient")
    ilines = [(i.name, number(i.value), number(i.gradient)) for i in trace.inputs]
    iwidths = [max(len(cells[c]) for cells in [ihead, *ilines]) for c in range(3)]
    for cells in [ihead, *ilines]:
        out.append(
            "  ".join(
                c.ljust(w) if k == 0 else c.rjust(w)
                for k, (c, w) in enumerate(zip(cells, iwidths, strict=True))
            )
        )
    out.append(
        f"gradient: {gradient_of(trace.outputs)}/d(stage) after the backward pass; local gradients: "
        f"d(stage)/d(operand); {NOT_COMPUTED}: not computed"
    )
    return "\n".join(line.rstrip() for line in out)

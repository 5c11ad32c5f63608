"""Stage DAG -> the reverse pass, as plain data.

For every stage in reverse order and every operand that leads to a requested
gradient, one `Line`: adjoint of the operand (=, or += from its second
contribution on) gets the gate's local gradient times the stage's adjoint, or
for a structural gate (matmul, a reduction) its whole vector-Jacobian product.
Where broadcasting made the stage larger than the operand, the line says which
axes to sum (`Line.reduce`). Nothing is computed that does not lead to a
requested gradient, and the cache holds exactly the values the kept lines
read. In the compact style an adjoint whose only contribution is ``(1) * dv``
is not a line of its own: it *is* dv. Text is made later, by the printer and
the emitter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from .gates import OUT, REGISTRY, slot
from .ir import Graph, Stage
from .options import STYLES
from .shapes import reductions


@dataclass(frozen=True)
class Line:
    stage: int  # index of the forward stage in graph.stages
    operand: int  # position of the operand within that stage
    target: int  # the value whose adjoint receives the contribution
    accumulate: bool  # += (a later contribution at a fork) rather than =
    # Sums bringing the contribution to the target's shape, as (axes, keepdims)
    # steps; None: the shapes are known only at run time.
    reduce: tuple | None = ()


@dataclass(frozen=True)
class Backward:
    lines: tuple[Line, ...]  # in emission order: reverse stage order, operands in order
    wrt: tuple[int, ...]  # inputs whose gradients backward returns, in input order
    zero: tuple[int, ...]  # those of them the output does not depend on
    cache: tuple[int, ...]  # the values the lines read, ascending
    alias: dict[int, int]  # compact style: the adjoint of key is the adjoint of value
    style: str
    unbroadcast: tuple[int, ...] = ()  # inputs of unknown shape: their gradient is summed to it at the end

    def upstream(self, graph: Graph, line: Line) -> int:
        """The value whose adjoint flows into `line` (after aliasing)."""
        out = graph.stages[line.stage].out
        return self.alias.get(out, out)


def local(graph: Graph, stage: Stage, operand: int) -> sp.Expr:
    """The local gradient d stage / d operand on the gate's placeholders; for a
    structural gate, its whole contribution (in terms of DOUT)."""
    instance = REGISTRY[stage.gate].instance(len(stage.operands), stage.params)
    return (instance.local or instance.vjp)[operand]


def _shape(graph: Graph, value: int):
    return graph.shapes[value] if graph.shapes else ()


def _reduce(graph: Graph, stage: Stage, target: int, unbroadcast: set[int]):
    """How a contribution of `stage` reaches `target`'s shape (Line.reduce)."""
    if REGISTRY[stage.gate].structural:
        return ()  # its rule already has the operand's shape
    try:
        return tuple(reductions(_shape(graph, target), _shape(graph, stage.out)))
    except LookupError:
        pass
    producer = graph.stage_of(target)
    if producer is None:
        unbroadcast.add(target)  # an input: summed once, at the end
        return ()
    if REGISTRY[producer.gate].structural:
        return None  # its own rule needs the exact shape: sum at run time
    return ()  # elementwise all the way: the sum can wait for the inputs


@functools.lru_cache(maxsize=None)  # rule expressions: one per gate instance and operand
def _free_symbols(expr: sp.Expr) -> frozenset:
    return frozenset(expr.free_symbols)


def reads(stage: Stage, expr: sp.Expr) -> list[int]:
    """Values a rule expression reads: operand slots that are values, and the output."""
    found = []
    for i, op in enumerate(stage.operands):
        if isinstance(op, int) and slot(i) in _free_symbols(expr):
            found.append(op)
    if OUT in _free_symbols(expr):
        found.append(stage.out)
    return found


def differentiate(graph: Graph, wrt: tuple[int, ...] | None = None, style: str = "seed") -> Backward:
    """The reverse pass of `graph` for the inputs `wrt` (default: all)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    n = len(graph.inputs)
    wrt = tuple(range(n)) if wrt is None else tuple(sorted(set(wrt)))
    asked = set(wrt)
    depends = [k in asked for k in range(n)] + [False] * len(graph.stages)
    for stage in graph.stages:
        depends[stage.out] = any(depends[op] for op in stage.values())

    has_adjoint = {graph.output} if depends[graph.output] else set()
    contributions: dict[int, list[Line]] = {}
    lines: list[Line] = []
    unbroadcast: set[int] = set()
    for k in range(len(graph.stages) - 1, -1, -1):
        stage = graph.stages[k]
        if stage.out not in has_adjoint:
            continue
        for i, op in enumerate(stage.operands):
            if isinstance(op, int) and depends[op]:
                reduce = _reduce(graph, stage, op, unbroadcast)
                line = Line(k, i, op, accumulate=op in contributions, reduce=reduce)
                contributions.setdefault(op, []).append(line)
                lines.append(line)
                has_adjoint.add(op)

    alias: dict[int, int] = {}
    if style == "compact":
        for line in lines:  # reverse stage order: an upstream alias is known first
            target, out = line.target, graph.stages[line.stage].out
            if (
                target >= n
                and len(contributions[target]) == 1
                and line.reduce == ()
                and local(graph, graph.stages[line.stage], line.operand) == 1
            ):
                alias[target] = alias.get(out, out)
        lines = [line for line in lines if line.target not in alias]

    cache: set[int] = set()
    for line in lines:
        stage = graph.stages[line.stage]
        cache.update(reads(stage, local(graph, stage, line.operand)))
        if line.reduce is None:
            cache.add(line.target)  # its shape, at run time
    zero = tuple(k for k in wrt if k not in has_adjoint)
    # an array input's zero gradient, and a late sum to an input's shape, read its shape
    cache.update(k for k in zero if _shape(graph, k) != ())
    cache.update(unbroadcast)
    return Backward(tuple(lines), wrt, zero, tuple(sorted(cache)), alias, style, tuple(sorted(unbroadcast)))

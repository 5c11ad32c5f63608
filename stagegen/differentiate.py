"""Stage DAG -> the reverse pass, as plain data.

For every stage in reverse order and every operand that leads to a requested
gradient, one `Line`: adjoint of the operand (=, or += from its second
contribution on) gets the gate's local gradient times the stage's adjoint.
Nothing is computed that does not lead to a requested gradient, and the cache
holds exactly the values the kept lines read. In the compact style an adjoint
whose only contribution is ``(1) * dv`` is not a line of its own: it *is* dv.
Text is made later, by the printer and the emitter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from .gates import OUT, REGISTRY, slot
from .ir import Graph, Stage
from .options import STYLES


@dataclass(frozen=True)
class Line:
    stage: int  # index of the forward stage in graph.stages
    operand: int  # position of the operand within that stage
    target: int  # the value whose adjoint receives the contribution
    accumulate: bool  # += (a later contribution at a fork) rather than =


@dataclass(frozen=True)
class Backward:
    lines: tuple[Line, ...]  # in emission order: reverse stage order, operands in order
    wrt: tuple[int, ...]  # inputs whose gradients backward returns, in input order
    zero: tuple[int, ...]  # those of them the output does not depend on
    cache: tuple[int, ...]  # the values the lines read, ascending
    alias: dict[int, int]  # compact style: the adjoint of key is the adjoint of value
    style: str

    def upstream(self, graph: Graph, line: Line) -> int:
        """The value whose adjoint flows into `line` (after aliasing)."""
        out = graph.stages[line.stage].out
        return self.alias.get(out, out)


def local(graph: Graph, stage: Stage, operand: int) -> sp.Expr:
    """The local gradient d stage / d operand on the gate's placeholders."""
    gate = REGISTRY[stage.gate]
    return gate.instance(len(stage.operands), stage.params).local[operand]


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
    for k in range(len(graph.stages) - 1, -1, -1):
        stage = graph.stages[k]
        if stage.out not in has_adjoint:
            continue
        for i, op in enumerate(stage.operands):
            if isinstance(op, int) and depends[op]:
                line = Line(k, i, op, accumulate=op in contributions)
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
                and local(graph, graph.stages[line.stage], line.operand) == 1
            ):
                alias[target] = alias.get(out, out)
        lines = [line for line in lines if line.target not in alias]

    cache: set[int] = set()
    for line in lines:
        stage = graph.stages[line.stage]
        cache.update(reads(stage, local(graph, stage, line.operand)))
    zero = tuple(k for k in wrt if k not in has_adjoint)
    return Backward(tuple(lines), wrt, zero, tuple(sorted(cache)), alias, style)

"""Stage DAG -> the reverse pass, as plain data.

For every stage in reverse order and every operand that leads to a requested
gradient, one `Line`: the adjoint of the operand (=, or += from its second
contribution on) gets the gate's local gradient times the stage's adjoint, or
for a structural gate (matmul, a reduction) its whole vector-Jacobian product.
Where broadcasting made the stage larger than the operand, the line says which
axes to sum (`Line.reduce`). Nothing is computed that does not lead to a
requested gradient, and the cache holds exactly the values the kept lines
read.

What a line multiplies is a fact of the line, its `kind`: ``scale`` (local
times upstream), ``copy`` (the upstream itself: a local gradient of 1 in the
compact style), ``negate`` (minus the upstream: -1, compact) or ``vjp`` (a
structural gate's contribution). In the compact style an adjoint whose only
contribution is a copy is not a line of its own: it *is* the upstream
adjoint (`Backward.alias`). Text is made later, by the planner and printer.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from . import subscripts
from .expr import OUT, Expr, Num, Slot, mul, nodes, substitute
from .gates import REGISTRY
from .ir import Graph, Stage
from .options import STYLES
from .shapes import reductions

KINDS = ("scale", "copy", "negate", "vjp")


@dataclass(frozen=True)
class Line:
    stage: int  # index of the forward stage in graph.stages
    operand: int  # position of the operand within that stage
    target: int  # the value whose adjoint receives the contribution
    accumulate: bool  # += (a later contribution at a fork) rather than =
    # Sums bringing the contribution to the target's shape, as (axes, keepdims)
    # steps; None: the shapes are known only at run time.
    reduce: tuple | None = ()
    kind: str = "scale"  # one of KINDS
    # an operand written `repeat` times (x * x): one line, its rule that many times
    # its own (2 * x for x * x), where the occurrences' rules agree
    repeat: int = 1
    # a reduction's vjp as the value that broadcasts (Gate.broadcast): every line
    # reading the adjoint multiplies it by an array of the operand's shape
    broadcast: bool = False


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


def local(stage: Stage, operand: int) -> Expr:
    """The local gradient d stage / d operand on the gate's slots; for a
    structural gate, its whole contribution (in terms of DOUT)."""
    return REGISTRY[stage.gate].instance(len(stage.operands), stage.params).rules[operand]


def flows(stage: Stage, operand: int) -> bool:
    """Whether a gradient flows from `stage` into its operand `operand` (not into
    a mask, or out of one: a comparison, & | ~, where's condition)."""
    return isinstance(stage.operands[operand], int) and local(stage, operand) is not None


def carriers(graph: Graph, sources) -> list[bool]:
    """Which values depend differentiably on the inputs `sources` (a mask does not)."""
    carries = [k in sources for k in range(len(graph.inputs))] + [False] * len(graph.stages)
    for stage in graph.stages:
        carries[stage.out] = any(carries[op] for i, op in enumerate(stage.operands) if flows(stage, i))
    return carries


def index_bounds(graph: Graph) -> dict[int, tuple]:
    """Per index input (by value id): the sizes of the axes it indexes, in the
    order of first use (an int, or a size name), each once: its values must lie
    in -size .. size - 1 (NumPy's range) for each."""
    out: dict[int, dict] = {}
    for stage in graph.stages:
        if not REGISTRY[stage.gate].subscript:
            continue
        spec = stage.params[0].value
        shape = graph.shape(stage.operands[0])
        for item, axis in zip(spec, subscripts.axes(spec), strict=True):
            if item[0] == "take":
                out.setdefault(stage.operands[item[1]], {})[shape[axis]] = None
    return {k: tuple(sizes) for k, sizes in sorted(out.items())}


MAX_GUARD_TERMS = 4  # alternatives a guard keeps before it keeps only what they share
_UNGUARDED = frozenset({frozenset()})


def guards(graph: Graph) -> tuple[tuple[tuple[tuple[int, bool], ...], ...], ...]:
    """Per stage, where an output reads its value: alternatives (any may hold),
    each a conjunction of (mask value, holds) conditions; () for a stage an
    unconditional path reads. A stage only one branch of a `where` reads is
    guarded by that branch's condition (and by the where's own guard); a stage
    read by several uses by any of their guards, simplified (an alternative
    that implies another is dropped) and, past MAX_GUARD_TERMS alternatives,
    reduced to the conditions they all share. A condition guards only stages
    of its shape (or any, where it is a single boolean: the backward lines it
    masks have the stage's shape), never a structural stage, and only a stage
    after it (a mask a later stage computes guards nothing before it: that stage
    is then computed wherever the other alternatives do not guard it)."""
    n = len(graph.inputs)
    found: dict[int, frozenset] = dict.fromkeys(graph.outputs, _UNGUARDED)
    result: list[tuple] = [()] * len(graph.stages)
    for k in range(len(graph.stages) - 1, -1, -1):
        stage = graph.stages[k]
        gate = REGISTRY[stage.gate]
        guard = _UNGUARDED
        if not gate.structural:
            guard = _simplified(
                frozenset(_usable(graph, term, stage.out) for term in found.get(stage.out, _UNGUARDED))
            )
        result[k] = () if guard == _UNGUARDED else tuple(sorted(tuple(sorted(t)) for t in guard))
        for i, op in enumerate(stage.operands):
            if not isinstance(op, int) or op < n:
                continue
            use = guard
            if gate.branches is not None and i in gate.branches:
                branch = (stage.operands[gate.conditions[0]], i == gate.branches[0])
                use = frozenset(term | {branch} for term in guard)
            found[op] = use if op not in found else _simplified(found[op] | use)
    return tuple(result)


def _usable(graph: Graph, term: frozenset, value: int) -> frozenset:
    """The conditions of `term` that can guard `value`; one that cannot, but is
    made by & | ~, stands for what it says of its operands (~m, not holding, is m)."""
    kept, stack = set(), sorted(term)
    while stack:
        mask, holds = stack.pop()
        if _guards(graph, mask, value):
            kept.add((mask, holds))
            continue
        stage = graph.stage_of(mask)
        gate = REGISTRY[stage.gate] if stage is not None else None
        if gate is not None and gate.implies is not None:
            stack += [(stage.operands[i], h) for i, h in gate.implies(holds)]
    return frozenset(kept)


def _guards(graph: Graph, mask: int, value: int) -> bool:
    """Whether `mask` can guard `value`: computed before it, of its shape or one boolean."""
    shape = graph.shape(value)
    return mask < value and (graph.shape(mask) in ((), shape) or shape is None)


def _simplified(guard: frozenset) -> frozenset:
    """Alternatives without those that imply another (a superset of its
    conditions); past MAX_GUARD_TERMS, the one conjunction of what all share."""
    kept = frozenset(t for t in guard if not any(o < t for o in guard))
    if len(kept) > MAX_GUARD_TERMS:
        kept = frozenset({frozenset.intersection(*kept)})
    return kept


def rule(stage: Stage, line: Line) -> Expr:
    """The rule a line multiplies the upstream adjoint by (or its vjp): the gate's
    local rule, times `line.repeat` for an operand written several times."""
    if line.broadcast:
        return REGISTRY[stage.gate].instance(len(stage.operands), stage.params).broadcast[line.operand]
    if line.repeat == 1:
        return local(stage, line.operand)
    return mul(Num(line.repeat), _identified(stage, line.operand))


def _identified(stage: Stage, operand: int) -> Expr:
    """`operand`'s local rule with each slot of a repeated value as its first slot."""
    first = {}
    for i, op in enumerate(stage.operands):
        if isinstance(op, int):
            first.setdefault(op, i)
    mapping = {
        Slot(i): Slot(first[op])
        for i, op in enumerate(stage.operands)
        if isinstance(op, int) and first[op] != i
    }
    return substitute(local(stage, operand), mapping) if mapping else local(stage, operand)


@functools.lru_cache(maxsize=None)  # rule expressions: one per gate instance and operand
def _leaves(rule: Expr) -> tuple[frozenset[int], bool]:
    """The operand slots a rule reads, and whether it reads the output."""
    found = list(nodes(rule))
    return frozenset(n.index for n in found if isinstance(n, Slot)), OUT in found


def reads(stage: Stage, rule: Expr) -> list[int]:
    """Values a rule reads: operand slots that are values, and the output."""
    used, out = _leaves(rule)
    found = [op for i, op in enumerate(stage.operands) if isinstance(op, int) and i in used]
    return found + [stage.out] if out else found


def _reduce(graph: Graph, stage: Stage, target: int, unbroadcast: set[int]):
    """How a contribution of `stage` reaches `target`'s shape (Line.reduce)."""
    if REGISTRY[stage.gate].structural:
        return ()  # its rule already has the operand's shape
    try:
        return tuple(reductions(graph.shape(target), graph.shape(stage.out)))
    except LookupError:
        pass
    producer = graph.stage_of(target)
    if producer is None:
        unbroadcast.add(target)  # an input: summed once, at the end
        return ()
    if REGISTRY[producer.gate].structural:
        return None  # its own rule needs the exact shape: sum at run time
    return ()  # elementwise all the way: the sum can wait for the inputs


def _broadcasts(graph: Graph, lines: list[Line], line: Line, counts: dict[int, int]) -> bool:
    """Whether a reduction's line may give its operand an adjoint that broadcasts
    (``dW2W2 = dt15``, not ``np.full_like(W2W2, dt15)``): the operand is made by an
    elementwise stage (not a where), this is its adjoint's only contribution, and
    every line of that stage multiplies the adjoint by a value of the operand's shape."""
    stage = graph.stages[line.stage]
    gate = REGISTRY[stage.gate]
    if line.kind != "vjp" or gate.broadcast is None or counts.get(line.target) != 1:
        return False
    producer = graph.stage_of(line.target)
    shape = graph.shape(line.target)
    if producer is None or shape in (None, ()):
        return False
    made = REGISTRY[producer.gate]
    if made.structural or made.branches is not None:  # where selects, never multiplies
        return False
    k = line.target - len(graph.inputs)
    mine = [x for x in lines if x.stage == k]
    return bool(mine) and all(
        x.kind == "scale" and any(graph.shape(v) == shape for v in reads(producer, rule(producer, x)))
        for x in mine
    )


def _kind(stage: Stage, operand: int, style: str) -> str:
    if REGISTRY[stage.gate].structural:
        return "vjp"
    rule = local(stage, operand)
    if style == "compact" and rule == Num(1):
        return "copy"
    if style == "compact" and rule == Num(-1):
        return "negate"
    return "scale"


def differentiate(graph: Graph, wrt: tuple[int, ...] | None = None, style: str = "seed") -> Backward:
    """The reverse pass of `graph` for the inputs `wrt` (default: all)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    n = len(graph.inputs)
    wrt = tuple(range(n)) if wrt is None else tuple(sorted(set(wrt)))
    depends = carriers(graph, set(wrt))

    has_adjoint = {out for out in graph.outputs if depends[out]}
    # An output's own upstream gradient (its part of dout) is the first
    # contribution to its adjoint; one that feeds another output gets `+=` after it.
    contributions: dict[int, list] = {out: [None] for out in graph.outputs}
    lines: list[Line] = []
    unbroadcast: set[int] = set()
    for k in range(len(graph.stages) - 1, -1, -1):
        stage = graph.stages[k]
        if stage.out not in has_adjoint:
            continue
        mine: dict[int, int] = {}  # this stage's lines: operand value -> index in lines
        for i, op in enumerate(stage.operands):
            if isinstance(op, int) and depends[op] and flows(stage, i):
                j = mine.get(op)
                if (
                    j is not None
                    and not REGISTRY[stage.gate].structural
                    and _identified(stage, i) == _identified(stage, lines[j].operand)
                ):  # x * x: one line, 2 * x
                    lines[j] = dataclasses.replace(lines[j], repeat=lines[j].repeat + 1, kind="scale")
                    contributions[op][-1] = lines[j]
                    continue
                mine[op] = len(lines)
                reduce = _reduce(graph, stage, op, unbroadcast)
                line = Line(k, i, op, op in contributions, reduce, _kind(stage, i, style))
                contributions.setdefault(op, []).append(line)
                lines.append(line)
                has_adjoint.add(op)

    counts = {target: len(found) for target, found in contributions.items()}
    lines = [
        dataclasses.replace(x, broadcast=True) if _broadcasts(graph, lines, x, counts) else x for x in lines
    ]

    alias: dict[int, int] = {}
    for line in lines:  # reverse stage order: an upstream alias is known first
        target, out = line.target, graph.stages[line.stage].out
        if target >= n and line.kind == "copy" and contributions[target] == [line] and line.reduce == ():
            alias[target] = alias.get(out, out)
    lines = [line for line in lines if line.target not in alias]

    cache: set[int] = set()
    for line in lines:
        stage = graph.stages[line.stage]
        cache.update(reads(stage, rule(stage, line)))
        if line.reduce is None:
            cache.add(line.target)  # its shape, at run time
    zero = tuple(k for k in wrt if k not in has_adjoint)
    # an array input's zero gradient, and a late sum to an input's shape, read its shape
    cache.update(k for k in zero if graph.shape(k) != ())
    cache.update(unbroadcast)
    return Backward(tuple(lines), wrt, zero, tuple(sorted(cache)), alias, style, tuple(sorted(unbroadcast)))

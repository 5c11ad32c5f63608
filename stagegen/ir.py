"""stagegen's intermediate representation: the stage DAG.

A `Graph` is a list of frozen `Stage` records in SSA form over integer value
ids: ids ``0 .. len(inputs) - 1`` are the inputs, and stage ``k`` (0-based)
defines value ``len(inputs) + k``. Stages are listed in evaluation order, so
every operand is defined before it is used. An operand is a value id or a
number (`expr.Num`); so is every parameter. Readable names and the printed
stage numbers ``(1), (2), ...`` are assigned later by `names.py`; this module
only offers a stable, line-per-stage dump for tests and ``--dump``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import Span
from .expr import Num

Operand = int | Num


@dataclass(frozen=True)
class Domain:
    """Where `verify` samples an input: from lo to hi, each end in or out."""

    lo: float
    hi: float
    closed: bool = True  # [lo, hi]; else (lo, hi)

    def __str__(self) -> str:
        return f"[{self.lo!r}, {self.hi!r}]" if self.closed else f"({self.lo!r}, {self.hi!r})"


@dataclass(frozen=True)
class Input:
    name: str
    span: Span | None = None
    shape: tuple | None = ()  # declared sizes (ints or size names); None: not declared (any shape)
    domain: Domain | None = None  # declared range to check it in (x: scalar in [1, 2])
    integer: bool = False  # an index array (y: index(n)): integers for subscripts, no gradient


@dataclass(frozen=True)
class Stage:
    gate: str  # key into the gate registry
    operands: tuple[Operand, ...]  # value ids or numbers, in written order
    params: tuple[Num, ...]  # constant parameters of the gate (an exponent, an axis)
    out: int  # the value this stage defines
    name: str | None = None  # the name the user gave this stage, if any
    span: Span | None = None
    role: str | None = None  # a name its place suggests ("num", "den"), if free

    def values(self) -> tuple[int, ...]:
        """The value ids among the operands, in order (repeats kept)."""
        return tuple(op for op in self.operands if isinstance(op, int))


@dataclass(frozen=True)
class Graph:
    inputs: tuple[Input, ...]
    stages: tuple[Stage, ...]
    outputs: tuple[int, ...]  # the values the program returns, in order (an input never: f = x is a stage)
    rewrites: tuple[tuple[str, Span | None], ...] = field(default=())  # grouped gates recognised
    dropped: tuple[str, ...] = field(default=())  # named stages the output does not depend on
    shapes: tuple = field(default=())  # shape of every value (lower.infer); () everywhere for scalars
    # a scalar program: no input declared as an array and no array gate (the
    # numpy backend applies it to arrays element by element)
    elementwise: bool = True

    @property
    def output(self) -> int:
        """The output of a program of one output."""
        assert len(self.outputs) == 1, "a program of several outputs has no single output"
        return self.outputs[0]

    def stage_of(self, value: int) -> Stage | None:
        """The stage defining `value`, or None for an input."""
        k = value - len(self.inputs)
        return self.stages[k] if k >= 0 else None

    def shape(self, value: int):
        """The shape of `value`: () for a scalar, None where only run time knows it."""
        return self.shapes[value] if self.shapes else ()

    def check(self) -> None:
        """Assert the SSA invariants (a failure is a stagegen bug)."""
        n = len(self.inputs)
        for k, stage in enumerate(self.stages):
            assert stage.out == n + k, f"stage {k} defines {stage.out}, expected {n + k}"
            for op in stage.values():
                assert 0 <= op < stage.out, f"stage {k} reads {op} before it is defined"
        for out in self.outputs:
            assert 0 <= out < n + len(self.stages), f"output {out} is undefined"

    def dump(self) -> str:
        """One line per stage: ``%5 = mul x %4    ; 2:5``, inputs by name."""

        def ref(op: Operand) -> str:
            if isinstance(op, Num):
                return str(op)
            return self.inputs[op].name if op < len(self.inputs) else f"%{op}"

        lines = ["in  " + " ".join(i.name for i in self.inputs)]
        for stage in self.stages:
            words = [stage.gate, *map(ref, stage.operands), *map(str, stage.params)]
            text = f"{ref(stage.out)} = {' '.join(words)}"
            if stage.name:
                text += f"  [{stage.name}]"
            if stage.span:
                text = f"{text:<28}; {stage.span.line}:{stage.span.col}"
            lines.append(text)
        lines.append("out " + " ".join(ref(out) for out in self.outputs))
        return "\n".join(lines)

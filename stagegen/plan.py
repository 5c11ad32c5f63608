"""The graph, the reverse pass and the names -> a `Listing`: every statement of
every generated function, typed, with what it binds and reads. Text is made
later, by `render`.

A statement's right-hand side is a *form*: an expression over the gate's
operand slots, its output (``{out}``) and the adjoint flowing in (``{dout}``),
with the names to fill in. Forms are shared between statements of the same
shape (one per gate instance, operand and kind), so the renderer prints each
once, whatever the size of the program.

Decided here, on the IR, never by reading text: how each contribution is
written (the seed style's ``(local) * dout``; the compact style's copies,
negations and the literal 1.0 in value_and_grad), whether ``+=`` may update
an array in place (only an adjoint's own fresh array of known shape; a view
or another adjoint's array never), which gradients need a copy of their own,
and, where the backend releases arrays, which names are deleted after the
block that last reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backends import BACKENDS, Backend
from .differentiate import Backward, Line, local, reads
from .expr import DOUT, OUT, Call, Compare, Expr, Num, Ref, Slot, has, substitute
from .gates import REGISTRY
from .ir import Graph, Stage
from .names import Names
from .options import Options

LIKE = Ref("{like}")  # the value a run-time sum brings a gradient to the shape of
_VIEWS = frozenset(g.fn for g in REGISTRY.values() if g.view)  # operations whose result is a view


@dataclass(slots=True, eq=False)
class Statement:
    """One line of a function body."""

    kind: str  # "stage", "comment", "contribution", "seed", "zero", "unbroadcast", "release"
    binds: str = ""  # the name it binds ("" for a comment or a release)
    # a comment ("# backprop out = form") shows the stage whose adjoint lines follow
    form: Expr | None = None  # the right-hand side, over Slot(i), OUT, DOUT and LIKE
    operands: tuple = ()  # the names (or numbers, `Num`) that fill Slot(i)
    out: str = ""  # fills OUT; a comment's stage name
    dout: str = ""  # fills DOUT
    like: str = ""  # fills LIKE
    op: str = "="  # "=", "+=" or "-="
    add: str = ""  # "+" or "-": written ``binds = binds + form`` (an array that may not be updated in place)
    number: int | None = None  # the stage it belongs to, written ``# (k)``
    note: str = ""  # after the number in the comment, or the whole comment
    floats: bool = False  # the form's integer constants written as floats
    source: bool = False  # the form is in the input language (a comment's formula)
    reads: tuple[str, ...] = ()
    alias: str = ""  # binds this name's array (or a view of it), not a new one
    array: bool = True  # binds an array, or what may be one (not a number of shape ())
    block: tuple = ()  # the forward stage, or the stage a backprop block is about
    names: tuple[str, ...] = ()  # a release: the names deleted


@dataclass(frozen=True)
class Listing:
    """What the renderer prints: the three functions and what the module declares."""

    backend: Backend
    module: str  # the backend module's alias here
    inputs: tuple[str, ...]
    wrt: tuple[str, ...]
    outputs: tuple[str, ...]
    cached: tuple[str, ...]
    gradients: tuple[str, ...]
    dout: str
    cache: str
    forward: tuple[Statement, ...]
    backward: tuple[Statement, ...]
    fused: tuple[Statement, ...]  # value_and_grad's body (a program of one output; else empty)
    backward_lines: int  # adjoint statements of backward (for the docstring's cost)
    displays: tuple[Statement, ...] = field(default=())  # each stage as the input language writes it
    shapes: tuple = ()  # the shape of each input, then of each output (arrays only)
    output_adjoints: tuple[str, ...] = ()  # several outputs: their adjoints, unpacked from dout


class _Planner:
    """Statements of one module; one instance per `plan` call."""

    def __init__(self, graph: Graph, backward: Backward, names: Names, options: Options):
        self.graph, self.backward, self.names = graph, backward, names
        self.backend = BACKENDS[options.backend]
        # compact math: the rules' integer constants as floats (CPython's float fast path)
        self.floats = not self.backend.arrays and backward.style == "compact"
        self.forms: dict[tuple, Expr] = {}
        # arrays: adjoints that may take += in place (a fresh array of their own shape)
        # (several outputs: an output's adjoint starts as the caller's dout, never updated in place)
        self.in_place: dict[int, bool] = (
            {} if len(graph.outputs) == 1 else dict.fromkeys(graph.outputs, False)
        )
        self.contributions: dict[int, int] = {}
        self.known: dict[int, bool] = {}
        for line in backward.lines:
            self.contributions[line.target] = self.contributions.get(line.target, 0) + 1
            known = graph.shape(graph.stages[line.stage].out) is not None
            self.known[line.target] = self.known.get(line.target, True) and known
        # a program of elementwise stages on inputs of unknown shape
        self.unknown_elementwise = graph.elementwise and None in graph.shapes[: len(graph.inputs)]

    def operands(self, stage: Stage) -> tuple[str, ...]:
        return tuple(self.names.values[op] if isinstance(op, int) else op for op in stage.operands)

    # -- the forward pass ---------------------------------------------------
    def forward(self) -> list[Statement]:
        values, graph = self.names.values, self.graph
        statements = []
        for k, stage in enumerate(graph.stages):
            instance = REGISTRY[stage.gate].instance(len(stage.operands), stage.params)
            statements.append(
                Statement(
                    "stage",
                    values[stage.out],
                    instance.code[self.backend.name],
                    self.operands(stage),
                    number=k + 1,
                    reads=tuple(values[op] for op in stage.values()),
                    alias=self._viewed(instance.code[self.backend.name], stage),
                    array=graph.shape(stage.out) != (),
                    block=("forward", k),
                )
            )
        return statements

    def display(self, k: int) -> Statement:
        """Stage k as the input language writes it (``invden = 1.0 / den``), as a comment."""
        stage = self.graph.stages[k]
        form = REGISTRY[stage.gate].instance(len(stage.operands), stage.params).display
        return Statement(
            "comment",
            form=form,
            operands=self.operands(stage),
            out=self.names.values[stage.out],
            source=True,
            block=("backprop", k),
        )

    # -- the reverse pass ---------------------------------------------------
    def contribution(self, line: Line, unit_dout: bool) -> Statement:
        """One adjoint line; `unit_dout`: the output's adjoint is the literal 1.0."""
        graph, names = self.graph, self.names
        stage = graph.stages[line.stage]
        gate = REGISTRY[stage.gate]
        upstream = self.backward.upstream(graph, line)
        unit = unit_dout and upstream in graph.outputs
        target, target_name = line.target, names.adjoints[line.target]
        form, op = self._form(stage, line, unit)
        alias = self._viewed(form, stage, names.adjoints[upstream])
        read = [names.values[v] for v in reads(stage, local(stage, line.operand))]
        read += [] if unit else [names.adjoints[upstream]]
        read += [names.values[target]] if line.reduce is None else []
        common = dict(
            operands=self.operands(stage),
            out=names.values[stage.out],
            dout=names.adjoints[upstream],
            like=names.values[target],
            number=line.stage + 1,
            note=f"; {gate.convention}" if gate.convention else "",
            floats=self.floats,
            array=graph.shape(target) != (),
            block=("backprop", line.stage),
        )
        if not line.accumulate:
            fresh = not alias
            if self.backend.arrays and not fresh and self._returned_alone(target):
                # a returned gradient owns its array: never dout's, another gradient's, or a view
                form, fresh = self._copied(form), True
                alias = ""
            # a name or view of another array is never updated in place
            self.in_place[target] = fresh
            return Statement("contribution", target_name, form, alias=alias, reads=tuple(read), **common)
        read.append(target_name)
        if self.backend.arrays and not (self.in_place[target] and self._exact(target, unit_dout)):
            return Statement("contribution", target_name, form, add=op[0], reads=tuple(read), **common)
        return Statement(
            "contribution", target_name, form, op=op, alias=target_name, reads=tuple(read), **common
        )

    def _form(self, stage: Stage, line: Line, unit: bool) -> tuple[Expr, str]:
        """The contribution's form (shared by lines of the same shape) and its operator."""
        op = (
            "-="
            if line.kind == "negate" and line.accumulate and not unit
            else ("+=" if line.accumulate else "=")
        )
        key = (stage.gate, len(stage.operands), stage.params, line.operand, line.kind, unit, line.reduce, op)
        if key not in self.forms:
            rule = local(stage, line.operand)
            seed = self.backward.style == "seed"
            if line.kind == "vjp":  # the rule is the whole contribution
                form = substitute(rule, {DOUT: Num(1)}) if unit else rule
            elif unit:
                # dout is the literal 1.0 here; the gradient must still be a float
                if _floating(rule, self.floats):
                    form = rule
                elif isinstance(rule, Num):
                    form = Num(float(rule.value))
                else:
                    form = Call("mul", (rule, Num(1.0)))
            elif seed:
                form = Call("mul", (Call("paren", (rule,)), DOUT))
            elif line.kind == "copy" or (line.kind == "negate" and line.accumulate):
                form = DOUT
            elif line.kind == "negate":
                form = Call("neg", (DOUT,))
            else:
                form = Call("mul", (rule, DOUT))
            if line.reduce is None:
                form = self.backend.unbroadcast(form, LIKE)
            elif line.reduce:
                form = self.backend.summed(form, line.reduce)
            self.forms[key] = form
        return self.forms[key], op

    def _viewed(self, form: Expr, stage: Stage, dout: str = "") -> str:
        """The name whose array `form` is, or a view of (``dx = dxpy``, ``WT = W.T``); "" for a new array."""
        while isinstance(form, Call) and form.fn in _VIEWS:
            form = form.args[0]
        if isinstance(form, Slot) and isinstance(stage.operands[form.index], int):
            return self.names.values[stage.operands[form.index]]
        if form == OUT:
            return self.names.values[stage.out]
        return dout if form == DOUT else ""

    def _copied(self, form: Expr) -> Expr:
        key = ("copy", id(form))
        if key not in self.forms:
            self.forms[key] = self.backend.copy(form)
        return self.forms[key]

    def _returned_alone(self, value: int) -> bool:
        """An input's gradient (an array, possibly) made by one line."""
        return (
            value < len(self.graph.inputs)
            and self.graph.shape(value) != ()
            and self.contributions[value] == 1
        )

    def _exact(self, value: int, unit_dout: bool) -> bool:
        """Every contribution to value's adjoint has the shape of the first one.

        Known shapes: the reductions bring each to value's shape. A program of
        elementwise stages on inputs of unknown shape sums only at the end, so
        every adjoint there has the shape of dout (unless dout is folded away)."""
        if not unit_dout and self.unknown_elementwise:
            return True
        return self.graph.shape(value) is not None and self.known[value]

    def reverse(self, unit_dout: bool) -> list[Statement]:
        graph, names, backward = self.graph, self.names, self.backward
        statements, current = [], None
        for line in backward.lines:
            if line.stage != current:
                current = line.stage
                statements.append(self.display(current))
            statements.append(self.contribution(line, unit_dout))
        for k in backward.unbroadcast:
            if k in backward.wrt and k not in backward.zero:
                name, grad = graph.inputs[k].name, names.adjoints[k]
                statements.append(
                    Statement(
                        "unbroadcast",
                        grad,
                        self.backend.unbroadcast(DOUT, LIKE),
                        dout=grad,
                        like=name,
                        note=f"to {name}'s shape",
                        reads=(grad, name),
                    )
                )
        for k in backward.zero:
            name, grad = graph.inputs[k].name, names.adjoints[k]
            statements.append(
                Statement(
                    "zero",
                    grad,
                    self.backend.zero(Ref(name), graph.shape(k) == ()),
                    note=f"{name} does not reach {' or '.join(names.values[o] for o in graph.outputs)}",
                    reads=(name,),
                )
            )
        return statements

    def unit_dout(self) -> bool:
        """Whether value_and_grad may fold dout = 1.0 into the lines: a scalar
        output, or an elementwise one of unknown shape (whose gradients the
        run-time sum brings to their inputs' shapes)."""
        outputs = self.graph.outputs
        return self.backward.style == "compact" and self.graph.shape(outputs[0]) in ((), None)

    def listing(self) -> Listing:
        graph, names, backward = self.graph, self.names, self.backward
        cached = tuple(names.values[v] for v in backward.cache)
        grads = tuple(names.adjoints[k] for k in backward.wrt)
        outs = tuple(names.values[o] for o in graph.outputs)
        forward = self.forward()
        back = self.reverse(unit_dout=False)
        fused: list[Statement] = []  # value_and_grad: for one output only
        if len(outs) == 1 and self.unit_dout():
            fused = self.reverse(unit_dout=True)
        elif len(outs) == 1:
            scalar = graph.shape(graph.output) == ()
            seed = Statement(
                "seed", names.dout, self.backend.seed(Ref(outs[0]), scalar), reads=outs, array=not scalar
            )
            fused = [seed, *back]
        if self.backend.release:
            forward_body = _released(forward, {*cached, *outs})
            backward_body = _released(back, set(grads))
            fused_body = _released(forward + fused, {*grads, *outs}) if fused else []
        else:
            forward_body, backward_body, fused_body = forward, back, (forward + fused if fused else [])
        return Listing(
            backend=self.backend,
            module=names.module,
            inputs=tuple(i.name for i in graph.inputs),
            wrt=tuple(graph.inputs[k].name for k in backward.wrt),
            outputs=outs,
            cached=cached,
            gradients=grads,
            dout=names.dout,
            cache=names.cache,
            forward=tuple(forward_body),
            backward=tuple(backward_body),
            fused=tuple(fused_body),
            backward_lines=sum(1 for s in back if s.binds),
            displays=tuple(self.display(k) for k in range(len(graph.stages))),
            shapes=tuple(graph.shape(k) for k in (*range(len(graph.inputs)), *graph.outputs)),
            output_adjoints=() if len(outs) == 1 else tuple(names.adjoints[o] for o in graph.outputs),
        )


def _floating(rule: Expr, floats: bool) -> bool:
    """Whether a local gradient evaluates to a float by itself: a comparison
    such as (x > 0) is a bool, sign(x) and integer literals are ints (unless
    written as floats)."""
    if isinstance(rule, Num):
        return floats or not isinstance(rule.value, int)
    return not has(rule, lambda n: isinstance(n, Compare) or (isinstance(n, Call) and n.fn == "sign"))


def _released(statements: list[Statement], keep: set[str]) -> list[Statement]:
    """The statements with releases: each array the function made is deleted
    (every name bound to it) at the end of the stage block that last reads it,
    so a call holds only the arrays still to be read: on large elementwise
    work, fresh pages for new arrays cost as much as the arithmetic. Arrays a
    returned name (`keep`) holds, the arguments and the cache's arrays stay;
    nothing is released after the last block."""
    last: dict[int, int] = {}  # array (the statement that made it) -> the statement that last uses it
    holds: dict[str, int | None] = {}  # name -> its array (None: one the function did not make)
    for i, statement in enumerate(statements):
        for name in statement.reads:
            if holds.get(name) is not None:
                last[holds[name]] = i
        if statement.binds:
            holds[statement.binds] = array = _held(statement, holds, i)
            if array is not None:
                last[array] = i
    dying: dict[int, list[int]] = {}
    for array, i in last.items():
        dying.setdefault(i, []).append(array)
    holders: dict[int, dict[str, None]] = {}  # array -> the names bound to it now, in binding order
    holds.clear()
    out, pending = [], []
    for i, statement in enumerate(statements):
        if pending and statement.block != statements[i - 1].block:
            out.append(Statement("release", names=tuple(pending)))
            pending = []
        out.append(statement)
        name = statement.binds
        if name:
            if holds.get(name) is not None:
                del holders[holds[name]][name]
            holds[name] = array = _held(statement, holds, i)
            if array is not None:
                holders.setdefault(array, {})[name] = None
        for array in sorted(dying.get(i, ())):
            group = list(holders.pop(array, {}))
            if not keep.intersection(group):
                pending += group
    return out


def _held(statement: Statement, holds: dict[str, int | None], i: int) -> int | None:
    """The array `statement` (number i) binds: a new one, the one it aliases, or
    None for a number or an array the function did not make."""
    if not statement.array:
        return None
    return holds.get(statement.alias) if statement.alias else i


def plan(graph: Graph, backward: Backward, names: Names, options: Options) -> Listing:
    """Every statement of the module of `graph`, in order, typed."""
    return _Planner(graph, backward, names, options).listing()


__all__ = ["plan", "Listing", "Statement", "LIKE"]

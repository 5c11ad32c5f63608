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

import dataclasses
from dataclasses import dataclass, field

from .backends import BACKENDS, Backend
from .differentiate import Backward, Line, carriers, differentiate, flows, guards, index_bounds, local, reads
from .differentiate import rule as line_rule
from .errors import UsageError
from .expr import (
    DOUT,
    OUT,
    Call,
    Compare,
    Expr,
    Num,
    Ref,
    Select,
    Slot,
    Subscript,
    add,
    diff,
    has,
    mul,
    nodes,
    push,
    substitute,
)
from .gates import DERIVATIVES, REGISTRY, TANGENT
from .ir import Graph, Stage
from .names import Names
from .options import Options

LIKE = Ref("{like}")  # the value a run-time sum brings a gradient to the shape of
_VIEWS = frozenset(g.fn for g in REGISTRY.values() if g.view)  # operations whose result is a view


@dataclass(slots=True, eq=False)
class Statement:
    """One line of a function body."""

    # "stage", "comment", "contribution", "seed", "zero", "unbroadcast", "release", "tangent",
    # "block" (the header of a block the quiet statements after it are in: `note`),
    # "entry" (a Jacobian entry: a copy of a gradient or tangent), "sweep" (a comment heading
    # a sweep of value_and_jacobian: `note`); value_and_jacobian of arrays: "alloc" (an
    # entry `binds` of zeros of `out`'s shape + `like`'s), "loop" (over the elements of
    # `out`, the index `binds`), "onehot" (``binds[out] = 1.0``), "put" (``binds[out] = dout``)
    kind: str
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
    depth: int = 0  # blocks it is inside beyond the function's (a loop's body: 1)
    # a stage only an untaken branch of a where may read, computed where its values
    # may be invalid: inside the backend's quiet block (np.errstate), if it has one
    quiet: bool = False
    # a scatter (a subscript's adjoint): the index, over Slot(i) and LIKE, and the
    # backend's template of the statement that adds the value (`form`) into `binds`
    # there (Backend.scatter)
    index: tuple[Expr, str] | None = None


@dataclass(frozen=True)
class Listing:
    """What the renderer prints: the three functions and what the module declares."""

    backend: Backend
    module: str  # the backend module's alias here
    dtype: str  # the array API: the name of the arguments' float dtype ("" elsewhere)
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
    index: str = ""  # value_and_jacobian of arrays: the loop's index
    output_adjoints: tuple[str, ...] = ()  # several outputs: their adjoints, unpacked from dout
    functions: tuple[Function, ...] = ()  # those asked for (--with), in options.FUNCTIONS order
    # where: the stages only a branch reads ("name (k)"), and those a branch reads
    # that another path reads too, so they are not guarded
    guarded: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    # index inputs (name, the sizes of the axes it indexes): checked at entry
    indexes: tuple[tuple[str, tuple], ...] = ()


@dataclass(frozen=True)
class Function:
    """A function asked for beside forward and backward (options.FUNCTIONS)."""

    name: str  # as the module defines it: "jvp", "value_and_jacobian"
    parameters: tuple[str, ...]
    body: tuple[Statement, ...]
    returns: tuple  # what it returns: names, nested in tuples as the result is
    cost: str  # its cost, for the docstring


class _Planner:
    """Statements of one module; one instance per `plan` call."""

    def __init__(self, graph: Graph, backward: Backward, names: Names, options: Options):
        self.graph, self.backward, self.names, self.options = graph, backward, names, options
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
        self.guards = guards(graph)  # per stage: the mask conditions its use is under
        self.integral = _integral(graph, self.backend.gate_forms) if self.backend.arrays else []
        # a program of elementwise stages on inputs of unknown shape
        self.unknown_elementwise = graph.elementwise and None in graph.shapes[: len(graph.inputs)]

    def operands(self, stage: Stage) -> tuple[str, ...]:
        return tuple(self.names.values[op] if isinstance(op, int) else op for op in stage.operands)

    # -- the forward pass ---------------------------------------------------
    def forward(self) -> list[Statement]:
        values, graph = self.names.values, self.graph
        statements = []
        for k, stage in enumerate(graph.stages):
            gate = REGISTRY[stage.gate]
            instance = gate.instance(len(stage.operands), stage.params)
            code, quiet, reads = instance.code[self.backend.gate_forms], False, stage.values()
            if self.guards[k] and not gate.mask:
                if self.backend.guarded == "select":  # not computed where no branch takes it
                    code, reads = self._guarded(code, k), (*reads, *self._conditions(k))
                quiet = self.backend.guarded == "quiet"
            statements.append(
                Statement(
                    "stage",
                    values[stage.out],
                    code,
                    self.operands(stage),
                    quiet=quiet,
                    number=k + 1,
                    reads=tuple(values[op] for op in reads),
                    alias=self._viewed(instance.code[self.backend.gate_forms], stage),
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
        guarded = line.kind == "scale" and self.guards[line.stage]
        form, op = self._form(stage, line, unit)
        alias = self._viewed(form, stage, names.adjoints[upstream])
        read = [names.values[v] for v in reads(stage, line_rule(stage, line))]
        read += [names.values[c] for c in self._conditions(line.stage)] if guarded else []
        read += [] if unit else [names.adjoints[upstream]]
        read += [names.values[target]] if line.reduce is None else []
        operands = self.operands(stage)
        constant = operands[form.index] if isinstance(form, Slot) else None
        if unit and isinstance(constant, Num) and type(constant.value) is int and not constant.name:
            # dx = 3 from f = 3 * x: the gradient is a float (3.0), whatever the constant
            operands = tuple(Num(float(op.value)) if i == form.index else op for i, op in enumerate(operands))
        common = dict(
            operands=operands,
            out=names.values[stage.out],
            dout=names.adjoints[upstream],
            like=names.values[target],
            number=line.stage + 1,
            note=f"; {gate.convention}" if gate.convention else "",
            floats=self.floats,
            array=graph.shape(target) != (),
            block=("backprop", line.stage),
        )
        common["quiet"] = bool(guarded) and self.backend.guarded == "quiet"
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

    def scatter(self, line: Line, unit_dout: bool) -> list[Statement]:
        """A subscript's adjoint line, its rule ``scatter(a[index], dout)``."""
        graph, names = self.graph, self.names
        stage = graph.stages[line.stage]
        upstream = self.backward.upstream(graph, line)
        unit = unit_dout and upstream in graph.outputs
        at, _ = line_rule(stage, line).args
        fresh = not line.accumulate
        own = self.in_place.get(line.target, False)
        self.in_place[line.target] = True
        read = [] if unit else [names.adjoints[upstream]]
        value = Num(1.0) if unit else DOUT
        target = names.adjoints[line.target]
        return self._scattered(
            line.stage, at, value, target, fresh, own, read, self.operands(stage), names.adjoints[upstream]
        )

    def _scattered(self, k: int, at, value, target: str, fresh: bool, own: bool, read, filled, dout: str):
        """Statements adding `value` into `target` at the index of `at` (a
        `Subscript` of operand 0): `target` made zeros first where `fresh`, a copy of
        its own where it is not `own` (another name's array), then the value added
        in place (``da[:, 1:3] += dv``, NumPy's ``add.at`` where an index array may
        pick an element twice), as the backend writes it (`Backend.scatter`)."""
        names, stage = self.names, self.graph.stages[k]
        common = dict(number=k + 1, block=("backprop", k), like=target)
        statements = []
        if fresh:
            zero = self.backend.zero(Slot(0), False)
            statements.append(
                Statement(
                    "contribution",
                    target,
                    zero,
                    filled,
                    reads=(names.values[stage.operands[0]],),
                    **common,
                )
            )
        elif not own:
            statements.append(
                Statement("contribution", target, self.backend.copy(LIKE), reads=(target,), **common)
            )
        values = [names.values[op] for op in stage.values()]
        statements.append(
            Statement(
                "scatter",
                target,
                value,
                filled,
                index=self.backend.scatter(at, LIKE),
                reads=(*values, *read, target),
                alias=target,
                dout=dout,
                **common,
            )
        )
        return statements

    def _form(self, stage: Stage, line: Line, unit: bool) -> tuple[Expr, str]:
        """The contribution's form (shared by lines of the same shape) and its operator."""
        op = (
            "-="
            if line.kind == "negate" and line.accumulate and not unit
            else ("+=" if line.accumulate else "=")
        )
        guard = self.guards[line.stage] if line.kind == "scale" else ()
        key = (stage.gate, len(stage.operands), stage.params, line.operand, line.kind, unit, line.reduce, op)
        key += _variant(stage, line)
        integral = self._integral_leaves(stage) if unit and self.backend.arrays else frozenset()
        key += (guard, integral)
        if key not in self.forms:
            rule = line_rule(stage, line)
            seed = self.backward.style == "seed"
            if line.kind == "vjp":  # the rule is the whole contribution
                # a broadcast adjoint is the number itself: a float, whatever the inputs
                one = Num(1.0) if line.broadcast else Num(1)
                form = substitute(rule, {DOUT: one}) if unit else rule
                if unit and not isinstance(form, (Call, Num)):  # dot's dout * b: an operand, maybe of ints
                    form = Call("mul", (form, Num(1.0)))
            elif unit:
                # dout is the literal 1.0 here; the gradient must still be a float
                if _floating(rule, self.floats, integral):
                    form = rule
                elif isinstance(rule, Num):
                    form = Num(float(rule.value))
                else:
                    form = Call("mul", (rule, Num(1.0)))
            elif _selects(rule):  # where's line: dout where its branch is taken, else 0.0 (never 0 * dout)
                form = _selected(rule, DOUT)
            elif seed:
                form = Call("mul", (Call("paren", (rule,)), DOUT))
            elif line.kind == "copy" or (line.kind == "negate" and line.accumulate):
                form = DOUT
            elif line.kind == "negate":
                form = Call("neg", (DOUT,))
            else:
                form = Call("mul", (rule, DOUT))
            if guard:  # masked in the stage's shape, then summed to the operand's
                form = self._guarded(form, line.stage)
            if line.reduce is None:
                form = self.backend.unbroadcast(form, LIKE)
            elif line.reduce:
                form = self.backend.summed(form, line.reduce)
            self.forms[key] = form
        return self.forms[key], op

    def _integral_leaves(self, stage: Stage) -> frozenset:
        """The leaves of the stage's rules that may hold integers (integer arrays given
        for its inputs): its operands and output that `_integral` says may."""
        leaves = {Slot(i) for i, op in enumerate(stage.operands) if isinstance(op, int) and self.integral[op]}
        return frozenset(leaves | ({OUT} if self.integral[stage.out] else set()))

    def _guards_value(self, k: int) -> bool:
        return bool(self.guards[k]) and not REGISTRY[self.graph.stages[k].gate].mask

    def _shared(self) -> tuple[str, ...]:
        """The stages a branch of a where reads that are not guarded by it."""
        graph, found = self.graph, {}  # stage index -> "name (k)"
        for stage in graph.stages:
            gate = REGISTRY[stage.gate]
            if gate.branches is None:
                continue
            for i in gate.branches:
                op = stage.operands[i]
                if isinstance(op, int) and op >= len(graph.inputs):
                    k = op - len(graph.inputs)
                    if not self.guards[k]:
                        found[k] = f"{self.names.values[op]} ({k + 1})"
        return tuple(found[k] for k in sorted(found))

    def _conditions(self, k: int) -> tuple[int, ...]:
        """The masks stage k's guard reads."""
        return tuple(dict.fromkeys(c for term in self.guards[k] for c, _ in term))

    def _guarded(self, form: Expr, k: int) -> Expr:
        """`form` where stage k's conditions hold, else 0.0 (`differentiate.guards`): a
        value or gradient of the branch a where does not take is never computed
        into (a Python conditional) or never read (``np.where``, not ``0 * nan``)."""
        guard = self.guards[k]
        key = ("guarded", id(form), guard)
        if key not in self.forms:
            terms = []
            for term in guard:
                held = [Ref(self.names.values[c]) for c, holds in term if holds]
                failed = [Ref(self.names.values[c]) for c, holds in term if not holds]
                terms.append((held, failed))
            if len(terms) == 1 and not terms[0][0]:  # only negated conditions: 0.0 where any holds
                guarded = Select(_joined("logical_or", terms[0][1]), Num(0.0), form, True)
            else:
                cond = _joined(
                    "logical_or",
                    [
                        _joined("logical_and", held + [Call("logical_not", (c,)) for c in failed])
                        for held, failed in terms
                    ],
                )
                guarded = Select(cond, form, Num(0.0), True)
            self.forms[key] = (form, guarded)  # the form held: its id stays unique
        return self.forms[key][1]

    def _viewed(self, form: Expr, stage: Stage, dout: str = "") -> str:
        """The name whose array `form` is, or a view of (``dx = dxpy``, ``WT = W.T``); "" for a new array."""
        while (isinstance(form, Call) and form.fn in _VIEWS) or _basic(form):
            form = form.value if isinstance(form, Subscript) else form.args[0]
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

    def reverse(self, unit_dout: bool, after=None) -> list[Statement]:
        """backward's statements; `after(line)`: statements to follow each line's (its tangent)."""
        graph, names, backward = self.graph, self.names, self.backward
        statements, current = [], None
        for line in backward.lines:
            if line.stage != current:
                current = line.stage
                statements.append(self.display(current))
            if _scatters(line_rule(graph.stages[line.stage], line)):
                statements += self.scatter(line, unit_dout)
            else:
                statements.append(self.contribution(line, unit_dout))
            if after is not None:
                statements += after(line)
        for k in backward.unbroadcast:
            if k in backward.wrt and k not in backward.zero:
                statements.append(self._to_input_shape(k, names.adjoints[k]))
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

    # -- forward mode -------------------------------------------------------
    def carriers(self, sources) -> list[bool]:
        """Which values carry a tangent from the inputs `sources`: those that depend on one."""
        return carriers(self.graph, sources)

    def tangent(self, k: int, carries: list[bool]) -> Statement | None:
        """Stage k's tangent: its local gradients times its operands' tangents,
        summed (``tsigy = ((1 - sigy) * sigy) * ty  # (1)``); None where no
        operand carries one."""
        graph, names = self.graph, self.names
        stage = graph.stages[k]
        gate = REGISTRY[stage.gate]
        carried = [i for i, op in enumerate(stage.operands) if flows(stage, i) and carries[op]]
        if not carried:
            return None
        n = len(stage.operands)
        seed = self.backward.style == "seed"
        key = ("tangent", stage.gate, n, stage.params, tuple(carried), seed)
        if key not in self.forms and gate.structural:  # its own rule, linear in each operand's tangent
            rules = gate.instance(n, stage.params).tangent
            form = None
            for position, i in enumerate(carried):
                term = substitute(rules[i], {TANGENT: Slot(n + position)})
                form = term if form is None else Call("add", (form, term))
            self.forms[key] = form
        if key not in self.forms:
            form = None
            for position, i in enumerate(carried):
                rule, t = local(stage, i), Slot(n + position)
                minus = False
                if _selects(rule):  # where: the taken branch's tangent, else 0.0
                    term = _selected(rule, t)
                elif seed:
                    term = Call("mul", (Call("paren", (rule,)), t))
                elif rule == Num(1):
                    term = t
                elif rule == Num(-1):
                    term, minus = t, True
                else:
                    term = Call("mul", (rule, t))
                if form is None:
                    form = Call("neg", (term,)) if minus else term
                else:
                    form = Call("sub" if minus else "add", (form, term))
            self.forms[key] = form
        form, conditions = self.forms[key], ()
        if self.guards[k] and not gate.structural:
            form, conditions = self._guarded(form, k), self._conditions(k)
        tangents = tuple(names.tangents[stage.operands[i]] for i in carried)
        alias = tangents[0] if isinstance(form, Slot) else ""
        if alias and self.backend.arrays and stage.out in graph.outputs:
            form, alias = self._copied(form), ""  # a returned tangent owns its array
        return Statement(
            "tangent",
            names.tangents[stage.out],
            form,
            (*self.operands(stage), *tangents),
            quiet=bool(conditions) and self.backend.guarded == "quiet",
            out=names.values[stage.out],
            number=k + 1,
            floats=self.floats,
            reads=(
                *_read(form, (*self.operands(stage), *tangents), names.values[stage.out]),
                *(names.values[c] for c in conditions),
            ),
            alias=alias,
            array=graph.shape(stage.out) != (),
            block=("forward", k),
        )

    def forward_sweep(self, carries: list[bool]) -> list[Statement]:
        """The tangent lines of the stages that carry one, in stage order."""
        found = (self.tangent(k, carries) for k in range(len(self.graph.stages)))
        return [t for t in found if t is not None]

    def zero_tangents(self, carries: list[bool]) -> list[Statement]:
        """The tangents of the outputs no tangent reaches: zeros of their shape."""
        graph, names = self.graph, self.names
        return [
            Statement(
                "zero",
                names.tangents[o],
                self.backend.zero(Ref(names.values[o]), graph.shape(o) == ()),
                note=f"{names.values[o]} does not depend on the inputs differentiated",
                reads=(names.values[o],),
            )
            for o in graph.outputs
            if not carries[o]
        ]

    def jvp(self) -> Function:
        graph, names = self.graph, self.names
        carries = self.carriers(set(self.backward.wrt))
        tangents = {k: self.tangent(k, carries) for k in range(len(graph.stages))}
        body = []
        for k, statement in enumerate(self.forward()):
            body.append(statement)
            if tangents[k] is not None:
                body.append(tangents[k])
        body += self.zero_tangents(carries)
        if self.backend.arrays:
            body += self._widened(carries)
        outs = tuple(names.values[o] for o in graph.outputs)
        touts = tuple(names.tangents[o] for o in graph.outputs)
        lines = sum(1 for t in tangents.values() if t is not None)
        if self.backend.release:
            body = _released(body, {*outs, *touts})
        return Function(
            "jvp",
            (*(i.name for i in graph.inputs), *(names.tangents[k] for k in self.backward.wrt)),
            tuple(body),
            (_one(outs), _one(touts)),
            f"jvp: {_count(len(graph.stages), 'forward stage')}, {_count(lines, 'tangent line')}",
        )

    def _widened(self, carries: list[bool]) -> list[Statement]:
        """Arrays: an output's tangent given its output's shape where it may be
        smaller (f = x + W with a tangent for x alone: tf = tx broadcasts)."""
        graph, names = self.graph, self.names
        full = [True] * len(graph.inputs)  # the tangent has its value's whole shape
        for stage in graph.stages:
            covered = set()
            for i, op in enumerate(stage.operands):
                if flows(stage, i) and carries[op] and full[op]:
                    covered.add(op)
                    if not REGISTRY[stage.gate].structural:
                        covered.update(reads(stage, local(stage, i)))
            structural = REGISTRY[stage.gate].structural
            full.append(structural or stage.out in covered or all(op in covered for op in stage.values()))
        statements = []
        for o in graph.outputs:
            if carries[o] and not full[o] and graph.shape(o) != ():
                tangent = names.tangents[o]
                statements.append(
                    Statement(
                        "tangent",
                        tangent,
                        Call("add", (Slot(0), self.backend.zero(OUT, False))),
                        (tangent,),
                        out=names.values[o],
                        note=f"{names.values[o]}'s shape",
                        reads=(tangent, names.values[o]),
                    )
                )
        return statements

    # -- second order: forward over reverse -------------------------------------
    def _second_order(self, function: str) -> None:
        """hvp and hessian need one scalar output; hessian the math backend."""
        graph = self.graph
        if len(graph.outputs) > 1:
            raise UsageError(
                f"{function} needs one scalar output; this program has {len(graph.outputs)} outputs",
                hint="differentiate a scalar of them (a sum, a norm), or ask for --with jacobian",
            )
        out = self.names.values[graph.output]
        if graph.shape(graph.output) != ():
            raise UsageError(
                f"{function} needs one scalar output; {out} is an array"
                + (" (of the inputs' shape: the program is elementwise)" if graph.elementwise else ""),
                hint=f"differentiate a scalar of it, e.g. sum({out}), or ask for --with jacobian",
            )
        if function == "hessian" and self.backend.arrays:
            raise UsageError(
                "hessian is emitted for the math backend",
                hint="generate it with --backend math (the default), or ask for --with hvp",
            )

    def adjoint_tangent(self, line: Line, unit: bool, carries: list[bool], made: set) -> list[Statement]:
        """The tangent of a backward line ``dv += L * dw  # (k)``: ``tdv += (dL) * dw + (L) * tdw  # (k)``,
        dL the derivative of the local rule L along the tangents of its operands and of its
        output (`expr.diff` of the rule itself); of a structural gate's line, the derivative
        of its vector-Jacobian product (`expr.push`). Arrays: summed to the adjoint's shape as
        the line is. `made`: the adjoints whose tangents exist so far."""
        graph, names = self.graph, self.names
        stage = graph.stages[line.stage]
        n = len(stage.operands)
        rule = line_rule(stage, line)
        upstream = self.backward.upstream(graph, line)
        carried = [i for i, op in enumerate(stage.operands) if flows(stage, i) and carries[op]]
        out_carried = carries[stage.out]
        upstream_tangent = upstream in made  # the output's own adjoint (1.0) has none
        unit_here = unit and upstream in graph.outputs
        seed = self.backward.style == "seed"
        key = ("adjoint tangent", stage.gate, n, stage.params, line.operand, tuple(carried), out_carried)
        key += _variant(stage, line)
        guard = self.guards[line.stage] if line.kind != "vjp" else ()
        key += (upstream_tangent, unit_here, seed, line.kind, line.reduce, guard)
        if key not in self.forms:
            if line.kind == "vjp":
                tangents = {Slot(i): Slot(n + position) for position, i in enumerate(carried)}
                if out_carried:
                    tangents[OUT] = Slot(n + len(carried))
                if upstream_tangent:
                    tangents[DOUT] = Slot(n + len(carried) + 1)
                value = substitute(rule, {DOUT: Num(1)}) if unit_here else rule
                try:
                    form = push(value, tangents, DERIVATIVES)
                except ValueError as exc:  # a vector-Jacobian product with no derivative
                    raise UsageError(
                        f"hvp needs the derivative of {stage.gate}'s vector-Jacobian product, "
                        f"which stagegen does not have ({exc})",
                        hint="ask for --with jvp or jacobian, or write the product out",
                    ) from None
                form = None if form == Num(0) else form
            else:
                form = self._scaled_tangent(rule, n, carried, out_carried, upstream_tangent, unit_here, seed)
            if form is not None and guard:  # masked in the stage's shape, then summed
                form = self._guarded(form, line.stage)
            if form is not None and line.reduce is None:
                form = self.backend.unbroadcast(form, LIKE)
            elif form is not None and line.reduce:
                form = self.backend.summed(form, line.reduce)
            self.forms[key] = form
        form = self.forms[key]
        if form is None:
            return []
        conditions = self._conditions(line.stage) if guard else ()
        target = line.target
        tangents = [names.tangents[stage.operands[i]] for i in carried]
        tangents.append(names.tangents[stage.out] if out_carried else "")
        tangents.append(names.adjoint_tangents.get(upstream, ""))
        op = "+=" if target in made else "="
        made.add(target)
        gate = REGISTRY[stage.gate]
        filled = (*self.operands(stage), *tangents)
        if _scatters(form):  # a subscript's: into zeros, or a copy (tangents are never updated in place)
            at, value = form.args
            read = [t for t in tangents if t]
            tangent = names.adjoint_tangents[target]
            return self._scattered(
                line.stage, at, value, tangent, op == "=", False, read, filled, names.adjoints[upstream]
            )
        read = _read(form, filled, names.values[stage.out], names.adjoints[upstream], names.values[target])
        read += [names.adjoint_tangents[target]] if op == "+=" else []
        read += [names.values[c] for c in conditions]
        arrays = self.backend.arrays  # += as a new array: never into an array another name holds
        return [
            Statement(
                "tangent",
                names.adjoint_tangents[target],
                form,
                filled,
                quiet=bool(conditions) and self.backend.guarded == "quiet",
                out=names.values[stage.out],
                dout=names.adjoints[upstream],
                like=names.values[target],
                op="=" if arrays else op,
                add="+" if arrays and op == "+=" else "",
                number=line.stage + 1,
                note=f"; {gate.convention}" if gate.convention else "",
                floats=self.floats,
                reads=tuple(read),
                array=graph.shape(target) != (),
                block=("backprop", line.stage),
            )
        ]

    @staticmethod
    def _scaled_tangent(rule, n, carried, out_carried, upstream_tangent, unit_here, seed) -> Expr | None:
        """``(dL) * dw + (L) * tdw`` for a line ``L * dw`` (see `adjoint_tangent`)."""
        slope = Num(0)  # dL along the tangents
        for position, i in enumerate(carried):
            slope = add(slope, mul(diff(rule, Slot(i), DERIVATIVES), Slot(n + position)))
        if out_carried:
            slope = add(slope, mul(diff(rule, OUT, DERIVATIVES), Slot(n + len(carried))))
        terms = []
        if slope != Num(0):
            dout = Num(1.0) if unit_here else DOUT
            terms.append(Call("mul", (Call("paren", (slope,)), dout)) if seed else mul(slope, dout))
        if upstream_tangent:
            tangent = Slot(n + len(carried) + 1)
            if _selects(rule):  # where: the taken branch's adjoint tangent, else 0.0
                terms.append(_selected(rule, tangent))
            else:
                terms.append(Call("mul", (Call("paren", (rule,)), tangent)) if seed else mul(rule, tangent))
        form = None
        for term in terms:
            form = term if form is None else Call("add", (form, term))
        return form

    def _reverse_with_tangents(self, carries: list[bool], gradients: bool) -> tuple[list[Statement], set]:
        """The backward lines (`gradients`), or only their tangents, each after the line it
        differentiates; and the adjoints that got a tangent."""
        made: set = set()
        unit = self.unit_dout()
        statements = []
        if gradients and not unit:
            out = self.names.values[self.graph.output]
            statements.append(
                Statement("seed", self.names.dout, self.backend.seed(Ref(out), True), array=False)
            )
        if gradients:
            statements += self.reverse(
                unit, after=lambda line: self.adjoint_tangent(line, unit, carries, made)
            )
        else:
            for line in self.backward.lines:
                statements += self.adjoint_tangent(line, unit, carries, made)
        return statements, made

    def _zero_hv(self, made: set) -> list[Statement]:
        """The tangents of the gradients no tangent reached: zeros; and those of inputs
        of a shape only run time knows, summed to it (as their gradients are)."""
        graph, names, backward = self.graph, self.names, self.backward
        statements = [
            Statement(
                "zero",
                names.adjoint_tangents[k],
                self.backend.zero(Ref(graph.inputs[k].name), graph.shape(k) == ()),
                note="constant along the tangents",
                reads=(graph.inputs[k].name,),
                array=graph.shape(k) != (),
            )
            for k in backward.wrt
            if k not in made
        ]
        statements += [
            self._to_input_shape(k, names.adjoint_tangents[k]) for k in backward.unbroadcast if k in made
        ]
        return statements

    def _to_input_shape(self, k: int, name: str) -> Statement:
        """`name` (input k's gradient, or its tangent) summed to input k's shape, known at run time only."""
        value = self.graph.inputs[k].name
        return Statement(
            "unbroadcast",
            name,
            self.backend.unbroadcast(DOUT, LIKE),
            dout=name,
            like=value,
            note=f"to {value}'s shape",
            reads=(name, value),
        )

    def hvp(self) -> Function:
        """hvp(*inputs, *v) -> (value, grads, hv): the forward stages with their
        tangents along v, then the backward lines, each followed by its tangent."""
        self._second_order("hvp")
        graph, names, backward = self.graph, self.names, self.backward
        carries = self.carriers(set(backward.wrt))
        body = []
        for k, statement in enumerate(self.forward()):
            body.append(statement)
            tangent = self.tangent(k, carries)
            if tangent is not None:
                body.append(tangent)
        back, made = self._reverse_with_tangents(carries, gradients=True)
        body += back + self._zero_hv(made)
        grads = tuple(names.adjoints[k] for k in backward.wrt)
        hv = tuple(names.adjoint_tangents[k] for k in backward.wrt)
        body = _live(body, {names.values[graph.output], *grads, *hv})
        lines = sum(1 for s in body if s.kind == "tangent")
        if self.backend.release:
            body = _released(body, {names.values[graph.output], *grads, *hv})
        return Function(
            "hvp",
            (*(i.name for i in graph.inputs), *(names.tangents[k] for k in backward.wrt)),
            tuple(body),
            (names.values[graph.output], grads, hv),
            f"hvp: {_count(len(graph.stages), 'forward stage')} and "
            f"{_count(len(backward.lines), 'backward line')}, {_count(lines, 'tangent line')}",
        )

    def hessian(self) -> Function:
        """hessian(*inputs) -> (value, grads, H): the forward stages and the backward
        lines once, then per input the tangents of both along that input: a column of H."""
        self._second_order("hessian")
        graph, names, backward = self.graph, self.names, self.backward
        body = list(self.forward())
        back, _ = self._reverse_with_tangents(
            [False] * (len(graph.inputs) + len(graph.stages)), gradients=True
        )
        body += back
        entries = {(i, j): names.hessian[(i, j)] for i in backward.wrt for j in backward.wrt}
        for j in backward.wrt:
            carries = self.carriers({j})
            name = graph.inputs[j].name
            body.append(Statement("sweep", note=f"d/d{name} of the gradient: the tangents of {name}"))
            body.append(Statement("seed", names.tangents[j], self.backend.seed(Ref(name), True), array=False))
            body += self.forward_sweep(carries)
            tangents, made = self._reverse_with_tangents(carries, gradients=False)
            body += tangents + self._zero_hv(made)
            body += [_entry(entries[(i, j)], names.adjoint_tangents[i]) for i in backward.wrt]
        grads = tuple(names.adjoints[k] for k in backward.wrt)
        H = tuple(tuple(entries[(i, j)] for j in backward.wrt) for i in backward.wrt)
        body = _live(body, {names.values[graph.output], *grads, *entries.values()})
        n_wrt = len(backward.wrt)
        return Function(
            "hessian",
            tuple(i.name for i in graph.inputs),
            tuple(body),
            (names.values[graph.output], grads, H),
            f"hessian: {_count(len(graph.stages), 'forward stage')}, "
            f"{_count(len(backward.lines), 'backward line')}, "
            f"then {_count(n_wrt, 'sweep')} of tangents (one per input, "
            f"{_count(sum(1 for s in body if s.kind == 'tangent'), 'tangent line')})",
        )

    # -- the Jacobian ----------------------------------------------------------
    def jacobian(self) -> Function:
        """value_and_jacobian: one forward pass, then a reverse sweep per output
        (pruned to what it reaches) or a forward sweep per input, whichever has
        fewer lines; of arrays, backward once per element of each output."""
        graph, names, backward = self.graph, self.names, self.backward
        outs = tuple(names.values[o] for o in graph.outputs)
        entries = tuple(tuple(names.jacobian[(o, k)] for k in backward.wrt) for o in graph.outputs)
        parameters = tuple(i.name for i in graph.inputs)
        if self.backend.arrays:
            return self._jacobian_of_arrays(outs, entries, parameters)
        n = len(graph.inputs)
        reverse = [
            differentiate(dataclasses.replace(graph, outputs=(o,)), backward.wrt, backward.style)
            for o in graph.outputs
        ]
        n_reverse = sum(len(b.lines) for b in reverse)
        n_forward = sum(sum(self.carriers({k})[n:]) for k in backward.wrt)  # a line per stage reached
        body = list(self.forward())
        if n_forward < n_reverse:
            for j, k in enumerate(backward.wrt):
                body += self._forward_sweep_of(k, [row[j] for row in entries])
            cost = _count(len(backward.wrt), "forward sweep") + " (one per input), "
            cost += _count(n_forward, "tangent line")
        else:
            for o, sweep, row in zip(graph.outputs, reverse, entries, strict=True):
                body += self._reverse_sweep_of(o, sweep, row)
            cost = _count(len(graph.outputs), "reverse sweep") + " (one per output), "
            cost += _count(n_reverse, "backward line")
        return Function(
            "value_and_jacobian",
            parameters,
            tuple(body),
            (_one(outs), entries),
            f"value_and_jacobian: {_count(len(graph.stages), 'forward stage')}, then {cost}",
        )

    def jacobian_diag(self) -> Function:
        """value_and_jacobian_diag: an elementwise program's Jacobian is diagonal
        (element i of an output reads element i of each input): its diagonal, per
        output and input, an array of the output's shape, by a forward sweep per
        input seeded with 1.0 (broadcast)."""
        graph, names, backward = self.graph, self.names, self.backward
        if not graph.elementwise:
            raise UsageError(
                "jacobian_diag is for elementwise programs (no matrix, vector or reduction): "
                "here an output element reads more than one element of an input",
                hint="ask for the whole Jacobian, --with jacobian",
            )
        outs = tuple(names.values[o] for o in graph.outputs)
        entries = tuple(tuple(names.jacobian[(o, k)] for k in backward.wrt) for o in graph.outputs)
        body = list(self.forward())
        lines = 0
        for j, k in enumerate(backward.wrt):
            sweep = self._forward_sweep_of(k, [row[j] for row in entries])
            if self.backend.arrays:  # each entry of its output's shape
                carries = self.carriers({k})
                at = next(i for i, s in enumerate(sweep) if s.kind == "entry")
                sweep[at:at] = self._widened(carries)
            lines += sum(1 for s in sweep if s.kind == "tangent")
            body += sweep
        if self.backend.release:
            body = _released(body, {*outs, *(e for row in entries for e in row)})
        return Function(
            "value_and_jacobian_diag",
            tuple(i.name for i in graph.inputs),
            tuple(body),
            (_one(outs), entries),
            f"value_and_jacobian_diag: {_count(len(graph.stages), 'forward stage')}, then "
            f"{_count(len(backward.wrt), 'forward sweep')} (one per input), {_count(lines, 'tangent line')}",
        )

    def _forward_sweep_of(self, k: int, column: list[str]) -> list[Statement]:
        """The tangents of input k (seeded with 1.0), into the Jacobian's column `column`."""
        graph, names = self.graph, self.names
        carries, name = self.carriers({k}), graph.inputs[k].name
        outs = ", ".join(names.values[o] for o in graph.outputs)
        return [
            Statement("sweep", note=f"d({outs})/d{name}: the tangents of {name}"),
            Statement(  # of the input's shape: each tangent then has its value's
                "seed",
                names.tangents[k],
                self.backend.seed(Ref(name), graph.shape(k) == ()),
                reads=(name,),
                array=graph.shape(k) != (),
            ),
            *self.forward_sweep(carries),
            *self.zero_tangents(carries),
            *(_entry(entry, names.tangents[o]) for entry, o in zip(column, graph.outputs, strict=True)),
        ]

    def _reverse_sweep_of(self, o: int, sweep: Backward, row: tuple[str, ...]) -> list[Statement]:
        """The backprop of output o alone (`sweep`), into the Jacobian's row `row`."""
        graph, names = self.graph, self.names
        planner = _Planner(dataclasses.replace(graph, outputs=(o,)), sweep, names, self.options)
        wrt = ", ".join(graph.inputs[k].name for k in sweep.wrt)
        out = names.values[o]
        statements = [Statement("sweep", note=f"d{out}/d({wrt}): its backprop")]
        unit = planner.unit_dout()  # compact: dout = 1.0 folded into the lines
        if not unit:
            statements.append(
                Statement("seed", names.adjoints[o], self.backend.seed(Ref(out), True), array=False)
            )
        statements += planner.reverse(unit_dout=unit)
        statements += [_entry(entry, names.adjoints[k]) for entry, k in zip(row, sweep.wrt, strict=True)]
        return statements

    def _jacobian_of_arrays(self, outs, entries, parameters) -> Function:
        """Arrays: the forward stages, then per output a loop over its elements,
        each a reverse sweep (pruned to what the output reaches) seeded with one
        at that element, its gradients put into the entries: entry (i, j) has
        shape out_i.shape + wrt_j.shape, a rank over 4 refused where the shapes
        are known now."""
        graph, names, backward = self.graph, self.names, self.backward
        for o, out in zip(graph.outputs, outs, strict=True):
            for k in backward.wrt:
                shape = (graph.shape(o), graph.shape(k))
                if None in shape:  # known at run time only: np.shape reads it there
                    continue
                if len(shape[0]) + len(shape[1]) > 4:
                    raise UsageError(
                        f"d{out}/d{graph.inputs[k].name} would have rank {len(shape[0]) + len(shape[1])} "
                        "(the limit is 4)",
                        hint=f"ask for the gradients of a reduction of {out} instead (sum, mean)",
                    )
        body = list(self.forward())
        n_lines = 0
        for o, out, row in zip(graph.outputs, outs, entries, strict=True):
            sweep = differentiate(dataclasses.replace(graph, outputs=(o,)), backward.wrt, backward.style)
            planner = _Planner(dataclasses.replace(graph, outputs=(o,)), sweep, names, self.options)
            wrt = [graph.inputs[k].name for k in backward.wrt]
            seed = names.adjoints[o]
            body.append(
                Statement("sweep", note=f"d{out}/d({', '.join(wrt)}): its backprop, element by element")
            )
            body += [
                Statement("alloc", entry, out=out, like=name) for entry, name in zip(row, wrt, strict=True)
            ]
            body.append(Statement("loop", names.index, out=out))
            inner = [
                Statement("zero", seed, self.backend.zero(Ref(out), False), reads=(out,)),
                Statement("onehot", seed, out=names.index),
                *planner.reverse(unit_dout=False),
                *(
                    Statement("put", entry, out=names.index, dout=names.adjoints[k])
                    for entry, k in zip(row, sweep.wrt, strict=True)
                ),
            ]
            for statement in inner:
                statement.depth = 1
            body += inner
            n_lines += len(sweep.lines)
        return Function(
            "value_and_jacobian",
            parameters,
            tuple(body),
            (_one(outs), entries),
            f"value_and_jacobian: {_count(len(graph.stages), 'forward stage')}, then for each output a "
            f"reverse sweep per element of it, pruned to what it reaches ({_count(n_lines, 'backward line')} "
            "in all)",
        )

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
        quiet = self.backend.quiet.format(m=names.module)
        functions = tuple(
            dataclasses.replace(f, body=tuple(_quieted(f.body, quiet)))
            for f in (getattr(self, f)() for f in self.options.with_)  # a method per FUNCTIONS name
        )
        forward_body, backward_body, fused_body = (
            _quieted(body, quiet) for body in (forward_body, backward_body, fused_body)
        )
        return Listing(
            backend=self.backend,
            module=names.module,
            dtype=names.dtype,
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
            indexes=tuple((graph.inputs[k].name, sizes) for k, sizes in index_bounds(graph).items()),
            output_adjoints=() if len(outs) == 1 else tuple(names.adjoints[o] for o in graph.outputs),
            functions=functions,
            guarded=tuple(
                f"{names.values[s.out]} ({k + 1})"
                for k, s in enumerate(graph.stages)
                if self._guards_value(k)
            ),
            shared=self._shared(),
            index=names.index,
        )


def _read(form: Expr, filled: tuple, out: str, dout: str = "", like: str = "") -> list[str]:
    """The names a form filled with `filled` (its slots), `out`, `dout` and `like` reads."""
    found = list(nodes(form))
    used = sorted({n.index for n in found if isinstance(n, Slot)})
    names = [filled[i] for i in used if isinstance(filled[i], str)]
    names += [out] if OUT in found else []
    return names + ([dout] if dout and DOUT in found else []) + ([like] if like and LIKE in found else [])


def _live(statements: list[Statement], returned: set[str]) -> list[Statement]:
    """The statements without the tangent lines nothing reads (the tangent of
    an output that is not returned, or of a stage only such a line reads)."""
    needed, kept = set(returned), []
    for statement in reversed(statements):
        if statement.kind == "tangent" and statement.binds not in needed:
            continue
        if statement.binds and statement.op == "=":
            needed.discard(statement.binds)
        needed.update(statement.reads)
        kept.append(statement)
    return kept[::-1]


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _one(names: tuple[str, ...]):
    """A result of one output as itself, of several as a tuple."""
    return names[0] if len(names) == 1 else names


def _entry(name: str, value: str) -> Statement:
    """A Jacobian entry: the value a sweep left in `value`."""
    return Statement("entry", name, Slot(0), (value,), reads=(value,), array=False)


def _variant(stage: Stage, line: Line) -> tuple:
    """What a line's rule depends on beyond its gate instance and operand: whether
    it broadcasts (`Line.broadcast`); for an operand written several times, how
    often, and which operands are one value."""
    if line.repeat == 1:
        return (line.broadcast,)
    pattern = tuple(stage.operands.index(op) if isinstance(op, int) else -1 for op in stage.operands)
    return (line.broadcast, line.repeat, pattern)


def _joined(fn: str, masks: list[Expr]) -> Expr:
    """Masks joined left to right with logical_and or logical_or."""
    joined = masks[0]
    for mask in masks[1:]:
        joined = Call(fn, (joined, mask))
    return joined


def _selects(rule: Expr) -> bool:
    """A local gradient that is 1.0 where a mask holds and 0.0 elsewhere (or the
    reverse): where's, written as a selection of the adjoint."""
    return isinstance(rule, Select) and rule.each and {rule.a, rule.b} == {Num(1.0), Num(0.0)}


def _selected(rule: Select, value: Expr) -> Select:
    """`rule` (1.0 where a mask holds, else 0.0, or the reverse) times `value`, as a
    selection: `value` where the rule is 1.0, else 0.0."""
    return Select(rule.cond, *(value if v == Num(1.0) else Num(0.0) for v in (rule.a, rule.b)), True)


def _floating(rule: Expr, floats: bool, integral: frozenset = frozenset()) -> bool:
    """Whether a local gradient evaluates to a float by itself: a comparison
    such as (x > 0) is a bool, sign(x) and integer literals are ints (unless
    written as floats). On arrays, `integral`: the rule's leaves that may hold
    integer arrays (`_integral`); a rule of those and integers that only adds
    and multiplies them (``reg``, ``2 * W``) may be one too."""
    if isinstance(rule, Num):
        return floats or not isinstance(rule.value, int)
    if has(rule, lambda n: isinstance(n, Compare) or (isinstance(n, Call) and n.fn == "sign")):
        return False
    return not integral or not _keeps_integers(rule, integral)


# operations whose result is an integer array where their operands are
_INTEGRAL = frozenset(
    {
        *("add", "sub", "mul", "neg", "pow", "paren", "abs", "max", "min", "clip", "sign"),
        *("sum", "prod", "cumsum", "matmul", "outer", "dot"),
        *("transpose", "matrix_transpose", "swapaxes", "reversed_axes", "expand_dims"),
    }
)


def _keeps_integers(form: Expr, integral) -> bool:
    """Whether `form` may be an integer array: every operand or output it reads
    is in `integral` and every operation keeps integers integers (no float
    constant, no division)."""
    return not has(
        form,
        lambda n: (isinstance(n, Num) and not isinstance(n.value, int))
        or (isinstance(n, Call) and n.fn not in _INTEGRAL)
        or isinstance(n, (Compare, Select))
        or ((isinstance(n, Slot) or n == OUT) and n not in integral),
    )


def _integral(graph: Graph, forms: str) -> list[bool]:
    """Per value: whether it may be an integer array, the program given integer
    arrays (every input may be one): a stage whose emitted form keeps integers
    integers (`_keeps_integers`: sums, products, sum(), @) of one that may."""
    integral = [True] * len(graph.inputs)
    for stage in graph.stages:
        code = REGISTRY[stage.gate].instance(len(stage.operands), stage.params).code[forms]
        leaves = {Slot(i) for i, op in enumerate(stage.operands) if isinstance(op, int) and integral[op]}
        leaves |= {
            Slot(i) for i, op in enumerate(stage.operands) if isinstance(op, Num) and type(op.value) is int
        }
        integral.append(_keeps_integers(code, frozenset(leaves)))
    return integral


def _quieted(statements, header: str) -> list[Statement]:
    """Each run of quiet statements (with the releases between them) one block
    under `header` (``with np.errstate(all="ignore"):``); unchanged without one."""
    statements = list(statements)
    if not header or not any(s.quiet for s in statements):
        return statements
    kinds = [s.quiet for s in statements]
    for i, s in enumerate(statements):  # a release or comment between quiet statements stays inside
        if s.kind in ("release", "comment") and 0 < i < len(statements) - 1:
            kinds[i] = kinds[i - 1] and statements[i + 1].quiet
    out: list[Statement] = []
    for i, s in enumerate(statements):
        if kinds[i] and (i == 0 or not kinds[i - 1]):
            out.append(Statement("block", note=header, depth=s.depth))
        out.append(dataclasses.replace(s, depth=s.depth + 1) if kinds[i] else s)
    return out


def _basic(form) -> bool:
    """A subscript by integers and slices only: NumPy's basic indexing, a view
    (an index array's, a gather, is a copy)."""
    return isinstance(form, Subscript) and not any(isinstance(i, (Slot, Call)) for i in form.index)


def _scatters(rule) -> bool:
    """Whether an adjoint line's rule adds into zeros at an index (a subscript's)."""
    return isinstance(rule, Call) and rule.fn == "scatter"


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
            if holds.get(name) is not None:  # (its array may be released already: a name bound again)
                holders.get(holds[name], {}).pop(name, None)
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

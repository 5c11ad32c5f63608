"""SymPy -> stage DAG. The only pass that reads SymPy's structure.

Three steps per statement, each an explicit-stack traversal:

1. `decode` turns SymPy's encoding into gate applications (`Gate.function`
   trees): ``x - y`` arrives as ``Add(x, Mul(-1, y))``, ``x/y`` as
   ``Mul(x, Pow(y, -1))`` and n-ary sums and products come back re-sorted, so
   they are split left to right with positive terms first; a quotient becomes
   ``num * (1.0 / den)`` as in the backprop notes; ``x**(1/2)`` is sqrt, a
   negative constant power is the reciprocal of a power. Trees from the parser
   are already gate applications and keep their written order; only their
   ``/`` and ``**`` get the same treatment.
2. grouped gates (sigmoid, softplus) are recognised from their circuits
   (``--gates grouped``), or expanded into them (``--gates fine``); softmax and
   log_softmax are recognised from theirs (``--gates fine`` keeps a circuit as
   written, and a call of softmax as a call).
3. gate applications become stages; structurally equal applications are one
   stage, so every fork is explicit in the DAG. A statement's own stage is
   always new and carries the user's name.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import itertools
import math
from collections.abc import Callable
from fractions import Fraction
from types import MappingProxyType

import sympy as sp
from sympy.core.symbol import Str

from .backends import BACKENDS
from .errors import ShapeError, Span, UnsupportedError
from .expr import PI, Const, E, Num, parameter
from .gates import BY_FUNCTION, REGISTRY, Gate, slot
from .ir import Graph, Input, Stage
from .parse import NodeMap, Program
from .shapes import Shape, broadcast, text

_G = REGISTRY
VARIADIC_LIMIT = 4  # operands of one max or min stage; more are a chain of them

# SymPy's canonical forms that decoding turns into gate applications, each into
# the gate whose record lists it in `Gate.decodes`.
ENCODINGS = {
    "sum": "a positive term of a sum, added to the terms before it",
    "difference": "a negative term of a sum, subtracted from the terms before it",
    "negation": "a product with the coefficient -1, or a sum of negative terms only",
    "product": "a factor of a product, multiplied into the factors before it",
    "constant quotient": "a product with a constant denominator: a / c",
    "reciprocal": "x**-1, and a quotient's denominator: num * (1.0 / den), as the notes write it",
    "square root": "x**(1/2)",
    "constant power": "x**c for any other constant c (a negative c is the reciprocal of x**-c)",
    "power": "a**b for a b that is not constant",
    "natural exponential": "E**x",
    "renaming": "a statement whose value is a bare name: an output under a name of its own (f = x)",
}
_DECODE = MappingProxyType({encoding: g for g in REGISTRY.values() for encoding in g.decodes})
assert set(_DECODE) == set(ENCODINGS), "every encoding is some gate's (gates.py, Gate.decodes)"


def _app(encoding: str, *args) -> sp.Expr:
    return _DECODE[encoding].function(*args)


# SymPy hashes an undefined function class by its name and assumptions, which
# costs more than the rest of a lookup; the gate classes are single objects, so
# they are found by identity first.
_GATE_IDS = {id(f): g for f, g in BY_FUNCTION.items()}


def _gate_of(func) -> Gate | None:
    gate = _GATE_IDS.get(id(func))
    return gate if gate is not None else BY_FUNCTION.get(func)


def _leaf(e: sp.Expr) -> bool:
    """In a decoded tree: an input or stage name, or a constant."""
    return isinstance(e, sp.Symbol) or _gate_of(e.func) is None


def _const(e: sp.Expr) -> bool:
    """In a decoded tree: a constant (SymPy number or constant expression)."""
    return not isinstance(e, sp.Symbol) and _gate_of(e.func) is None


def _children(e: sp.Expr) -> list:
    return [] if _leaf(e) else list(e.args)


def _heads() -> dict[type, Gate]:
    """SymPy function classes that are one gate each (exp, sin, Abs, Max, ...)."""
    heads = {}
    for gate in _G.values():
        for arity in ((2, 3) if gate.variadic else (len(gate.operands),)):
            if gate.params:
                continue
            form = gate.instance(arity).forward
            if not isinstance(form, sp.Symbol) and form.args == tuple(slot(i) for i in range(arity)):
                if not isinstance(form, (sp.Add, sp.Mul, sp.Pow)):
                    heads[form.func] = gate
    return heads


_HEADS = _heads()


class _Walk:
    """Post-order evaluation over a DAG whose node rules may ask for new nodes.

    `deps(node)` lists the nodes whose results `combine(node, results)` needs; it
    is called once per node and may build new SymPy objects (kept alive here).
    """

    def __init__(self, deps: Callable, combine: Callable):
        self.deps, self.combine = deps, combine
        self.memo: dict[int, tuple[sp.Basic, object]] = {}

    def __call__(self, root):
        pending: dict[int, list] = {}
        stack = [root]
        while stack:
            node = stack[-1]
            key = id(node)
            if key in self.memo:
                stack.pop()
                continue
            if key not in pending:
                pending[key] = self.deps(node)
                stack.extend(d for d in reversed(pending[key]) if id(d) not in self.memo)
                continue
            deps = pending.pop(key)
            self.memo[key] = (node, self.combine(node, [self.memo[id(d)][1] for d in deps]))
            stack.pop()
        return self.memo[id(root)][1]


def brief(expr: sp.Basic, limit: int = 80) -> str:
    """`expr` as SymPy's str writes its head and arguments (``sin(Add(x, 1))``),
    cut after about `limit` characters, without recursion: a message about a
    deep tree stays short and is made at any depth."""
    parts, size, stack = [], 0, [expr]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            text = item
        elif not item.args:
            text = str(item)
        else:
            text = type(item).__name__ + "("
            stack.append(")")
            for k, arg in enumerate(reversed(item.args)):
                stack.extend([arg, ", "] if k < len(item.args) - 1 else [arg])
        parts.append(text)
        size += len(text)
    text = "".join(parts)
    return text if not stack and size <= limit else text[:limit] + "..."


# -- step 1: decode SymPy's encoding ---------------------------------------------


def _power(base: sp.Expr, exp: sp.Expr) -> sp.Expr:
    if not _const(exp):
        return _app("natural exponential", exp) if base is sp.E else _app("power", base, exp)
    if exp.is_negative:
        return _app("reciprocal", base if exp == -1 else _power(base, -exp))
    if exp == sp.S.Half or (isinstance(exp, sp.Float) and exp == 0.5):
        return _app("square root", base)
    return _app("constant power", base, exp)


def _divide(num: sp.Expr | None, den: sp.Expr, roles: NodeMap, span: Span | None = None) -> sp.Expr:
    if _const(den):
        if den.is_zero:
            raise UnsupportedError("division by zero", span, "a denominator here is the constant 0")
        return _app("constant quotient", num if num is not None else sp.Integer(1), den)
    # The notes name the parts of a quotient num, den and invden = 1.0 / den.
    roles.setdefault(den, "den")
    if num is None or (_const(num) and num.is_Number and float(num) == 1.0):
        return _app("reciprocal", den)
    roles.setdefault(num, "num")
    return _app("product", num, _app("reciprocal", den))


def _check_application(gate: Gate, node: sp.Expr, span: Span | None) -> None:
    """A gate's function applied as its record says: its operands, then its
    parameters as constants (a SymPy object can hold any arguments)."""
    n = gate.arity(len(node.args))
    if n < 1 or (n < 2 if gate.variadic else n != len(gate.operands)):
        wanted = "2 or more operands" if gate.variadic else f"{len(gate.operands)} operand(s)"
        params = f" and the parameter(s) {', '.join(gate.params)}" if gate.params else ""
        raise UnsupportedError(
            f"{gate.source or gate.name} takes {wanted}{params}; got {len(node.args)} argument(s) "
            f"(in {brief(node)})",
            span,
        )
    if not all(a.is_number or isinstance(a, Str) for a in node.args[n:]):
        raise UnsupportedError(
            f"the parameter(s) {', '.join(gate.params)} of {gate.source or gate.name} must be constants "
            f"(in {brief(node)})",
            span,
        )


def check_applications(expr: sp.Expr) -> None:
    """Every application of a gate's function in a SymPy object as its record
    says (`_check_application`), checked before the object is printed as source."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.func in BY_FUNCTION:
            _check_application(BY_FUNCTION[node.func], node, None)
        stack.extend(node.args)


def _chain(encoding: str, items: list[sp.Expr]) -> sp.Expr:
    acc = items[0]
    for item in items[1:]:
        acc = _app(encoding, acc, item)
    return acc


class _Decoder:
    def __init__(self, fine: bool, spans: NodeMap, roles: NodeMap):
        self.fine = fine
        self.spans = spans
        self.roles = roles  # tree node -> a name the node's role suggests
        self.walk = _Walk(self.deps, self.combine)
        self.plan: dict[int, tuple] = {}
        self.symbolic: dict[int, bool] = {}  # id(subtree) -> whether it holds a symbol

    def __call__(self, expr: sp.Expr) -> sp.Expr:
        # which subtrees hold a symbol, found once without recursion (SymPy's
        # is_number recurses through a deep tree)
        symbolic = _Walk(
            lambda n: [] if isinstance(n, sp.Symbol) else list(n.args),
            lambda n, kids: isinstance(n, sp.Symbol) or any(kids),
        )
        symbolic(expr)
        self.symbolic = {key: has for key, (_, has) in symbolic.memo.items()}
        return self.walk(expr)

    def is_number(self, e: sp.Expr) -> bool:
        has = self.symbolic.get(id(e))
        return e.is_number if has is None else not has

    def deps(self, node) -> list:
        if isinstance(node, (sp.Symbol, sp.Number, sp.NumberSymbol, Str)):
            plan = ("leaf",)
        elif isinstance(node, sp.Add):
            terms = list(node.args)
            # a nested (unevaluated) sum counts as positive: SymPy's test recurses through it
            neg = [not isinstance(t, sp.Add) and t.could_extract_minus_sign() for t in terms]
            if all(neg):
                plan = ("neg", [-node])
            else:
                order = sorted(range(len(terms)), key=lambda i: (neg[i], self.is_number(terms[i])))
                plan = (
                    "add",
                    [terms[i] if not neg[i] else -terms[i] for i in order],
                    [neg[i] for i in order],
                )
        elif isinstance(node, sp.Mul):
            coeff, rest = node.as_coeff_Mul()
            if coeff == -1:
                plan = ("neg", [rest])
            else:
                num, den = [], []
                if coeff != 1:
                    if isinstance(coeff, sp.Rational) and coeff.q != 1:
                        num += [sp.Integer(coeff.p)] if coeff.p != 1 else []
                        den.append(sp.Integer(coeff.q))
                    else:
                        num.append(coeff)
                for f in sp.Mul.make_args(rest):
                    if isinstance(f, sp.Pow) and f.exp.is_Number and f.exp.is_negative:
                        den.append(f.base if f.exp == -1 else sp.Pow(f.base, -f.exp))
                    else:
                        num.append(f)
                plan = ("mul", num + den, len(num))
        elif isinstance(node, sp.Pow):
            plan = ("pow", list(node.args))
        elif node.func in BY_FUNCTION:
            gate = BY_FUNCTION[node.func]
            _check_application(gate, node, self.spans.get(node))
            if self.fine and gate.grouped:
                # --gates fine: the gate's own circuit, as SymPy writes its meaning
                plan = ("same", [gate.meaning(*node.args)])
            else:
                plan = ("gate", list(node.args), gate)
        elif node.func in _HEADS:
            plan = ("gate", list(node.args), _HEADS[node.func])
        else:
            raise UnsupportedError(
                f"stagegen has no gate for {type(node).__name__} (in {brief(node)})",
                self.spans.get(node),
                "supported functions: " + ", ".join(sorted({g.source for g in _G.values() if g.source})),
            )
        self.plan[id(node)] = plan
        return plan[1] if len(plan) > 1 else []

    def combine(self, node, args: list) -> sp.Expr:
        plan = self.plan.pop(id(node))
        kind = plan[0]
        if kind == "leaf":
            out = node if isinstance(node, (sp.Symbol, Str)) else _constant(node, self.spans.get(node))
        elif kind != "same" and all(_const(a) for a in args):
            # a constant subexpression: one number, with its meaning evaluated
            value = node if kind != "gate" else plan[2].meaning(*args)
            out = _constant(value, self.spans.get(node))
        elif kind == "same":
            out = args[0]
        elif kind == "neg":
            out = _app("negation", args[0])
        elif kind == "add":
            out = args[0]
            for arg, negative in zip(args[1:], plan[2][1:], strict=True):
                out = _app("difference" if negative else "sum", out, arg)
        elif kind == "mul":
            n_num = plan[2]
            num = _chain("product", args[:n_num]) if n_num else None
            den = _chain("product", args[n_num:]) if n_num < len(args) else None
            out = num if den is None else _divide(num, den, self.roles, self.spans.get(node))
        elif kind == "pow":
            out = _power(*args)
        elif plan[2].variadic and len(args) > VARIADIC_LIMIT:
            # a long max or min: a chain of binary ones, left to right, so the code
            # is linear in the operands (each rule compares every pair); the first
            # operand that attains the extreme still takes the whole gradient
            out = functools.reduce(plan[2].function, args)
        elif (
            _GATE_IDS.get(id(node.func)) is plan[2]
            and plan[2] not in (_DECODE["constant quotient"], _DECODE["power"])
            and all(a is b for a, b in zip(args, node.args, strict=True))
        ):
            out = node  # already the gate application it decodes to (a tree from the parser)
        else:
            out = self.gate(plan[2], args)
        span = self.spans.get(node)
        if span is not None:
            self.spans.setdefault(out, span)
        return out

    def gate(self, gate: Gate, args: list) -> sp.Expr:
        if gate is _DECODE["constant quotient"]:
            return _divide(args[0], args[1], self.roles, self.spans.get(args[1]))
        if gate is _DECODE["power"]:
            return _power(args[0], args[1])
        return gate.function(*args)


def _constant(value: sp.Expr, span: Span | None) -> sp.Expr:
    try:
        approx = complex(sp.N(value, 20))
    except (TypeError, ValueError):
        approx = complex("nan")
    if approx.imag != 0 or not math.isfinite(approx.real):
        raise UnsupportedError(f"the constant {brief(value)} is not a finite real number", span)
    return value


# -- step 2: grouped gates -------------------------------------------------------


def _variants(pattern: sp.Expr) -> list[sp.Expr]:
    """The pattern with the operands of add and mul in either order."""
    commutative = {g.function for g in _G.values() if g.commutative}
    results = _Walk(
        _children,
        lambda n, kids: (
            [n]
            if not kids
            else [
                n.func(*combo)
                for combo in itertools.product(*kids)
                for combo in ([combo, combo[::-1]] if n.func in commutative else [combo])
            ]
        ),
    )(pattern)
    unique: list[sp.Expr] = []
    for r in results:
        if r not in unique:
            unique.append(r)
    return unique


def _patterns() -> list[tuple[Gate, sp.Expr, tuple[sp.Basic, ...]]]:
    """Every circuit a gate is recognised from, decoded, in priority order, with
    its wildcards: the operands' slots, then a `Str` per parameter (a constant to
    decoding), which matches one integer constant, the same in every place."""
    found = []
    for gate in _G.values():
        if not (gate.grouped or gate.patterns):
            continue
        n = len(gate.operands)
        xs = tuple(slot(i) for i in range(n))
        params = tuple(Str(f"<{name}>") for name in gate.params)
        for form in (gate.forward, *gate.patterns) if gate.grouped else gate.patterns:
            expr = form(*xs, **dict(zip(gate.params, params, strict=True)))
            circuit = _Decoder(fine=True, spans=NodeMap(), roles=NodeMap())(expr)
            found.extend((gate, variant, xs + params) for variant in _variants(circuit))
    return found


_PATTERNS = _patterns()
_PATTERNS_BY_ROOT: dict[str, list] = {}  # the gate at a pattern's root -> its patterns, in order
for _entry in _PATTERNS:
    _PATTERNS_BY_ROOT.setdefault(_gate_of(_entry[1].func).name, []).append(_entry)


def _match(pattern: sp.Expr, node: sp.Expr, wild: tuple[sp.Basic, ...]) -> dict | None:
    bound: dict[sp.Basic, sp.Expr] = {}
    stack = [(pattern, node)]
    while stack:
        p, n = stack.pop()
        if p in wild:
            if isinstance(p, Str) and not isinstance(n, sp.Integer):
                return None  # a parameter's wildcard: one axis (axis=(0, 1) is no match)
            if p in bound and not (bound[p] is n or bound[p] == n):
                return None
            bound[p] = n
        elif _const(p):
            if not _const(n) or isinstance(n, Str) or float(p) != float(sp.N(n, 20)):
                return None
        elif _leaf(n) or _gate_of(p.func) is not _gate_of(n.func) or len(p.args) != len(n.args):
            return None
        else:
            stack.extend(zip(p.args, n.args, strict=True))
    return bound


class _Grouper:
    def __init__(self, spans: NodeMap):
        self.spans = spans
        self.rewrites: list[tuple[str, Span | None]] = []
        self.outs: list[sp.Expr] = []  # each rewrite's gate application
        self.trees: list[sp.Expr] = []  # each statement's, rewritten
        self.walk = _Walk(_children, self.combine)

    def __call__(self, tree: sp.Expr) -> sp.Expr:
        self.trees.append(self.walk(tree))
        return self.trees[-1]

    def listed(self) -> tuple[tuple[str, Span | None], ...]:
        """The rewrites whose gate is in the program: a circuit inside a larger
        one (exp(s) / sum(exp(s)) in log(...)) became a gate that the larger
        one's rewrite does not keep, unless another statement uses it too."""
        if len(self.rewrites) < 2:
            return tuple(self.rewrites)
        kept = _nodes(self.trees)
        return tuple(r for r, out in zip(self.rewrites, self.outs, strict=True) if id(out) in kept)

    def combine(self, node, args):
        if not args:
            return node
        for gate, pattern, wild in _PATTERNS_BY_ROOT.get(_gate_of(node.func).name, ()):
            bound = _match(pattern, node, wild)
            if bound is not None:
                memo = self.walk.memo
                out = gate.function(*[memo[id(bound[w])][1] for w in wild])
                self.rewrites.append((gate.name, self.spans.get(node)))
                self.outs.append(out)
                break
        else:
            out = node if all(a is b for a, b in zip(args, node.args, strict=True)) else node.func(*args)
        span = self.spans.get(node)
        if span is not None:
            self.spans.setdefault(out, span)
        return out


def _nodes(trees: list[sp.Expr]) -> set[int]:
    """The ids of the nodes of decoded trees."""
    seen: set[int] = set()
    stack = list(trees)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return seen


# -- step 3: stages --------------------------------------------------------------


class _Builder:
    def __init__(self, inputs: tuple[Input, ...], spans: NodeMap, roles: NodeMap):
        self.inputs = inputs
        self.spans = spans
        self.roles = roles
        self.values = {i.name: k for k, i in enumerate(inputs)}
        self.stages: list[Stage] = []
        self.shared: dict[tuple, int] = {}

    def statement(self, name: str, tree: sp.Expr, span: Span | None) -> None:
        walk = _Walk(_children, lambda n, args: self.value(n, args, root=n is tree, name=name, span=span))
        self.values[name] = walk(tree)

    def value(self, node, args, root: bool, name: str, span: Span | None):
        if isinstance(node, sp.Symbol):
            return self.values[node.name]
        if _const(node):
            return _number(node)
        gate = _gate_of(node.func)
        n = gate.arity(len(args))
        params = tuple(args[n:])
        key = (gate.name, tuple(args[:n]), params)
        if not root and key in self.shared:
            return self.shared[key]
        out = len(self.inputs) + len(self.stages)
        self.stages.append(
            Stage(
                gate.name,
                tuple(args[:n]),
                params,
                out,
                name if root else None,
                span if root else self.spans.get(node, span),
                None if root else self.roles.get(node),
            )
        )
        self.shared.setdefault(key, out)
        return out


def lower(program: Program, gates: str = "grouped", backend: str = "math") -> Graph:
    """The stage DAG of `program`, with every value's shape; ``gates`` is
    "grouped" or "fine", ``backend`` "math" (scalars) or "numpy" (arrays)."""
    spans, roles = NodeMap(program.spans), NodeMap()
    builder = _Builder(program.inputs, spans, roles)
    grouper = _Grouper(spans)
    decode = _Decoder(fine=gates == "fine", spans=spans, roles=roles)
    for statement in program.statements:
        tree = decode(statement.expr)
        if gates == "grouped":
            tree = grouper(tree)
        if isinstance(tree, sp.Symbol):  # f = x, delta = N1: an output under a name of its own
            tree = _app("renaming", tree)
        elif _leaf(tree):
            raise UnsupportedError(f"the output {statement.name} is not a computation", statement.span)
        builder.statement(statement.name, tree, statement.span)
    outputs = tuple(builder.values[name] for name in program.outputs)
    graph = _prune(Graph(program.inputs, tuple(builder.stages), outputs, grouper.listed()))
    shapes = infer(graph, backend)
    graph = _specialise(graph, shapes)
    elementwise = all(s in ((), None) for s in shapes[: len(graph.inputs)]) and not any(
        REGISTRY[s.gate].structural for s in graph.stages
    )
    return dataclasses.replace(graph, shapes=shapes, elementwise=elementwise)


def _number(value: sp.Expr) -> Num:
    """A constant of the program as stagegen's number: exact integers and
    fractions, pi and E by name, anything else as the float nearest to it."""
    if isinstance(value, Str):  # a constant that is not a number (gates.sympy_number)
        return Const(ast.literal_eval(value.name))
    if value is sp.pi:
        return PI
    if value is sp.E:
        return E
    if isinstance(value, sp.Integer):
        return Num(int(value))
    if isinstance(value, sp.Rational):
        return Num(Fraction(int(value.p), int(value.q)))
    return Num(float(sp.N(value, 30)))


def infer(graph: Graph, backend: str) -> tuple[Shape, ...]:
    """The shape of every value of `graph` (inputs as declared). A program
    that declares no array works elementwise on inputs of any shape: on a
    backend of arrays every input's shape is then unknown. A mismatch is a
    `ShapeError` at the stage's place in the source, naming both shapes."""
    arrays = BACKENDS[backend].arrays
    for i in graph.inputs:
        if not arrays and i.shape:
            raise ShapeError(
                f"'{i.name}' is declared as an array of shape {text(i.shape)}: arrays need "
                "the numpy backend (--backend numpy)",
                i.span,
            )
    if not arrays:
        shapes: list[Shape] = [() for i in graph.inputs]
    elif any(i.shape for i in graph.inputs):
        shapes = [i.shape for i in graph.inputs]
    else:  # a scalar program applies elementwise to arrays of any shape
        shapes = [None for i in graph.inputs]
    for stage in graph.stages:
        gate = REGISTRY[stage.gate]
        if gate.arrays and not arrays:
            if gate.single:  # max(x) of a number
                raise ShapeError(
                    f"{gate.source}() of one operand takes every element of an array, which needs "
                    f"the numpy backend (--backend numpy); of numbers, {gate.source}() takes 2 or more",
                    stage.span,
                )
            raise ShapeError(
                f"'{gate.operator or gate.source or gate.symbol}' ({gate.name}) needs the numpy backend "
                "(--backend numpy)",
                stage.span,
            )
        operand_shapes = [shapes[op] if isinstance(op, int) else () for op in stage.operands]
        try:
            if gate.shape is None:
                shape = broadcast(*operand_shapes)
            else:
                params = map(parameter, stage.params)
                shape = gate.shape(*operand_shapes, **dict(zip(gate.params, params, strict=True)))
        except ValueError as exc:
            raise ShapeError(str(exc), stage.span) from None
        shapes.append(shape)
    return tuple(shapes)


def _specialise(graph: Graph, shapes: tuple[Shape, ...]) -> Graph:
    """Each stage of a gate that has forms by operand shape (`Gate.specialised`:
    `@` of a vector is matvec, vecmat or vecdot) as the gate of its operands' shapes;
    the parameters of a gate that resolves them by the operands' shapes as it
    does (`Gate.resolve`: a subscript that names fewer axes than its operand
    says so, a reshape's size name is the operand axis it is)."""
    stages = []
    for stage in graph.stages:
        gate = REGISTRY[stage.gate]
        pick = gate.specialised
        if pick is not None:
            operand_shapes = [shapes[op] if isinstance(op, int) else () for op in stage.operands]
            stage = dataclasses.replace(stage, gate=pick(*operand_shapes))
        if gate.resolve is not None:
            operand_shapes = [shapes[op] if isinstance(op, int) else () for op in stage.operands]
            values = gate.resolve(operand_shapes, *map(parameter, stage.params))
            params = tuple(Const(v) if isinstance(v, tuple) else Num(v) for v in values)
            stage = dataclasses.replace(stage, params=params)
        stages.append(stage)
    return dataclasses.replace(graph, stages=tuple(stages))


def _prune(graph: Graph) -> Graph:
    """Drop stages no output depends on; renumber the rest."""
    n = len(graph.inputs)
    live = [False] * (n + len(graph.stages))
    for out in graph.outputs:
        live[out] = True
    for stage in reversed(graph.stages):
        if live[stage.out]:
            for op in stage.values():
                live[op] = True
    renumber = {k: k for k in range(n)}
    stages = []
    for stage in graph.stages:
        if live[stage.out]:
            renumber[stage.out] = n + len(stages)
            ops = tuple(renumber[op] if isinstance(op, int) else op for op in stage.operands)
            stages.append(
                Stage(stage.gate, ops, stage.params, renumber[stage.out], stage.name, stage.span, stage.role)
            )
    dropped = tuple(s.name for s in graph.stages if not live[s.out] and s.name)
    outputs = tuple(renumber[out] for out in graph.outputs)
    pruned = Graph(graph.inputs, tuple(stages), outputs, graph.rewrites, dropped)
    pruned.check()
    return pruned

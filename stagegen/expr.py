"""stagegen's own expressions: gate rules and the forms the backends emit.

A rule is written as it reads (``(1 - out) * out``) with Python operators on
these nodes: `Slot` (an operand of the gate), `OUT` (the gate's output),
`DOUT` (the adjoint flowing into it), `Aux` (an auxiliary value the gate's
forward pass caches), `Num` (a number, printed as written), `Call` (an
operation by name: the arithmetic operators and every function), `Compare`,
`Select` (a conditional) and `Subscript`. Numbers fold where the result is
exact (``n - 1`` for an exponent n, ``x ** 1`` is x, ``0 * a`` is 0), so a
rule instantiated at its parameters reads like a hand-written one.

Nothing here knows SymPy, a backend or a gate: `printer.py` writes these
nodes as text, `gates.py` defines rules with them, and `diff` differentiates
them with the derivatives the gate registry supplies. Every traversal is
iterative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

# operator name -> Python's operator, for the printer and for readers of rules
OPERATORS = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "floordiv": "//",  # of sizes only (a slice's bound: a.shape[1] // 4)
    "pow": "**",
    "matmul": "@",
    "neg": "-",
}


class Expr:
    """A node. Operators build new nodes; ``==`` compares structure."""

    __slots__ = ()

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __matmul__(self, other):
        return Call("matmul", (self, wrap(other)))

    def __neg__(self):
        return neg(self)

    def __gt__(self, other):
        return Compare(">", self, wrap(other))

    def __ge__(self, other):
        return Compare(">=", self, wrap(other))

    def __lt__(self, other):
        return Compare("<", self, wrap(other))

    def __le__(self, other):
        return Compare("<=", self, wrap(other))

    @property
    def T(self):  # noqa: N802 -- NumPy's name for the transpose
        return Call("transpose", (self,))

    def children(self) -> tuple[Expr, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class Num(Expr):
    """A number: an int, a float, an exact fraction (an exponent such as 1/3) or
    a bool (a flag such as keepdims=True), printed as written (a float by its
    `repr`, a fraction as the float nearest to it). `name` marks a named
    constant (``pi``, ``e``), printed by name."""

    value: int | float | Fraction | bool
    name: str = ""

    def __post_init__(self):
        assert type(self.value) in (int, float, Fraction, bool), f"Num of {type(self.value).__name__}"

    def __eq__(self, other) -> bool:  # 2, 2.0 and True are three numbers here
        return (
            isinstance(other, Num)
            and type(self.value) is type(other.value)
            and self.value == other.value
            and self.name == other.name
        )

    def __hash__(self) -> int:
        return hash((type(self.value), self.value, self.name))

    def __str__(self) -> str:
        if self.name:
            return "E" if self.name == "e" else self.name
        return repr(self.value) if isinstance(self.value, float) else str(self.value)


@dataclass(frozen=True, eq=True)
class Const(Expr):
    """A constant parameter that is not a number: a tuple (``transpose``'s axes,
    a subscript's items, `subscripts.py`), printed as Python writes it."""

    value: tuple

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True, eq=True)
class Slot(Expr):
    """Operand `index` of the gate the rule belongs to."""

    index: int


@dataclass(frozen=True, eq=True)
class Out(Expr):
    """The gate's own output (its cached value)."""


@dataclass(frozen=True, eq=True)
class Dout(Expr):
    """The adjoint of the gate's output (in a whole vector-Jacobian product)."""


@dataclass(frozen=True, eq=True)
class Aux(Expr):
    """Auxiliary value `index` that the gate's forward pass caches."""

    index: int


@dataclass(frozen=True, eq=True)
class Named(Expr):
    """A name the target defines, written its way (``float64``: ``np.float64``)."""

    name: str


@dataclass(frozen=True, eq=True)
class Ref(Expr):
    """A value of the program by its name in the code (operands filled in)."""

    name: str


@dataclass(frozen=True, eq=True)
class Call(Expr):
    """An operation: an operator of `OPERATORS` or a function, by name, with
    keyword parameters (``axis=0``) after its arguments."""

    fn: str
    args: tuple[Expr, ...]
    keywords: tuple[tuple[str, Expr], ...] = ()

    def children(self) -> tuple[Expr, ...]:
        return self.args + tuple(value for _, value in self.keywords)


@dataclass(frozen=True, eq=True)
class Compare(Expr):
    """``a op b``: where a backend's booleans are not numbers (`Syntax.mask`) a
    comparison outside a condition reads as a number, unless `boolean` (a mask)."""

    op: str  # ">", ">=", "<", "<=", "==", "!="
    a: Expr
    b: Expr
    boolean: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.a, self.b)


@dataclass(frozen=True, eq=True)
class Select(Expr):
    """``a if cond else b``; `each`: per element where the operands are arrays
    (``np.where(cond, a, b)``), else one test of a single condition."""

    cond: Expr
    a: Expr
    b: Expr
    each: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.cond, self.a, self.b)


@dataclass(frozen=True, eq=True)
class Slice(Expr):
    """``start:stop:step`` inside a subscript (a missing part is None)."""

    start: Expr | None = None
    stop: Expr | None = None
    step: Expr | None = None

    def children(self) -> tuple[Expr, ...]:
        return tuple(e for e in (self.start, self.stop, self.step) if e is not None)


@dataclass(frozen=True, eq=True)
class Subscript(Expr):
    """``value[index, ...]``: numbers, slices, index arrays, None for a new axis."""

    value: Expr
    index: tuple[Expr | None, ...]
    # the axes after the index follow unnamed (``x[0]`` of a matrix): a target that
    # names every axis (`Syntax.every_axis`, the array API) writes ``x[0, ...]``
    open: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.value, *(i for i in self.index if i is not None))


OUT = Out()
DOUT = Dout()


def slots(n: int) -> tuple[Slot, ...]:
    return tuple(Slot(i) for i in range(n))


def wrap(value) -> Expr:
    """An Expr for `value` (a number becomes a `Num`)."""
    if isinstance(value, Expr):
        return value
    if not isinstance(value, (int, float, Fraction)):
        raise TypeError(f"not an expression: {value!r}")
    return Num(value)


def parameter(value: Expr):
    """A stage's constant parameter as the Python value gates' shapes and
    meanings take: an int (an axis), or a `Const`'s tuple."""
    return value.value if isinstance(value, Const) else int(value.value)


def number(expr: Expr) -> int | float | Fraction | None:
    """The value of a numeric `Num` (not a named constant or a flag), else None."""
    if isinstance(expr, Num) and not expr.name and type(expr.value) is not bool:
        return expr.value
    return None


# -- constructors that fold what is exact -----------------------------------------------------


def _negated(e: Expr) -> Expr | None:
    """x for -x, else None."""
    return e.args[0] if isinstance(e, Call) and e.fn == "neg" else None


def add(a, b) -> Expr:
    a, b = wrap(a), wrap(b)
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return Num(x + y)
    if x == 0:
        return b
    if y == 0:
        return a
    if _negated(b) is not None:
        return sub(a, _negated(b))
    if _negated(a) is not None:
        return sub(b, _negated(a))
    return Call("add", (a, b))


def sub(a, b) -> Expr:
    a, b = wrap(a), wrap(b)
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return Num(x - y)
    if y == 0:
        return a
    if x == 0:
        return neg(b)
    if _negated(b) is not None:
        return add(a, _negated(b))
    return Call("sub", (a, b))


def mul(a, b) -> Expr:
    a, b = wrap(a), wrap(b)
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return Num(x * y)
    if x == 0 or y == 0:
        return Num(0)
    if x == 1 and type(x) is int:
        return b
    if y == 1 and type(y) is int:
        return a
    if x == -1 and type(x) is int:
        return neg(b)
    if y == -1 and type(y) is int:
        return neg(a)
    return Call("mul", (a, b))


def div(a, b) -> Expr:
    a, b = wrap(a), wrap(b)
    if number(b) == 1 and type(number(b)) is int:
        return a
    if number(a) == 0:
        return Num(0)
    return Call("div", (a, b))


def power(a, b) -> Expr:
    a, b = wrap(a), wrap(b)
    x, y = number(a), number(b)
    if y == 1:
        return a
    if y == 0:
        return Num(1)
    if type(x) is int and type(y) is int and y > 0:
        return Num(x**y)
    return Call("pow", (a, b))


def neg(a) -> Expr:
    a = wrap(a)
    x = number(a)
    if x is not None:
        return Num(-x)
    if _negated(a) is not None:
        return _negated(a)
    return Call("neg", (a,))


def call(fn: str, *args, **keywords) -> Expr:
    """The function `fn` applied to `args` (numbers wrapped), keywords after them in order."""
    return Call(fn, tuple(map(wrap, args)), tuple((k, wrap(v)) for k, v in keywords.items()))


def equal(a, b) -> Expr:
    """``a == b`` (elementwise on arrays); an `Expr`'s own == compares expressions."""
    return Compare("==", wrap(a), wrap(b))


def select(cond: Expr, a, b) -> Expr:
    """One test: ``a if cond else b`` in every backend (the condition is one boolean)."""
    return Select(cond, wrap(a), wrap(b))


def where(cond: Expr, a, b) -> Expr:
    """Per element: ``a if cond else b`` of floats, ``where(cond, a, b)`` of arrays."""
    return Select(cond, wrap(a), wrap(b), each=True)


def function(fn: str) -> Callable[..., Expr]:
    """A constructor for applications of `fn`: ``exp = function("exp")``; ``exp(x)``."""

    def apply(*args, **keywords) -> Expr:
        return call(fn, *args, **keywords)

    apply.__name__ = fn
    return apply


PI = Num(math.pi, "pi")
E = Num(math.e, "e")


# -- walking and rewriting ----------------------------------------------------------------


def nodes(expr: Expr) -> Iterator[Expr]:
    """Every node of `expr`, each distinct node once, children before parents."""
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            yield node
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.children()))


def has(expr: Expr, kind: type | Callable[[Expr], bool]) -> bool:
    """Whether some node of `expr` is of type `kind` (or satisfies it)."""
    test = (lambda n: isinstance(n, kind)) if isinstance(kind, type) else kind
    return any(test(n) for n in nodes(expr))


def rebuild(expr: Expr, replace: Callable[[Expr, tuple[Expr, ...]], Expr | None]) -> Expr:
    """`expr` rebuilt bottom-up: `replace(node, new children)` gives a node's
    replacement, or None to keep the node (with its new children, through the
    folding constructors)."""
    done: dict[int, Expr] = {}
    for node in nodes(expr):
        kids = tuple(done[id(c)] for c in node.children())
        new = replace(node, kids)
        done[id(node)] = new if new is not None else _with_children(node, kids)
    return done[id(expr)]


def _with_children(node: Expr, kids: tuple[Expr, ...]) -> Expr:
    if kids == node.children():
        return node
    if isinstance(node, Call):
        n = len(node.args)
        args, values = kids[:n], kids[n:]
        fold = _FOLDING.get(node.fn)
        if fold is not None and not node.keywords:
            return fold(*args)
        return Call(node.fn, args, tuple((k, v) for (k, _), v in zip(node.keywords, values, strict=True)))
    if isinstance(node, Compare):
        return Compare(node.op, *kids, boolean=node.boolean)
    if isinstance(node, Select):
        return Select(*kids, each=node.each)
    if isinstance(node, Slice):
        parts = iter(kids)
        return Slice(*(None if e is None else next(parts) for e in (node.start, node.stop, node.step)))
    if isinstance(node, Subscript):
        parts = iter(kids[1:])
        return Subscript(kids[0], tuple(None if i is None else next(parts) for i in node.index), node.open)
    raise AssertionError(f"{type(node).__name__} has no children")


_FOLDING = {"add": add, "sub": sub, "mul": mul, "div": div, "pow": power, "neg": neg}


def substitute(expr: Expr, mapping: Mapping[Expr, Expr]) -> Expr:
    """`expr` with every node that is a key of `mapping` replaced by its value."""
    return rebuild(expr, lambda node, kids: mapping.get(node))


# -- derivatives ---------------------------------------------------------------------------

# fn -> (arguments, the application itself) -> partial derivative per argument;
# the gate registry supplies one entry per function its rules use.
Derivatives = Mapping[str, Callable[[tuple[Expr, ...], Expr], tuple[Expr, ...]]]


# Array functions of the rules, by how their derivative along a direction reads:
# linear in their first argument (the others are parameters or shapes) ...
_LINEAR_IN_FIRST = frozenset(
    {
        "transpose",
        "matrix_transpose",
        "reversed_axes",
        "swapaxes",
        "permute_dims",
        "reshape",
        "expand_dims",
        "sum",
        "mean",
        "_unbroadcast",
        "copy",
    }
)
# ... or linear in each argument (products) ...
_BILINEAR = frozenset({"matmul", "outer"})
# ... or constant along every direction (they read only a shape)
_SHAPE_ONLY = frozenset({"ones_like", "zeros_like", "size", "shape", "shape_of", "arange"})


def push(expr: Expr, tangents: Mapping[Expr, Expr], derivatives: Derivatives) -> Expr:
    """The derivative of `expr` along a direction (forward mode on the
    expression): `tangents` maps its leaves (`Slot`, `OUT`, `DOUT`, ...) to
    their tangents, every other leaf is constant. Elementwise functions take
    their partial derivatives from `derivatives`; `matmul` and `outer` are bilinear;
    `full_like(a, v)` and `scatter(a[index], v)` (a subscript's adjoint) are linear
    in v; the functions of `_LINEAR_IN_FIRST` are linear in their first argument;
    those of `_SHAPE_ONLY` read only a shape; a subscript is linear in its value."""
    zero = Num(0)
    done: dict[int, Expr] = {}
    for node in nodes(expr):
        if node in tangents and not isinstance(node, (Call, Num)):
            d = tangents[node]
        elif isinstance(node, Call):
            args, ds = node.args, [done[id(a)] for a in node.args]
            fn = node.fn
            if fn in _BILINEAR:
                d = add(
                    zero if ds[0] == zero else Call(fn, (ds[0], args[1])),
                    zero if ds[1] == zero else Call(fn, (args[0], ds[1])),
                )
            elif fn in _LINEAR_IN_FIRST:
                d = zero if ds[0] == zero else Call(fn, (ds[0], *args[1:]), node.keywords)
            elif fn in ("full_like", "scatter"):  # linear in the value; the first gives a shape
                d = zero if ds[1] == zero else Call(fn, (args[0], ds[1]), node.keywords)
            elif fn in _SHAPE_ONLY or all(x == zero for x in ds):
                d = zero
            elif node.keywords:
                raise ValueError(f"no derivative of {fn} with keywords")
            else:
                rule = derivatives.get(fn)
                if rule is None:
                    raise ValueError(f"no derivative of {fn}")
                d = zero
                for x, partial in zip(ds, rule(args, node), strict=True):
                    if x != zero:
                        d = add(d, mul(partial, x))
        elif isinstance(node, Subscript):  # linear in the value; the index is constant
            d = done[id(node.value)]
            d = zero if d == zero else Subscript(d, node.index, node.open)
        elif isinstance(node, Select):
            d = _select(node, done[id(node.a)], done[id(node.b)])
        else:  # numbers, other leaves, comparisons (piecewise constant)
            d = zero
        done[id(node)] = d
    return done[id(expr)]


def _select(node: Select, a: Expr, b: Expr) -> Expr:
    """A derivative of a selection: the branches' derivatives selected, or the one both have."""
    return a if a == b else Select(node.cond, a, b, node.each)


def diff(expr: Expr, var: Expr, derivatives: Derivatives) -> Expr:
    """d expr / d var, by the chain rule over `expr`'s nodes, with 0 and 1 folded.

    `var` is a `Slot`, `OUT`, `Aux` or `Ref`; other leaves are constants. A
    comparison is piecewise constant: its derivative is 0 (a kink has measure
    zero). A function with no entry in `derivatives` is an error."""
    done: dict[int, Expr] = {}
    for node in nodes(expr):
        if node == var:
            d = Num(1)
        elif isinstance(node, Call):
            if all(done[id(arg)] == Num(0) for arg in node.args):
                d = Num(0)  # constant along var (a mask, a function of constants)
            elif node.keywords:
                raise ValueError(f"no derivative of {node.fn} with keywords")
            else:
                rule = derivatives.get(node.fn)
                if rule is None:
                    raise ValueError(f"no derivative of {node.fn}")
                d = Num(0)
                for arg, partial in zip(node.args, rule(node.args, node), strict=True):
                    d = add(d, mul(partial, done[id(arg)]))
        elif isinstance(node, Select):
            d = _select(node, done[id(node.a)], done[id(node.b)])
        else:  # numbers, other leaves, comparisons (piecewise constant)
            d = Num(0)
        done[id(node)] = d
    return done[id(expr)]

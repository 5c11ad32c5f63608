"""The gate registry: every gate stagegen knows, each defined exactly once.

A gate is one `Gate` record: its operands and constant parameters, its
mathematical meaning `forward` (SymPy), its local gradient with respect to each
operand `local` (SymPy, may use the cached output `out`), the operator or
function name that writes it in the input language, and, only where numerical
safety needs it, a different emitted form per backend (`emit`). A grouped gate
(sigmoid, softplus) is also recognised from its primitive circuit, `forward`
and the extra `patterns`, and is expanded back into it by ``--gates fine``.

Lowering, differentiation, naming, printing and the tests read these records;
no other module branches on a gate's name. The registry is frozen at import.
Rules are evaluated on placeholder symbols (`slot(i)`, `OUT`), once per gate,
arity and parameters (`Gate.instance`); the printer turns them into text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .errors import GateDefinitionError
from .shapes import drop_axis, text

__all__ = ["Gate", "Instance", "REGISTRY", "OUT", "DOUT", "slot", "ordered_max", "ordered_min"]


@functools.lru_cache(maxsize=None)
def slot(i: int) -> sp.Symbol:
    """The placeholder for operand `i` in a gate's rules (sorts in operand order)."""
    return sp.Symbol(f"_{i:03d}", real=True)


OUT = sp.Symbol("_out", real=True)  # placeholder for the gate's own output
DOUT = sp.Symbol("_dout", real=True)  # placeholder for the output's adjoint, in a structural rule

# Order-preserving max/min for emitted forms: SymPy's Max sorts its arguments,
# but which operand wins a tie is part of the contract (the first one).
ordered_max = sp.Function("ordered_max")
ordered_min = sp.Function("ordered_min")

# Array operations the numpy backend's rules are written with. Each prints as
# the NumPy it names (printer.NumpyPrinter); matmul, transpose and the
# reductions are also the function classes of their own gates below.
matmul = sp.Function("matmul")  # a @ b
transpose = sp.Function("transpose")  # a.T
ones_like = sp.Function("ones_like")  # np.ones_like(a)
full_like = sp.Function("full_like")  # np.full_like(a, value)
expand_dims = sp.Function("expand_dims")  # np.expand_dims(a, axis)
axis_size = sp.Function("axis_size")  # a.size, or a.shape[axis]
amax = sp.Function("amax")  # np.max(a); (a, axis): np.max(a, axis=axis); (a, axis, 1): keepdims=True
array_sum = sp.Function("sum")  # np.sum(a)
sum_axis = sp.Function("sum_axis")  # np.sum(a, axis=axis)
array_mean = sp.Function("mean")
mean_axis = sp.Function("mean_axis")
logsumexp = sp.Function("logsumexp")
logsumexp_axis = sp.Function("logsumexp_axis")
# if_all(condition, a, b): a if the condition holds for every element, else b;
# a fast form for arrays with no extreme element, a safe one for the rest.
if_all = sp.Function("if_all")


@dataclass(frozen=True)
class Instance:
    """A gate's rules evaluated at one arity and parameter tuple, on placeholders."""

    forward: sp.Expr  # the meaning
    emit: Mapping[str, sp.Expr]  # backend -> emitted form (defaults to forward)
    local: tuple[sp.Expr, ...] | None  # d out / d operand_i (elementwise gates)
    vjp: tuple[sp.Expr, ...] | None  # contribution to operand_i's adjoint (structural gates)

    def emitted(self, backend: str) -> sp.Expr:
        return self.emit.get(backend, self.forward)


@dataclass(frozen=True, eq=False)
class Gate:
    name: str
    operands: tuple[str, ...]
    forward: Callable[..., sp.Expr]
    local: Callable[..., tuple] | None = None  # elementwise: d out / d operand_i, from operands and out
    vjp: Callable[..., tuple] | None = None  # structural: the whole contribution per operand (also dout)
    shape: Callable[..., tuple] | None = None  # structural: output shape from operand shapes; else broadcast
    backends: tuple[str, ...] = ("math", "numpy")
    keywords: tuple[str, ...] = ()  # parameters written as keywords in the input language (axis=)
    params: tuple[str, ...] = ()
    variadic: bool = False  # operands is a pattern for 2 or more operands
    operator: str | None = None  # how the input language writes it: "+", "u-", ...
    source: str | None = None  # ... or the function name that calls it
    grouped: bool = False  # recognised from its circuit; expanded by --gates fine
    patterns: tuple[Callable[..., sp.Expr], ...] = ()  # more circuits that mean this gate
    emit: Mapping[str, Callable[..., sp.Expr]] = field(default_factory=dict)
    name_hint: str | Callable[..., str] = ""
    symbol: str | Callable[..., str] = ""  # its label in a circuit diagram (of the params if callable)
    domain: tuple[float, float] = (-3.0, 3.0)  # where tests sample its operands
    special: tuple[float, ...] = ()  # operand values tests always try
    test_params: tuple[tuple, ...] = ((),)
    kink: Callable[..., tuple] | None = None  # expressions; the gate has a kink where one is zero
    convention: str = ""  # the subgradient at a kink, as the backward line's comment states it
    why: str = ""  # why a grouped gate replaces its circuit (listed in the module's docstring)
    doc: str = ""
    function: type = field(init=False)

    def __post_init__(self):
        # The SymPy function that stands for one application of this gate in a
        # parsed program: unevaluated, order preserving, one class per gate.
        object.__setattr__(self, "function", sp.Function(self.name))

    @property
    def structural(self) -> bool:
        """Its backward contributions are whole vector-Jacobian products, not local * upstream."""
        return self.vjp is not None

    @property
    def smooth(self) -> bool:
        """Differentiable everywhere; else a subgradient convention applies at `kink`."""
        return self.kink is None

    def arity(self, n_args: int) -> int:
        """Operands in an application with `n_args` SymPy arguments."""
        return n_args - len(self.params)

    def meaning(self, *args) -> sp.Expr:
        """`forward` of one application: its operands, then its parameters."""
        n = self.arity(len(args))
        return self.forward(*args[:n], **dict(zip(self.params, args[n:], strict=True)))

    def hint(self, operand_texts: tuple[str, ...], params: tuple) -> str:
        if callable(self.name_hint):
            return self.name_hint(*operand_texts, *params)
        return self.name_hint.format(*operand_texts, args="".join(operand_texts))

    def label(self, params: tuple) -> str:
        """The gate's label in a circuit diagram, for one application's parameters."""
        return self.symbol(*params) if callable(self.symbol) else self.symbol

    @functools.lru_cache(maxsize=None)  # noqa: B019 -- gates live as long as the process
    def instance(self, arity: int, params: tuple = ()) -> Instance:
        """Rules at this arity and these parameters, on `slot(i)` and `OUT`."""
        xs = tuple(slot(i) for i in range(arity))
        kw = dict(zip(self.params, params, strict=True))
        local = vjp = None
        if self.structural:
            vjp = tuple(sp.sympify(g) for g in self.vjp(*xs, out=OUT, dout=DOUT, **kw))
        else:
            local = tuple(sp.sympify(g) for g in self.local(*xs, out=OUT, **kw))
        if len(local or vjp) != arity:
            raise GateDefinitionError(f"gate {self.name}: {len(local or vjp)} rules for {arity} operands")
        emit = {backend: sp.sympify(form(*xs, **kw)) for backend, form in self.emit.items()}
        return Instance(sp.sympify(self.forward(*xs, **kw)), MappingProxyType(emit), local, vjp)


def _matmul_shape(a, b):
    if a is None or b is None:
        return None
    if len(a) != 2 or len(b) != 2:
        raise ValueError(
            f"@ multiplies matrices; got shapes {text(a)} and {text(b)} (a column vector is matrix(n, 1))"
        )
    if a[1] != b[0]:
        raise ValueError(f"shapes {text(a)} @ {text(b)} do not fit: {a[1]} columns against {b[0]} rows")
    return (a[0], b[1])


def _transpose_shape(a):
    if a is not None and len(a) != 2:
        raise ValueError(f".T transposes a matrix; got shape {text(a)}")
    return None if a is None else (a[1], a[0])


def _power_hint(x: str, n) -> str:
    return {2: f"{x}sqr", 3: f"{x}cube"}.get(n, f"{x}pow")


def _power_symbol(n) -> str:
    """**2, **2.5, **(1/3), **pi: the exponent as the input language writes it."""
    n = sp.sympify(n)
    if n.is_Integer:
        return f"**{int(n)}"
    if n.is_Rational:
        return f"**({n})"
    return f"**{float(n)!r}" if n.is_Float else f"**{n}"


def _heaviside_route(xs, ties_first: bool):
    """Local gradients of an n-ary max: operand i gets 1 where it is the first extreme."""
    sign = 1 if ties_first else -1
    return tuple(
        sp.Mul(*[sp.Heaviside(sign * (xi - xj), 0 if j < i else 1) for j, xj in enumerate(xs) if j != i])
        for i, xi in enumerate(xs)
    )


def _ties(*xs):
    """The differences of the operands: a tie of max or min is where one is zero."""
    return tuple(a - b for i, a in enumerate(xs) for b in xs[i + 1 :])


_GATES = [
    # -- arithmetic ----------------------------------------------------------
    Gate(
        "add",
        operands=("a", "b"),
        forward=lambda a, b: a + b,
        local=lambda a, b, out: (1, 1),
        operator="+",
        name_hint="{0}p{1}",
        symbol="+",
        doc="a + b; d/da = 1, d/db = 1",
    ),
    Gate(
        "sub",
        operands=("a", "b"),
        forward=lambda a, b: a - b,
        local=lambda a, b, out: (1, -1),
        operator="-",
        name_hint="{0}m{1}",
        symbol="-",
        doc="a - b; d/da = 1, d/db = -1",
    ),
    Gate(
        "neg",
        operands=("x",),
        forward=lambda x: -x,
        local=lambda x, out: (-1,),
        operator="u-",
        name_hint="neg{0}",
        symbol="*-1",
        doc="-x; d/dx = -1",
    ),
    Gate(
        "mul",
        operands=("a", "b"),
        forward=lambda a, b: a * b,
        local=lambda a, b, out: (b, a),
        operator="*",
        name_hint="{0}{1}",
        symbol="*",
        doc="a * b; d/da = b, d/db = a",
    ),
    Gate(
        "div",
        operands=("a", "b"),
        forward=lambda a, b: a / b,
        local=lambda a, b, out: (1 / b, -a / b**2),
        operator="/",
        name_hint="{0}d{1}",
        symbol="/",
        domain=(0.2, 3.0),
        doc="a / b, kept only for a constant b (a / den is num * (1.0 / den)); " "d/da = 1/b, d/db = -a/b**2",
    ),
    Gate(
        "reciprocal",
        operands=("x",),
        forward=lambda x: 1.0 / x,
        local=lambda x, out: (-1.0 / x**2,),
        name_hint="inv{0}",
        symbol="1/x",
        domain=(0.2, 3.0),
        doc="1 / x; d/dx = -1/x**2",
    ),
    Gate(
        "sqrt",
        operands=("x",),
        forward=lambda x: sp.sqrt(x),
        local=lambda x, out: (0.5 / out,),
        source="sqrt",
        name_hint="sqrt{0}",
        symbol="sqrt",
        domain=(0.05, 4.0),
        doc="sqrt(x) = x**(1/2); d/dx = 0.5/sqrt(x)",
    ),
    Gate(
        "powc",
        operands=("x",),
        forward=lambda x, n: x**n,
        local=lambda x, out, n: (n * x ** (n - 1),),
        params=("n",),
        name_hint=_power_hint,
        symbol=_power_symbol,
        domain=(0.2, 3.0),
        test_params=((2,), (3,), (sp.Float(2.5),), (sp.Float(0.25),)),
        doc="x**n for a constant n; d/dx = n * x**(n-1)",
    ),
    Gate(
        "pow",
        operands=("a", "b"),
        forward=lambda a, b: a**b,
        local=lambda a, b, out: (b * a ** (b - 1), sp.log(a) * out),
        operator="**",
        name_hint="{0}pow{1}",
        symbol="**",
        domain=(0.2, 3.0),
        doc="a**b; d/da = b * a**(b-1), d/db = log(a) * a**b",
    ),
    # -- elementary functions ------------------------------------------------
    Gate(
        "exp",
        operands=("x",),
        forward=sp.exp,
        local=lambda x, out: (out,),
        source="exp",
        name_hint="exp{0}",
        symbol="exp",
        doc="exp(x); d/dx = exp(x)",
    ),
    Gate(
        "log",
        operands=("x",),
        forward=sp.log,
        local=lambda x, out: (1 / x,),
        source="log",
        name_hint="log{0}",
        symbol="log",
        domain=(0.05, 4.0),
        doc="natural logarithm log(x); d/dx = 1/x",
    ),
    Gate(
        "sin",
        operands=("x",),
        forward=sp.sin,
        local=lambda x, out: (sp.cos(x),),
        source="sin",
        name_hint="sin{0}",
        symbol="sin",
        doc="sin(x); d/dx = cos(x)",
    ),
    Gate(
        "cos",
        operands=("x",),
        forward=sp.cos,
        local=lambda x, out: (-sp.sin(x),),
        source="cos",
        name_hint="cos{0}",
        symbol="cos",
        doc="cos(x); d/dx = -sin(x)",
    ),
    Gate(
        "tan",
        operands=("x",),
        forward=sp.tan,
        local=lambda x, out: (1 + out**2,),
        source="tan",
        name_hint="tan{0}",
        symbol="tan",
        domain=(-1.4, 1.4),
        doc="tan(x); d/dx = 1 + tan(x)**2",
    ),
    Gate(
        "asin",
        operands=("x",),
        forward=sp.asin,
        local=lambda x, out: (1 / sp.sqrt(1 - x**2),),
        source="asin",
        name_hint="asin{0}",
        symbol="asin",
        domain=(-0.95, 0.95),
        doc="asin(x); d/dx = 1/sqrt(1 - x**2)",
    ),
    Gate(
        "acos",
        operands=("x",),
        forward=sp.acos,
        local=lambda x, out: (-1 / sp.sqrt(1 - x**2),),
        source="acos",
        name_hint="acos{0}",
        symbol="acos",
        domain=(-0.95, 0.95),
        doc="acos(x); d/dx = -1/sqrt(1 - x**2)",
    ),
    Gate(
        "atan",
        operands=("x",),
        forward=sp.atan,
        local=lambda x, out: (1 / (1 + x**2),),
        source="atan",
        name_hint="atan{0}",
        symbol="atan",
        doc="atan(x); d/dx = 1/(1 + x**2)",
    ),
    Gate(
        "sinh",
        operands=("x",),
        forward=sp.sinh,
        local=lambda x, out: (sp.cosh(x),),
        source="sinh",
        name_hint="sinh{0}",
        symbol="sinh",
        doc="sinh(x); d/dx = cosh(x)",
    ),
    Gate(
        "cosh",
        operands=("x",),
        forward=sp.cosh,
        local=lambda x, out: (sp.sinh(x),),
        source="cosh",
        name_hint="cosh{0}",
        symbol="cosh",
        doc="cosh(x); d/dx = sinh(x)",
    ),
    Gate(
        "tanh",
        operands=("x",),
        forward=sp.tanh,
        local=lambda x, out: (1 - out**2,),
        source="tanh",
        name_hint="tanh{0}",
        symbol="tanh",
        doc="tanh(x); d/dx = 1 - tanh(x)**2",
    ),
    Gate(
        "asinh",
        operands=("x",),
        forward=sp.asinh,
        local=lambda x, out: (1 / sp.sqrt(x**2 + 1),),
        source="asinh",
        name_hint="asinh{0}",
        symbol="asinh",
        doc="asinh(x); d/dx = 1/sqrt(x**2 + 1)",
    ),
    Gate(
        "acosh",
        operands=("x",),
        forward=sp.acosh,
        local=lambda x, out: (1 / sp.sqrt(x**2 - 1),),
        source="acosh",
        name_hint="acosh{0}",
        symbol="acosh",
        domain=(1.05, 4.0),
        doc="acosh(x), x >= 1; d/dx = 1/sqrt(x**2 - 1)",
    ),
    Gate(
        "atanh",
        operands=("x",),
        forward=sp.atanh,
        local=lambda x, out: (1 / (1 - x**2),),
        source="atanh",
        name_hint="atanh{0}",
        symbol="atanh",
        domain=(-0.95, 0.95),
        doc="atanh(x), |x| < 1; d/dx = 1/(1 - x**2)",
    ),
    Gate(
        "erf",
        operands=("x",),
        forward=sp.erf,
        local=lambda x, out: (2 / sp.sqrt(sp.pi) * sp.exp(-(x**2)),),
        source="erf",
        name_hint="erf{0}",
        symbol="erf",
        doc="erf(x); d/dx = 2/sqrt(pi) * exp(-x**2)",
    ),
    # -- grouped gates: one stage for a circuit with a simpler local gradient --
    Gate(
        "sigmoid",
        operands=("x",),
        forward=lambda x: 1 / (1 + sp.exp(-x)),
        local=lambda x, out: ((1 - out) * out,),
        source="sigmoid",
        grouped=True,
        patterns=(lambda x: sp.exp(x) / (1 + sp.exp(x)),),
        # 1/(1 + exp(-x)) overflows in exp for x < -709; below -700 the
        # correctly rounded result is exp(x) itself, since 1 + exp(x) == 1.
        emit={
            "math": lambda x: sp.Piecewise((1.0 / (1.0 + sp.exp(-x)), x > -700.0), (sp.exp(x), True)),
            # Arrays: the four-pass form when no element is below -700; else both
            # branches at once, elementwise, exp(x) / (1 + exp(x)) for x < 0 and
            # 1 / (1 + exp(-x)) for x >= 0 (no exp of a positive number; 7 passes).
            "numpy": lambda x: if_all(
                x > -700.0, 1.0 / (1.0 + sp.exp(-x)), sp.exp(ordered_min(x, 0.0)) / (1.0 + sp.exp(-sp.Abs(x)))
            ),
        },
        name_hint="sig{0}",
        symbol="σ",
        why="no overflow for any float; local gradient (1 - s) * s",
        special=(0.0, -1000.0, 1000.0, -745.0, 40.0, -40.0),
        doc="sigmoid(x) = 1/(1 + exp(-x)); d/dx = (1 - sigmoid(x)) * sigmoid(x)",
    ),
    Gate(
        "softplus",
        operands=("x",),
        forward=lambda x: sp.log(1 + sp.exp(x)),
        local=lambda x, out: (-expm1(-out),),
        source="softplus",
        grouped=True,
        # log(1 + exp(x)) = x + log1p(exp(-x)): each branch takes exp of a
        # non-positive number, so nothing overflows; log1p keeps the tail.
        emit={
            "math": lambda x: sp.Piecewise((x + log1p(sp.exp(-x)), x > 0.0), (log1p(sp.exp(x)), True)),
            # Arrays: log1p(exp(x)) (two passes) when no element is above 700;
            # else both branches at once, elementwise (five passes).
            "numpy": lambda x: if_all(
                x < 700.0, log1p(sp.exp(x)), ordered_max(x, 0.0) + log1p(sp.exp(-sp.Abs(x)))
            ),
        },
        name_hint="sp{0}",
        symbol="softplus",
        special=(0.0, -1000.0, 1000.0, -40.0, 40.0),
        why="no overflow for any float",
        doc="softplus(x) = log(1 + exp(x)); d/dx = sigmoid(x) = 1 - exp(-softplus(x))",
    ),
    Gate(
        "log1p",
        operands=("x",),
        forward=lambda x: sp.log(1 + x),
        local=lambda x, out: (1 / (1 + x),),
        source="log1p",
        grouped=True,
        emit={"math": lambda x: log1p(x), "numpy": lambda x: log1p(x)},
        name_hint="log1p{0}",
        symbol="log1p",
        domain=(-0.9, 3.0),
        special=(0.0, 1e-20, -1e-20, 1e-300, 5e-324),
        why="accurate when the argument is small (log(1 + t) loses the digits of t)",
        doc="log1p(x) = log(1 + x), x > -1; d/dx = 1/(1 + x)",
    ),
    Gate(
        "expm1",
        operands=("x",),
        forward=lambda x: sp.exp(x) - 1,
        # not out + 1: that cancels to 0.0 once expm1(x) rounds to -1 (x < -37)
        local=lambda x, out: (sp.exp(x),),
        source="expm1",
        grouped=True,
        emit={"math": lambda x: expm1(x), "numpy": lambda x: expm1(x)},
        name_hint="expm1{0}",
        symbol="expm1",
        special=(0.0, 1e-20, -1e-20, 1e-300, 5e-324, -1000.0, 700.0),
        why="accurate when the argument is small (exp(t) - 1 loses the digits of t)",
        doc="expm1(x) = exp(x) - 1; d/dx = exp(x)",
    ),
    # -- non-smooth gates: subgradient conventions of DESIGN.md --------------
    Gate(
        "relu",
        operands=("x",),
        forward=lambda x: sp.Max(x, 0),
        local=lambda x, out: (sp.Heaviside(x, 0),),
        source="relu",
        emit={"math": lambda x: ordered_max(x, 0.0), "numpy": lambda x: ordered_max(x, 0.0)},
        name_hint="relu{0}",
        symbol="relu",
        special=(0.0,),
        kink=lambda x: (x,),
        convention="0 at x = 0",
        doc="relu(x) = max(x, 0); d/dx = 1 if x > 0 else 0 (0 at the kink)",
    ),
    Gate(
        "abs",
        operands=("x",),
        forward=sp.Abs,
        local=lambda x, out: (sp.sign(x),),
        source="abs",
        name_hint="abs{0}",
        symbol="abs",
        special=(0.0,),
        kink=lambda x: (x,),
        convention="0 at x = 0",
        doc="|x|; d/dx = sign(x) (0 at the kink)",
    ),
    Gate(
        "max",
        operands=("x",),
        forward=lambda *xs: sp.Max(*xs),
        local=lambda *xs, out: _heaviside_route(xs, True),
        variadic=True,
        source="max",
        emit={"math": lambda *xs: ordered_max(*xs), "numpy": lambda *xs: ordered_max(*xs)},
        name_hint="max{args}",
        symbol="max",
        special=(0.0,),
        kink=_ties,
        convention="a tie goes to the first operand",
        doc="max(x1, ..., xn); the whole gradient goes to the first operand that attains the maximum",
    ),
    Gate(
        "min",
        operands=("x",),
        forward=lambda *xs: sp.Min(*xs),
        local=lambda *xs, out: _heaviside_route(xs, False),
        variadic=True,
        source="min",
        emit={"math": lambda *xs: ordered_min(*xs), "numpy": lambda *xs: ordered_min(*xs)},
        name_hint="min{args}",
        symbol="min",
        special=(0.0,),
        kink=_ties,
        convention="a tie goes to the first operand",
        doc="min(x1, ..., xn); the whole gradient goes to the first operand that attains the minimum",
    ),
]

_GATES += [
    # -- arrays (numpy backend): the notes' matrix product, transpose, reductions --
    Gate(
        "matmul",
        operands=("a", "b"),
        forward=lambda a, b: matmul(a, b),
        vjp=lambda a, b, out, dout: (matmul(dout, transpose(b)), matmul(transpose(a), dout)),
        shape=_matmul_shape,
        backends=("numpy",),
        operator="@",
        name_hint="{0}{1}",
        symbol="@",
        doc="a @ b for matrices a (n, k), b (k, m); by dimension analysis da = dout @ b.T, db = a.T @ dout",
    ),
    Gate(
        "transpose",
        operands=("a",),
        forward=lambda a: transpose(a),
        vjp=lambda a, out, dout: (transpose(dout),),
        shape=_transpose_shape,
        backends=("numpy",),
        operator=".T",
        name_hint="{0}T",
        symbol="T",
        doc="a.T, the transpose of a matrix; da = dout.T",
    ),
    Gate(
        "sum",
        operands=("a",),
        forward=lambda a: array_sum(a),
        vjp=lambda a, out, dout: (full_like(a, dout),),
        shape=lambda a: (),
        backends=("numpy",),
        source="sum",
        name_hint="sum{0}",
        symbol="Σ",
        doc="sum(a), of every element; da = full_like(a, dout)",
    ),
    Gate(
        "sum_axis",
        operands=("a",),
        params=("axis",),
        forward=lambda a, axis: sum_axis(a, axis),
        vjp=lambda a, out, dout, axis: (ones_like(a) * expand_dims(dout, axis),),
        shape=drop_axis,
        backends=("numpy",),
        source="sum",
        keywords=("axis",),
        name_hint=lambda a, axis: f"sum{a}{axis}",
        symbol="Σ",
        doc="sum(a, axis=k); da = ones_like(a) * dout with axis k restored",
    ),
    Gate(
        "mean",
        operands=("a",),
        forward=lambda a: array_mean(a),
        vjp=lambda a, out, dout: (full_like(a, dout / axis_size(a)),),
        shape=lambda a: (),
        backends=("numpy",),
        source="mean",
        name_hint="mean{0}",
        symbol="mean",
        doc="mean(a), of every element; da = full_like(a, dout / a.size)",
    ),
    Gate(
        "mean_axis",
        operands=("a",),
        params=("axis",),
        forward=lambda a, axis: mean_axis(a, axis),
        vjp=lambda a, out, dout, axis: (ones_like(a) * expand_dims(dout, axis) / axis_size(a, axis),),
        shape=drop_axis,
        backends=("numpy",),
        source="mean",
        keywords=("axis",),
        name_hint=lambda a, axis: f"mean{a}{axis}",
        symbol="mean",
        doc="mean(a, axis=k); da = ones_like(a) * dout / a.shape[k], axis k restored",
    ),
    Gate(
        "logsumexp",
        operands=("a",),
        forward=lambda a: logsumexp(a),
        vjp=lambda a, out, dout: (sp.exp(a - out) * dout,),
        # max(a) + log(sum(exp(a - max(a)))): no exp of a large number overflows
        emit={"numpy": lambda a: amax(a) + sp.log(array_sum(sp.exp(a - amax(a))))},
        shape=lambda a: (),
        backends=("numpy",),
        source="logsumexp",
        name_hint="lse{0}",
        symbol="logΣexp",
        doc="logsumexp(a) = log(sum(exp(a))), stable; da = softmax(a) * dout = exp(a - out) * dout",
    ),
    Gate(
        "logsumexp_axis",
        operands=("a",),
        params=("axis",),
        forward=lambda a, axis: logsumexp_axis(a, axis),
        vjp=lambda a, out, dout, axis: (sp.exp(a - expand_dims(out, axis)) * expand_dims(dout, axis),),
        emit={"numpy": lambda a, axis: amax(a, axis) + sp.log(sum_axis(sp.exp(a - amax(a, axis, 1)), axis))},
        shape=drop_axis,
        backends=("numpy",),
        source="logsumexp",
        keywords=("axis",),
        name_hint=lambda a, axis: f"lse{a}{axis}",
        symbol="logΣexp",
        doc="logsumexp(a, axis=k), stable; da = softmax(a, axis=k) * dout",
    ),
]

REGISTRY: Mapping[str, Gate] = MappingProxyType({gate.name: gate for gate in _GATES})
if len(REGISTRY) != len(_GATES):
    raise GateDefinitionError("two gates share a name")

BY_FUNCTION: Mapping[type, Gate] = MappingProxyType({gate.function: gate for gate in _GATES})
BY_OPERATOR: Mapping[str, Gate] = MappingProxyType({g.operator: g for g in _GATES if g.operator})
BY_SOURCE: Mapping[str, Gate] = MappingProxyType({g.source: g for g in _GATES if g.source and not g.keywords})
BY_KEYWORDS: Mapping[tuple, Gate] = MappingProxyType(
    {(g.source, g.keywords): g for g in _GATES if g.keywords}
)

CONSTANTS: Mapping[str, sp.Expr] = MappingProxyType({"pi": sp.pi, "E": sp.E})

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

__all__ = ["Gate", "Instance", "REGISTRY", "OUT", "slot", "ordered_max", "ordered_min"]


@functools.lru_cache(maxsize=None)
def slot(i: int) -> sp.Symbol:
    """The placeholder for operand `i` in a gate's rules (sorts in operand order)."""
    return sp.Symbol(f"_{i:03d}", real=True)


OUT = sp.Symbol("_out", real=True)  # placeholder for the gate's own output

# Order-preserving max/min for emitted forms: SymPy's Max sorts its arguments,
# but which operand wins a tie is part of the contract (the first one).
ordered_max = sp.Function("ordered_max")
ordered_min = sp.Function("ordered_min")


@dataclass(frozen=True)
class Instance:
    """A gate's rules evaluated at one arity and parameter tuple, on placeholders."""

    forward: sp.Expr  # the meaning
    emit: Mapping[str, sp.Expr]  # backend -> emitted form (defaults to forward)
    local: tuple[sp.Expr, ...]  # d out / d operand_i

    def emitted(self, backend: str) -> sp.Expr:
        return self.emit.get(backend, self.forward)


@dataclass(frozen=True, eq=False)
class Gate:
    name: str
    operands: tuple[str, ...]
    forward: Callable[..., sp.Expr]
    local: Callable[..., tuple]
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
        local = tuple(sp.sympify(g) for g in self.local(*xs, out=OUT, **kw))
        if len(local) != arity:
            raise GateDefinitionError(f"gate {self.name}: {len(local)} local gradients for {arity} operands")
        emit = {backend: sp.sympify(form(*xs, **kw)) for backend, form in self.emit.items()}
        return Instance(sp.sympify(self.forward(*xs, **kw)), MappingProxyType(emit), local)


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
        emit={"math": lambda x: sp.Piecewise((1.0 / (1.0 + sp.exp(-x)), x > -700.0), (sp.exp(x), True))},
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
        emit={"math": lambda x: sp.Piecewise((x + log1p(sp.exp(-x)), x > 0.0), (log1p(sp.exp(x)), True))},
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
        emit={"math": lambda x: log1p(x)},
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
        local=lambda x, out: (out + 1,),
        source="expm1",
        grouped=True,
        emit={"math": lambda x: expm1(x)},
        name_hint="expm1{0}",
        symbol="expm1",
        special=(0.0, 1e-20, -1e-20, 1e-300, 5e-324, -1000.0, 700.0),
        why="accurate when the argument is small (exp(t) - 1 loses the digits of t)",
        doc="expm1(x) = exp(x) - 1; d/dx = exp(x) = expm1(x) + 1",
    ),
    # -- non-smooth gates: subgradient conventions of DESIGN.md --------------
    Gate(
        "relu",
        operands=("x",),
        forward=lambda x: sp.Max(x, 0),
        local=lambda x, out: (sp.Heaviside(x, 0),),
        source="relu",
        emit={"math": lambda x: ordered_max(x, 0.0)},
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
        emit={"math": lambda *xs: ordered_max(*xs)},
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
        emit={"math": lambda *xs: ordered_min(*xs)},
        name_hint="min{args}",
        symbol="min",
        special=(0.0,),
        kink=_ties,
        convention="a tie goes to the first operand",
        doc="min(x1, ..., xn); the whole gradient goes to the first operand that attains the minimum",
    ),
]

REGISTRY: Mapping[str, Gate] = MappingProxyType({gate.name: gate for gate in _GATES})
if len(REGISTRY) != len(_GATES):
    raise GateDefinitionError("two gates share a name")

BY_FUNCTION: Mapping[type, Gate] = MappingProxyType({gate.function: gate for gate in _GATES})
BY_OPERATOR: Mapping[str, Gate] = MappingProxyType({g.operator: g for g in _GATES if g.operator})
BY_SOURCE: Mapping[str, Gate] = MappingProxyType({g.source: g for g in _GATES if g.source})

CONSTANTS: Mapping[str, sp.Expr] = MappingProxyType({"pi": sp.pi, "E": sp.E})

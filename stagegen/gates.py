"""The gate registry: every gate stagegen knows, each defined exactly once.

A gate is one `Gate` record. Its mathematical meaning, `forward`, is SymPy:
the reference that lowering decodes programs against and `verify` checks
against. Everything the generated code says about it is stagegen's own
expression language (`expr.py`): the emitted form, `code` (by default a call
of the function `fn`, which each backend names by its convention, such as
``math.log2`` or ``np.log2``; per backend where numerical safety needs a form
of its own), and the local gradient per operand, `local`, which may read the
cached output `OUT`, or for a structural gate (matmul, a reduction) the whole
vector-Jacobian product per operand, `vjp`, which reads the adjoint `DOUT`.
The operator or function name that writes it in the input language, its name
hint, its label and its test domain complete the record. A grouped gate
(sigmoid, softplus) is also recognised from its primitive circuit, `forward`
and the extra `patterns`, and is expanded back into it by ``--gates fine``.

Lowering, differentiation, naming, printing and the tests read these records;
no other module branches on a gate's name. The registry is frozen at import.
Rules are instantiated once per gate, arity and parameters (`Gate.instance`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

import sympy as sp
from sympy.core.symbol import Str

from . import subscripts
from .backends import BACKENDS
from .errors import GateDefinitionError
from .expr import (
    DOUT,
    OUT,
    Compare,
    Const,
    Expr,
    Named,
    Num,
    Ref,
    Slice,
    Subscript,
    call,
    equal,
    function,
    select,
    slots,
    where,
)
from .shapes import (
    concat_shape,
    dot_shape,
    drop_axis,
    matmul_shape,
    matrix_transpose_shape,
    outer_shape,
    permute_shape,
    reshape_shape,
    same_shape,
    stack_shape,
    swapaxes_shape,
    transpose_shape,
)

__all__ = ["Gate", "Instance", "REGISTRY", "OUT", "DOUT", "TANGENT", "slot", "DERIVATIVES", "FUNCTIONS"]

# The functions rules and emitted forms call, by their names in the expression language.
exp, log, sqrt = function("exp"), function("log"), function("sqrt")
sin, cos, sinh, cosh = function("sin"), function("cos"), function("sinh"), function("cosh")
expm1, log1p, sign, ordered_max = function("expm1"), function("log1p"), function("sign"), function("max")
erfc, digamma, trigamma = function("erfc"), function("digamma"), function("trigamma")
minimum, absolute, every = function("min"), function("abs"), function("all")
ones_like, full_like, expand_dims = function("ones_like"), function("full_like"), function("expand_dims")
size, axis_size, amax = function("size"), function("shape"), function("amax")
array_sum, array_mean, cumsum = function("sum"), function("mean"), function("cumsum")
array_prod, others = function("prod"), function("_prod_others")
outer, swapaxes, unbroadcast = function("outer"), function("swapaxes"), function("_unbroadcast")
scatter = function("scatter")
matrix_transpose, reversed_axes = function("matrix_transpose"), function("reversed_axes")


# In a structural gate's forward-mode rule (`jvp`), the tangent of the operand
# the rule is for (the planner puts that operand's tangent in its place).
TANGENT = Ref("{tangent}")


@functools.lru_cache(maxsize=None)
def slot(i: int) -> sp.Symbol:
    """The SymPy placeholder for operand `i` in a gate's meaning (sorts in operand order)."""
    return sp.Symbol(f"_{i:03d}", real=True)


def sympy_number(value) -> sp.Expr:
    """A parameter (a Python int, float or Fraction, or a named constant) as SymPy."""
    if isinstance(value, Num):
        return {"pi": sp.pi, "e": sp.E}[value.name] if value.name else sympy_number(value.value)
    if isinstance(value, Const):  # a tuple: SymPy holds it as its text (lower._number reads it)
        return Str(repr(value.value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.sympify(value)  # a Python number, or SymPy's own


@dataclass(frozen=True)
class Instance:
    """A gate's rules at one arity and parameter tuple, on placeholders."""

    forward: sp.Expr  # the meaning, over slot(i)
    code: Mapping[str, Expr]  # backend -> the emitted form
    display: Expr  # the stage as the input language writes it
    local: tuple[Expr | None, ...] | None  # d out / d operand_i (elementwise gates; None: no gradient)
    vjp: tuple[Expr, ...] | None  # contribution to operand_i's adjoint (structural gates)
    tangent: tuple[Expr, ...] | None = (
        None  # structural: operand_i's share of the output's tangent (in TANGENT)
    )
    broadcast: tuple[Expr, ...] | None = None  # structural: the vjp as a value that broadcasts

    @property
    def rules(self) -> tuple[Expr, ...]:
        return self.local if self.local is not None else self.vjp


@dataclass(frozen=True, eq=False)
class Gate:
    name: str
    operands: tuple[str, ...]
    forward: Callable[..., sp.Expr]  # the meaning, in SymPy (the reference)
    local: Callable[..., tuple] | None = None  # elementwise: d out / d operand_i, from operands and out
    vjp: Callable[..., tuple] | None = None  # structural: the whole contribution per operand (also dout)
    # structural: the forward mode's rule, each operand's share of the output's tangent,
    # linear in that operand's tangent `tangent` (the vjp's transpose)
    jvp: Callable[..., tuple] | None = None
    # a reduction: its vjp as a value that broadcasts to the operand's shape rather
    # than one of that shape (sum: dout itself, not full_like(a, dout)), which the
    # planner writes where every line reading the adjoint broadcasts it anyway
    broadcast: Callable[..., tuple] | None = None
    fn: str | None = None  # the function (or operator) the default emitted form calls
    code: Callable[..., Expr] | Mapping[str, Callable[..., Expr]] | None = None  # the emitted form
    shape: Callable[..., tuple] | None = None  # structural: output shape from operand shapes; else broadcast
    # structural: the meaning on NumPy object arrays of SymPy scalars, NumPy's own
    # operation (np.matmul, np.sum(axis=)); `np` is passed in (stagegen does not
    # import NumPy itself). An elementwise gate's is its `forward` at each element.
    elements: Callable[..., object] | None = None
    view: bool = False  # its output may share its operand's memory (a.T): never updated in place
    arrays: bool = False  # it exists only on backends of arrays (matmul, reductions)
    keywords: tuple[str, ...] = ()  # parameters written as keywords in the input language (axis=)
    defaults: Mapping[str, object] = field(default_factory=dict)  # keywords that may be left out
    params: tuple[str, ...] = ()
    variadic: bool = False  # operands is a pattern for 2 or more operands
    operator: str | None = None  # how the input language writes it: "+", "u-", ...
    decodes: tuple[str, ...] = ()  # the encodings of SymPy's forms it stands for (lower.ENCODINGS)
    source: str | None = None  # ... or the function name that calls it
    grouped: bool = False  # recognised from its circuit; expanded by --gates fine
    # more circuits that mean this gate, of its operands and (as keywords) its
    # parameters; a gate with patterns that is not grouped (softmax: its `forward`
    # is no circuit) is recognised from them and kept as written by --gates fine
    patterns: tuple[Callable[..., sp.Expr], ...] = ()
    name_hint: str | Callable[..., str] = ""
    symbol: str | Callable[..., str] = ""  # its label in a circuit diagram (of the params if callable)
    domain: tuple[float, float] = (-3.0, 3.0)  # where tests sample its operands
    special: tuple[float, ...] = ()  # operand values tests always try
    test_params: tuple[tuple, ...] = ((),)
    kink: Callable[..., tuple] | None = None  # SymPy expressions; the gate has a kink where one is zero
    convention: str = ""  # the subgradient at a kink, as the backward line's comment states it
    why: str = ""  # why a grouped gate replaces its circuit (listed in the module's docstring)
    # masks: its output is a boolean mask (a comparison, & | ~), which carries no
    # gradient; `conditions`: the operands that must be masks (where's first)
    mask: bool = False
    conditions: tuple[int, ...] = ()
    # a selection (where): the operands taken where its condition holds and where it
    # does not; a stage only they read is computed NaN-safely (ARCHITECTURE, "where")
    branches: tuple[int, int] | None = None
    # & | ~: given whether the mask holds, the (operand, holds) pairs that follow
    implies: Callable[[bool], tuple] | None = None
    # its source name may also name a user's value (a bare name is the value, a call
    # the gate): gamma is a batchnorm's scale or a discount factor in programs
    free_name: bool = False
    # the gate that computes an application with these operand shapes, chosen once
    # shapes are known (`lower.lower`): `@` of a matrix and a vector is matvec
    specialised: Callable[..., str] | None = None
    # the stage as the input language writes it, where that is not a call of
    # `source` or an operator (a subscript: S[arange(N), y])
    display: Callable[..., Expr] | None = None
    # its parameter `index` is a subscript (`subscripts.py`): its index arrays are
    # operands 1, ..., whose values the module checks at entry
    subscript: bool = False
    # parameters written as a tuple (reshape's shape, transpose's axes), and operands
    # written as one list (concat([a, b], axis=k))
    tuples: tuple[str, ...] = ()
    listed: bool = False
    # its parameters as the code needs them once the operands' shapes are known
    # (lowering): from the parameters' values and the operand shapes, the new values
    # (a size name as the operand axis it is, a negative axis counted from the front)
    resolve: Callable[..., tuple] | None = None
    # axis= may be a tuple of axes (a reduction over several: mean(x, axis=(0, 2)))
    axes: bool = False
    # the call of `source` with one operand (max(A): of every element); a call with
    # more is the other gate of that name (max(a, b))
    single: bool = False
    # its name hint is a name the user wrote (a size name used as a number, N): it
    # names the stage before the role the stage's place suggests (den)
    written_name: bool = False
    doc: str = ""
    function: type = field(init=False)

    def __post_init__(self):
        # The SymPy function that stands for one application of this gate in a
        # parsed program: unevaluated, order preserving, one class per gate.
        object.__setattr__(self, "function", sp.Function(self.name))

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends it can be emitted for."""
        return tuple(name for name, b in BACKENDS.items() if b.arrays or not self.arrays)

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

    @functools.cached_property
    def commutative(self) -> bool:
        """A binary gate whose operands may trade places (a constant operand is then
        drawn on either side); decided from the meaning."""
        if self.params or len(self.operands) != 2:
            return False
        forward = sp.sympify(self.forward(slot(0), slot(1)))
        return forward == forward.subs({slot(0): slot(1), slot(1): slot(0)}, simultaneous=True)

    @functools.lru_cache(maxsize=None)  # noqa: B019 -- gates live as long as the process
    def instance(self, arity: int, params: tuple = ()) -> Instance:
        """Rules at this arity and these parameters, on `Slot(i)` and `OUT`."""
        xs = slots(arity)
        values = dict(zip(self.params, (p if isinstance(p, Expr) else Num(p) for p in params), strict=True))
        local = vjp = tangent = broadcast = None
        if self.structural:
            # None: no gradient flows into that operand (an index array)
            vjp = tuple(_rule(r) for r in self.vjp(*xs, out=OUT, dout=DOUT, **values))
            tangent = tuple(_rule(r) for r in self.jvp(*xs, out=OUT, tangent=TANGENT, **values))
            if self.broadcast is not None:
                broadcast = tuple(map(_expr, self.broadcast(*xs, out=OUT, dout=DOUT, **values)))
        else:
            local = tuple(_rule(r) for r in self.local(*xs, out=OUT, **values))
        if len(local or vjp) != arity:
            raise GateDefinitionError(f"gate {self.name}: {len(local or vjp)} rules for {arity} operands")
        default = self.code if callable(self.code) else self._call
        forms = self.code if isinstance(self.code, Mapping) else {}
        code = {b: _expr(forms.get(b, default)(*xs, **values)) for b in self.backends}
        keywords = self.written({k: values[k] for k in self.keywords})
        positional = [values[p] for p in self.params if p not in self.keywords and self.source]
        if self.display is not None:
            display = self.display(*xs, **values)
        elif self.source:
            display = call(self.source, *xs, *positional, **keywords)
        else:
            display = code[self.backends[0]]
        meaning = sp.sympify(self.forward(*[slot(i) for i in range(arity)], **_sympy(params, self.params)))
        return Instance(meaning, MappingProxyType(code), display, local, vjp, tangent, broadcast)

    def _call(self, *xs, **params) -> Expr:
        return call(self.fn or self.source, *xs, **self.written(params))

    def written(self, params: Mapping[str, Num]) -> dict[str, Num]:
        """Keyword parameters as a call writes them: those at their default left
        out, a flag as a bool (keepdims=True; a stage holds it as the number 1)."""
        out = {}
        for k, v in params.items():
            default = self.defaults.get(k, object())
            if k in self.defaults and v.value == default:
                continue
            out[k] = Num(bool(v.value)) if isinstance(default, bool) else v
        return out

    @property
    def required(self) -> tuple[str, ...]:
        """The keywords a call must write (sorted): those without a default."""
        return tuple(sorted(k for k in self.keywords if k not in self.defaults))


def _sympy(params: tuple, names: tuple[str, ...]) -> dict:
    return dict(zip(names, map(sympy_number, params), strict=True))


def _expr(value) -> Expr:
    return value if isinstance(value, Expr) else Num(value)


def _rule(value) -> Expr | None:
    """A rule as an expression; None (no gradient) stays None."""
    return None if value is None else _expr(value)


def _power_hint(x: str, n: Num) -> str:
    return {2: f"{x}sqr", 3: f"{x}cube"}.get(None if n.name else n.value, f"{x}pow")


def _power_symbol(n: Num) -> str:
    """**2, **2.5, **(1/3), **pi: the exponent as the input language writes it."""
    return f"**({n})" if isinstance(n.value, Fraction) and not n.name else f"**{n}"


def _power_local(x, out, n):
    """n * x**(n - 1); for n < 1 written n / x**(1 - n), as a hand writes a negative power."""
    if isinstance(n, Num) and not n.name and n.value < 1:
        return (n / x ** (1 - n),)
    return (n * x ** (n - 1),)


def _first_extreme(xs, greater: bool):
    """Local gradients of an n-ary max (min): operand i gets 1 where it is the first extreme,
    so it wins ties against later operands (>=) and loses them to earlier ones (>)."""
    rules = []
    for i, xi in enumerate(xs):
        rule = None
        for j, xj in enumerate(xs):
            if j == i:
                continue
            a, b = (xi, xj) if greater else (xj, xi)
            step = (a >= b) if j > i else (a > b)
            rule = step if rule is None else rule * step
        rules.append(rule)
    return tuple(rules)


class floor(sp.floor):  # noqa: N801 -- named as SymPy's, so lambdify prints mpmath's floor
    """SymPy's floor with its derivative, 0 (SymPy leaves Derivative(floor(x), x))."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


class ceiling(sp.ceiling):  # noqa: N801
    """SymPy's ceiling with its derivative, 0."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


class clip(sp.Function):  # noqa: N801 -- the name the input language calls it by
    """clip(x, lo, hi) = min(max(x, lo), hi), NumPy's np.clip: a head of its own,
    so a program's min(max(...)) circuits stay min and max. Evaluated (`_imp_`,
    which lambdify and evalf use) and differentiated as that circuit is."""

    nargs = 3

    @staticmethod
    def _imp_(x, lo, hi):
        return min(max(x, lo), hi)

    def fdiff(self, argindex=1):
        d = sp.symbols("_x _lo _hi", real=True)
        slope = sp.diff(sp.Min(sp.Max(d[0], d[1]), d[2]), d[argindex - 1])
        return slope.subs(dict(zip(d, self.args, strict=True)), simultaneous=True)


class lgamma(sp.Function):  # noqa: N801 -- the name the input language calls it by
    """log|gamma(x)|, as math.lgamma (SymPy's loggamma is complex below 0):
    evaluated by mpmath (`_imp_`, which lambdify and evalf use), its derivative
    digamma, polygamma(0, x), on either side of 0."""

    nargs = 1

    @staticmethod
    def _imp_(x):
        import mpmath

        return mpmath.re(mpmath.loggamma(x))

    def fdiff(self, argindex=1):
        return sp.polygamma(0, self.args[0])


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
        code=lambda a, b: a + b,
        fn="add",
        operator="+",
        decodes=("sum",),
        name_hint="{0}p{1}",
        symbol="+",
        doc="a + b; d/da = 1, d/db = 1",
    ),
    Gate(
        "sub",
        operands=("a", "b"),
        forward=lambda a, b: a - b,
        local=lambda a, b, out: (1, -1),
        code=lambda a, b: a - b,
        fn="sub",
        operator="-",
        decodes=("difference",),
        name_hint="{0}m{1}",
        symbol="-",
        doc="a - b; d/da = 1, d/db = -1",
    ),
    Gate(
        "neg",
        operands=("x",),
        forward=lambda x: -x,
        local=lambda x, out: (-1,),
        code=lambda x: -x,
        fn="neg",
        operator="u-",
        decodes=("negation",),
        name_hint="neg{0}",
        symbol="*-1",
        doc="-x; d/dx = -1",
    ),
    Gate(
        "identity",
        operands=("x",),
        forward=lambda x: x,
        local=lambda x, out: (1,),
        code=lambda x: x,
        decodes=("renaming",),
        name_hint="{0}",
        symbol="=",
        doc="an output that is another value by a name of its own (f = x, delta = N1); d/dx = 1",
    ),
    Gate(
        "mul",
        operands=("a", "b"),
        forward=lambda a, b: a * b,
        local=lambda a, b, out: (b, a),
        code=lambda a, b: a * b,
        fn="mul",
        operator="*",
        decodes=("product",),
        name_hint="{0}{1}",
        symbol="*",
        doc="a * b; d/da = b, d/db = a",
    ),
    Gate(
        "div",
        operands=("a", "b"),
        forward=lambda a, b: a / b,
        local=lambda a, b, out: (1 / b, -a / b**2),
        code=lambda a, b: a / b,
        fn="div",
        operator="/",
        decodes=("constant quotient",),
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
        code=lambda x: 1.0 / x,
        decodes=("reciprocal",),
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
        decodes=("square root",),
        name_hint="sqrt{0}",
        symbol="sqrt",
        domain=(0.05, 4.0),
        doc="sqrt(x) = x**(1/2); d/dx = 0.5/sqrt(x)",
    ),
    Gate(
        "powc",
        operands=("x",),
        forward=lambda x, n: x**n,
        local=_power_local,
        code=lambda x, n: x**n,
        params=("n",),
        decodes=("constant power",),
        name_hint=_power_hint,
        symbol=_power_symbol,
        domain=(0.2, 3.0),
        test_params=((2,), (3,), (2.5,), (0.25,)),
        doc="x**n for a constant n; d/dx = n * x**(n-1)",
    ),
    Gate(
        "pow",
        operands=("a", "b"),
        forward=lambda a, b: a**b,
        local=lambda a, b, out: (b * a ** (b - 1), out * log(a)),
        code=lambda a, b: a**b,
        fn="pow",
        operator="**",
        decodes=("power",),
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
        decodes=("natural exponential",),
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
        local=lambda x, out: (cos(x),),
        source="sin",
        name_hint="sin{0}",
        symbol="sin",
        doc="sin(x); d/dx = cos(x)",
    ),
    Gate(
        "cos",
        operands=("x",),
        forward=sp.cos,
        local=lambda x, out: (-sin(x),),
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
        local=lambda x, out: (1 / sqrt(1 - x**2),),
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
        local=lambda x, out: (-1 / sqrt(1 - x**2),),
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
        local=lambda x, out: (cosh(x),),
        source="sinh",
        name_hint="sinh{0}",
        symbol="sinh",
        doc="sinh(x); d/dx = cosh(x)",
    ),
    Gate(
        "cosh",
        operands=("x",),
        forward=sp.cosh,
        local=lambda x, out: (sinh(x),),
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
        local=lambda x, out: (1 / sqrt(1 + x**2),),
        source="asinh",
        name_hint="asinh{0}",
        symbol="asinh",
        doc="asinh(x); d/dx = 1/sqrt(x**2 + 1)",
    ),
    Gate(
        "acosh",
        operands=("x",),
        forward=sp.acosh,
        local=lambda x, out: (1 / sqrt(x**2 - 1),),
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
        "erfc",
        operands=("x",),
        forward=sp.erfc,
        local=lambda x, out: (-2 / math.sqrt(math.pi) * exp(-(x * x)),),
        source="erfc",
        name_hint="erfc{0}",
        symbol="erfc",
        domain=(-3.0, 6.0),
        special=(0.0, 26.0, -26.0),
        doc="erfc(x) = 1 - erf(x), accurate in the upper tail; d/dx = -2/sqrt(pi) * exp(-x**2)",
    ),
    Gate(
        "norm_cdf",
        operands=("x",),
        forward=lambda x: sp.erfc(-x / sp.sqrt(2)) / 2,
        # x * x, not x**2: a float's square overflows to inf (exp(-inf) = 0), where
        # Python's ** raises
        local=lambda x, out: (1 / math.sqrt(2 * math.pi) * exp(-0.5 * (x * x)),),
        # erfc of -x/sqrt(2): the lower tail keeps its digits (1 + erf(...) cancels there)
        code=lambda x: 0.5 * erfc(x * -math.sqrt(0.5)),  # 1/sqrt(2) correctly rounded
        source="norm_cdf",
        grouped=True,
        # as written with erf or erfc, with 1/sqrt(2) symbolic or as a float factor
        # (SymPy's forms printed), 0.5 outside or distributed
        patterns=(
            lambda x: (1 + sp.erf(x / sp.sqrt(2))) / 2,
            lambda x: 1 - sp.Float(0.5) * sp.erfc(sp.N(1 / sp.sqrt(2), 30) * x),
            lambda x: sp.Mul(sp.Float(0.5), sp.Add(1, sp.erf(sp.N(1 / sp.sqrt(2), 30) * x)), evaluate=False),
            lambda x: sp.Float(0.5) + sp.Float(0.5) * sp.erf(sp.N(1 / sp.sqrt(2), 30) * x),
            # 0.5 * (1 + erf(x / sqrt(2))) as a program writes it (SymPy would distribute 0.5)
            lambda x: sp.Mul(
                sp.Float(0.5),
                sp.Add(1, sp.erf(sp.Mul(x, sp.Pow(sp.sqrt(2), -1, evaluate=False), evaluate=False))),
                evaluate=False,
            ),
        ),
        why="the lower tail keeps its digits ((1 + erf(x/sqrt(2))) / 2 cancels, to 0 below x = -8.3)",
        name_hint="Phi{0}",
        symbol="Φ",
        domain=(-6.0, 6.0),
        special=(0.0, -26.5, -38.0, 8.0),
        doc="norm_cdf(x) = Φ(x), the standard normal CDF, = erfc(-x/sqrt(2)) / 2; "
        "d/dx = exp(-x**2/2) / sqrt(2 pi)",
    ),
    Gate(
        "atan2",
        operands=("y", "x"),
        forward=sp.atan2,
        # x / (x**2 + y**2), -y / (x**2 + y**2); at (0, 0) the denominator is taken
        # as 1 (no division by zero), so both are 0
        local=lambda y, x, out: (
            x / where(x**2 + y**2 > 0, x**2 + y**2, 1.0),
            -y / where(x**2 + y**2 > 0, x**2 + y**2, 1.0),
        ),
        source="atan2",
        name_hint="atan2{args}",
        symbol="atan2",
        special=(0.0,),
        kink=lambda y, x: (y,),
        convention="0 at (0, 0)",
        doc="atan2(y, x), the angle of (x, y) in (-pi, pi]; d/dy = x / (x**2 + y**2), "
        "d/dx = -y / (x**2 + y**2); at (0, 0) both 0. The value jumps by 2 pi across "
        "y = 0, x < 0",
    ),
    Gate(
        "hypot",
        operands=("x", "y"),
        forward=lambda x, y: sp.sqrt(x**2 + y**2),
        local=lambda x, y, out: (x / where(out > 0, out, 1.0), y / where(out > 0, out, 1.0)),
        source="hypot",
        grouped=True,
        why="no overflow or underflow of the squares; local gradients x / out, y / out",
        name_hint="hypot{args}",
        symbol="hypot",
        special=(0.0,),
        kink=lambda x, y: (x**2 + y**2,),
        convention="0 at (0, 0)",
        doc="hypot(x, y) = sqrt(x**2 + y**2), no overflow or underflow on the way; "
        "d/dx = x / hypot, d/dy = y / hypot; at (0, 0) both 0",
    ),
    Gate(
        "lgamma",
        operands=("x",),
        forward=lgamma,
        local=lambda x, out: (digamma(x),),
        source="lgamma",
        name_hint="lgamma{0}",
        symbol="lgamma",
        domain=(0.1, 8.0),
        special=(1.0, 2.0, 0.5, -0.5, -2.5, 1e-300, 1e15),
        doc="lgamma(x) = log|gamma(x)|, math.lgamma's (no overflow: lgamma(1e15) = 3.35e16); "
        "d/dx = digamma(x)",
    ),
    Gate(
        "gamma",
        operands=("x",),
        forward=sp.gamma,
        local=lambda x, out: (out * digamma(x),),
        source="gamma",
        name_hint="gamma{0}",
        symbol="Γ",
        free_name=True,
        domain=(0.1, 6.0),
        special=(1.0, 0.5, -0.5, -2.5, 170.5),
        doc="gamma(x), x not 0, -1, -2, ...; overflows above 171.6; d/dx = gamma(x) * digamma(x)",
    ),
    Gate(
        "erf",
        operands=("x",),
        forward=sp.erf,
        local=lambda x, out: (2 / math.sqrt(math.pi) * exp(-(x * x)),),
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
        code={
            "math": lambda x: select(x > -700.0, 1.0 / (1.0 + exp(-x)), exp(x)),
            # Arrays: the four-pass form when no element is below -700; else both
            # branches at once, elementwise, exp(x) / (1 + exp(x)) for x < 0 and
            # 1 / (1 + exp(-x)) for x >= 0 (no exp of a positive number; 7 passes).
            "numpy": lambda x: select(
                every(x > -700.0),
                1.0 / (1.0 + exp(-x)),
                exp(minimum(x, 0.0)) / (1.0 + exp(-absolute(x))),
            ),
            # the array API: no test of the values (a lazy or traced array has none yet)
            "array": lambda x: exp(minimum(x, 0.0)) / (1.0 + exp(-absolute(x))),
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
        code={
            "math": lambda x: select(x > 0, x + log1p(exp(-x)), log1p(exp(x))),
            # Arrays: log1p(exp(x)) (two passes) when no element is above 700;
            # else both branches at once, elementwise (five passes).
            "numpy": lambda x: select(
                every(x < 700.0), log1p(exp(x)), log1p(exp(-absolute(x))) + ordered_max(x, 0.0)
            ),
            "array": lambda x: log1p(exp(-absolute(x))) + ordered_max(x, 0.0),
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
        name_hint="log1p{0}",
        symbol="log1p",
        domain=(-0.9, 3.0),
        special=(0.0, 1e-20, -1e-20, 1e-300, 5e-324),
        why="accurate when the argument is small (log(1 + t) loses the digits of t)",
        doc="log1p(x) = log(1 + x), x > -1; d/dx = 1/(1 + x)",
    ),
    Gate(
        "log2",
        operands=("x",),
        forward=lambda x: sp.log(x) / sp.log(2),
        local=lambda x, out: (math.log2(math.e) / x,),
        source="log2",
        grouped=True,
        patterns=(lambda x: sp.N(1 / sp.log(2), 30) * sp.log(x),),  # the quotient as a float factor
        name_hint="log2{0}",
        symbol="log2",
        domain=(0.05, 4.0),
        special=(1.0, 2.0, 1024.0, 5e-324),
        why="exact at powers of 2 (log(x) / log(2) rounds twice)",
        doc="log2(x) = log(x) / log(2), x > 0; d/dx = 1/(x log 2)",
    ),
    Gate(
        "log10",
        operands=("x",),
        forward=lambda x: sp.log(x) / sp.log(10),
        local=lambda x, out: (math.log10(math.e) / x,),
        source="log10",
        grouped=True,
        patterns=(lambda x: sp.N(1 / sp.log(10), 30) * sp.log(x),),  # the quotient as a float factor
        name_hint="log10{0}",
        symbol="log10",
        domain=(0.05, 4.0),
        special=(1.0, 10.0, 1e300, 5e-324),
        why="exact at powers of 10 (log(x) / log(10) rounds twice)",
        doc="log10(x) = log(x) / log(10), x > 0; d/dx = 1/(x log 10)",
    ),
    Gate(
        "logaddexp",
        operands=("a", "b"),
        forward=lambda a, b: sp.log(sp.exp(a) + sp.exp(b)),
        local=lambda a, b, out: (exp(a - out), exp(b - out)),
        # the larger operand plus log1p of exp of minus their distance: no exp of a
        # positive number, for any floats
        code=lambda a, b: ordered_max(a, b) + log1p(exp(-absolute(a - b))),
        source="logaddexp",
        grouped=True,
        name_hint="lae{args}",
        symbol="logaddexp",
        special=(0.0, 1000.0, -1000.0),
        why="no overflow for any floats; local gradients exp(a - out), exp(b - out)",
        doc="logaddexp(a, b) = log(exp(a) + exp(b)), stable; d/da = exp(a - out), d/db = exp(b - out)",
    ),
    Gate(
        "expm1",
        operands=("x",),
        forward=lambda x: sp.exp(x) - 1,
        # not out + 1: that cancels to 0.0 once expm1(x) rounds to -1 (x < -37)
        local=lambda x, out: (exp(x),),
        source="expm1",
        grouped=True,
        name_hint="expm1{0}",
        symbol="expm1",
        special=(0.0, 1e-20, -1e-20, 1e-300, 5e-324, -1000.0, 700.0),
        why="accurate when the argument is small (exp(t) - 1 loses the digits of t)",
        doc="expm1(x) = exp(x) - 1; d/dx = exp(x)",
    ),
    # -- non-smooth gates: the subgradient conventions of docs/ARCHITECTURE.md --
    Gate(
        "relu",
        operands=("x",),
        forward=lambda x: sp.Max(x, 0),
        local=lambda x, out: (x > 0,),
        code=lambda x: ordered_max(x, 0.0),
        source="relu",
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
        local=lambda x, out: (sign(x),),
        source="abs",
        name_hint="abs{0}",
        symbol="abs",
        special=(0.0,),
        kink=lambda x: (x,),
        convention="0 at x = 0",
        doc="|x|; d/dx = sign(x) (0 at the kink)",
    ),
    Gate(
        "sign",
        operands=("x",),
        forward=sp.sign,
        local=lambda x, out: (0,),
        source="sign",
        name_hint="sign{0}",
        symbol="sign",
        special=(0.0,),
        kink=lambda x: (x,),
        convention="0 (a step: 0 at x = 0 too)",
        doc="sign(x): -1, 0 or 1; d/dx = 0 (0 at the step too)",
    ),
    *(
        Gate(
            name,
            operands=("x",),
            forward=meaning,
            local=lambda x, out: (0,),
            source=name,
            name_hint=name + "{0}",
            symbol=name,
            special=(0.0, 2.5, -2.5),
            kink=lambda x: (sp.sin(sp.pi * x),),  # a step at every integer
            convention="0 (a step: 0 at the integers too)",
            doc=f"{name}(x), the integer {'below' if name == 'floor' else 'above'} x as a float; "
            "d/dx = 0 (0 at the steps too)",
        )
        for name, meaning in (("floor", floor), ("ceil", ceiling))
    ),
    Gate(
        "clip",
        operands=("x", "lo", "hi"),
        forward=clip,
        # min(max(x, lo), hi) with max's and min's ties: x keeps a tie with a bound;
        # lo > hi makes the value hi (NumPy's), and so its gradient
        local=lambda x, lo, hi, out: (
            (x >= lo) * (x <= hi),
            (x < lo) * (lo <= hi),
            (x > hi) + (x <= hi) * (lo > hi),  # no call of max: rules are differentiated
        ),
        code={
            "math": lambda x, lo, hi: minimum(ordered_max(x, lo), hi),
            "numpy": lambda x, lo, hi: call("clip", x, lo, hi),
            "array": lambda x, lo, hi: minimum(ordered_max(x, lo), hi),
        },
        source="clip",
        name_hint="clip{0}",
        symbol="clip",
        special=(0.0,),
        kink=lambda x, lo, hi: (x - lo, x - hi, lo - hi),
        convention="x keeps a tie with a bound",
        doc="clip(x, lo, hi) = min(max(x, lo), hi), NumPy's; d/dx = 1 where lo <= x <= hi "
        "(a tie with a bound goes to x), d/dlo = 1 where x < lo, d/dhi = 1 where x > hi "
        "(lo > hi: the value is hi, d/dhi = 1)",
    ),
    Gate(
        "max",
        operands=("x",),
        forward=lambda *xs: sp.Max(*xs),
        local=lambda *xs, out: _first_extreme(xs, greater=True),
        variadic=True,
        source="max",
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
        local=lambda *xs, out: _first_extreme(xs, greater=False),
        variadic=True,
        source="min",
        name_hint="min{args}",
        symbol="min",
        special=(0.0,),
        kink=_ties,
        convention="a tie goes to the first operand",
        doc="min(x1, ..., xn); the whole gradient goes to the first operand that attains the minimum",
    ),
]


def _mask(test) -> sp.Expr:
    """A mask's meaning: 1 where `test` holds, else 0 (a number, so a mask may
    take part in arithmetic, and a step: its derivative is 0)."""
    return sp.Piecewise((sp.Integer(1), test), (sp.Integer(0), True))


_COMPARISONS = (
    ("greater", ">", sp.Gt, "gt"),
    ("greater_equal", ">=", sp.Ge, "ge"),
    ("less", "<", sp.Lt, "lt"),
    ("less_equal", "<=", sp.Le, "le"),
    ("equal", "==", sp.Eq, "eq"),
    ("not_equal", "!=", sp.Ne, "ne"),
)
# name, operator, meaning, name hint, and what the mask holding (or not) says of its operands
_LOGIC = (
    (
        "logical_and",
        "&",
        lambda a, b: sp.And(sp.Ne(a, 0), sp.Ne(b, 0)),
        "{0}and{1}",
        lambda holds: ((0, True), (1, True)) if holds else (),
    ),
    (
        "logical_or",
        "|",
        lambda a, b: sp.Or(sp.Ne(a, 0), sp.Ne(b, 0)),
        "{0}or{1}",
        lambda holds: () if holds else ((0, False), (1, False)),
    ),
    ("logical_not", "~", lambda a: sp.Eq(a, 0), "not{0}", lambda holds: ((0, not holds),)),
)

_GATES += [
    # -- masks and where: comparisons and & | ~ make masks, which carry no gradient --
    *(
        Gate(
            name,
            operands=("a", "b"),
            forward=lambda a, b, test=test: _mask(test(a, b, evaluate=False)),
            local=lambda a, b, out: (None, None),
            code=lambda a, b, op=op: Compare(op, a, b, boolean=True),
            operator=op,
            mask=True,
            name_hint="{0}" + short + "{1}",
            symbol=op,
            kink=lambda a, b: (a - b,),  # the mask flips where a = b
            domain=(-2.0, 2.0),
            special=(0.0,),
            doc=f"a {op} b, a mask (True/False; 1.0/0.0 in arithmetic); no gradient",
        )
        for name, op, test, short in _COMPARISONS
    ),
    *(
        Gate(
            name,
            operands=("a", "b")[: 1 if op == "~" else 2],
            forward=lambda *ms, test=test: _mask(test(*ms)),
            local=lambda *ms, out: (None,) * len(ms),
            fn=name,
            operator=op,
            mask=True,
            conditions=(0,) if op == "~" else (0, 1),
            implies=implies,
            name_hint=hint,
            symbol=op,
            doc=f"{'~a' if op == '~' else 'a ' + op + ' b'} of masks, a mask; no gradient",
        )
        for name, op, test, hint, implies in _LOGIC
    ),
    Gate(
        "where",
        operands=("cond", "a", "b"),
        forward=lambda cond, a, b: sp.Piecewise((a, sp.Ne(cond, 0)), (b, True)),
        # the gradient goes to the operand taken, element by element
        local=lambda cond, a, b, out: (None, where(cond, 1.0, 0.0), where(cond, 0.0, 1.0)),
        code=lambda cond, a, b: where(cond, a, b),
        source="where",
        conditions=(0,),
        branches=(1, 2),
        name_hint="where{1}",
        symbol="where",
        doc="where(cond, a, b): a where the mask cond holds, else b; da = dout where cond, "
        "db = dout elsewhere (0.0, never 0 * dout, in the other elements)",
    ),
]

# SymPy functions for the meanings of the array gates (numpy backend), each
# standing for the NumPy operation its gate computes.
_matmul, _transpose = sp.Function("matmul"), sp.Function("transpose")
_matvec, _vecmat, _vecdot = sp.Function("matvec"), sp.Function("vecmat"), sp.Function("vecdot")
_outer, _dot = sp.Function("outer"), sp.Function("dot")
_batched, _broadcast = sp.Function("matmul_batched"), sp.Function("matmul_broadcast")
_mT, _swapaxes = sp.Function("matrix_transpose"), sp.Function("swapaxes")
_subscript, _gather = sp.Function("subscript"), sp.Function("gather")
_reshape, _permute = sp.Function("reshape"), sp.Function("permute_dims")
_axis_size = sp.Function("axis_size")
_concat, _stack = sp.Function("concat"), sp.Function("stack")
shape_of, listed = function("shape_of"), function("list")


def _sizes(a, shape: tuple):
    """A reshape's sizes in the code: an integer as itself, a size of a's axis k
    as ``a.shape[k]``, and the one size that is not an integer as -1 where there
    is one only (``np.reshape(x, (-1, 4, 2))``)."""
    loose = [d for d in shape if not isinstance(d, int) or d == -1]
    items = []
    for d in shape:
        if isinstance(d, int):
            items.append(Num(d))
        elif len(loose) == 1:
            items.append(Num(-1))
        else:
            items.append(axis_size(a, Num(d[1])))
    return call("tuple", *items)


def _reshape_resolved(shape: tuple, a) -> tuple:
    """A size name of reshape's shape as ("of", k, name), the size of a's axis k."""
    # a name that is no axis of a (H of an axis of 4*H) is the one -1 (reshape_shape)
    return tuple(("of", a.index(d), d) if isinstance(d, str) and d in a else d for d in shape)


def _concrete(np, a, shape: tuple) -> list:
    """Reshape's sizes on an array: ("of", k, name) is a's axis k."""
    return [np.shape(a)[d[1]] if isinstance(d, tuple) else d for d in shape]


def _written_size(d) -> str:
    return str(d[2] if isinstance(d, tuple) else d)


def _inverse(axes: tuple) -> tuple:
    out = [0] * len(axes)
    for k, axis in enumerate(axes):
        out[axis] = k
    return tuple(out)


def _part(xs, i: int, value):
    """The list of operands with operand i's place holding `value`, the others zeros."""
    return listed(*(value if j == i else call("zeros_like", x) for j, x in enumerate(xs)))


def _joined(name: str, meaning, vjp, shape, numpy_name: str, new: int, doc: str) -> Gate:
    """concat or stack: operands written as one list, joined along `axis` (a `new`
    axis for stack); operand i's tangent share joins its tangent with zeros."""
    return Gate(
        name,
        operands=("a", "b"),
        variadic=True,
        listed=True,
        params=("axis",),
        keywords=("axis",),
        defaults={"axis": 0},
        forward=lambda *xs, axis: meaning(*xs, axis),
        vjp=vjp,
        jvp=lambda *xs, out, tangent, axis: tuple(
            call(name, _part(xs, i, tangent), axis=axis) for i in range(len(xs))
        ),
        elements=lambda np, *xs, axis: getattr(np, numpy_name)(xs, axis=axis),
        code=lambda *xs, axis: call(name, listed(*xs), axis=axis),
        display=lambda *xs, axis: call(name, listed(*xs), **({"axis": axis} if axis.value else {})),
        shape=lambda *shapes, axis: shape(*shapes, axis),
        resolve=lambda shapes, axis: (axis % (len(shapes[0]) + new),),
        arrays=True,
        source=name,
        name_hint=lambda *rest: "".join(rest[:-1]),
        symbol=name,
        doc=doc,
    )


def _concat_vjp(*xs, out, dout, axis):
    """Operand i's share of concat's adjoint: dout along the axis from the sum of
    the sizes before it, for its own size (``dout[:, a.shape[1] :]``)."""
    k, shares, start = axis.value, [], Num(0)
    for x in xs:
        stop = start + axis_size(x, axis)
        shares.append(
            Subscript(dout, (*(Slice(),) * k, Slice(start if start != Num(0) else None, stop)), True)
        )
        start = stop
    shares[-1] = Subscript(dout, (*(Slice(),) * k, Slice(shares[-1].index[-1].start, None)), True)
    return tuple(shares)


def _scatter(a, dout, index: Const):
    """The adjoint of a[index]: zeros of a's shape with dout added at index (the
    planner writes it ``da = zeros_like(a)`` then ``da[index] += dout``, or
    NumPy's ``add.at`` where an index array may repeat an element)."""
    return scatter(subscripts.form(a, index.value), dout)


def _subscript_gate(name: str) -> Gate:
    """A subscript: `subscript` of integers, slices, None and ... (NumPy's basic
    indexing), or `gather`, whose operands after the first are index arrays (its
    advanced indexing), no gradient flowing into them."""
    gathers = name == "gather"
    return Gate(
        name,
        operands=("a", "index") if gathers else ("a",),
        variadic=gathers,
        params=("index",),
        forward=lambda a, *idx, index: (_gather if gathers else _subscript)(a, *idx, index),
        vjp=lambda a, *idx, out, dout, index: (_scatter(a, dout, index), *(None for _ in idx)),
        jvp=lambda a, *idx, out, tangent, index: (
            subscripts.form(tangent, index.value),
            *(None for _ in idx),
        ),
        elements=lambda np, a, *idx, index: a[subscripts.python(index, a, [a, *idx])],
        code=lambda a, *idx, index: subscripts.form(a, index.value),
        display=lambda a, *idx, index: subscripts.written(a, index.value),
        shape=lambda a, *idx, index: subscripts.shape(index, a, dict(enumerate(idx, 1))),
        resolve=lambda shapes, index: (subscripts.resolved(index, shapes[0]),),
        subscript=True,
        arrays=True,
        name_hint=_subscript_hint,
        symbol="[]",
        doc=(
            "a[idx] with index arrays (NumPy's advanced indexing: W[idx], S[arange(N), y]); "
            "da = zeros_like(a), then add.at(da, index, dout) (an element picked twice gets both)"
            if gathers
            else "a[index] with integers, slices, None and ... (NumPy's basic indexing); "
            "da = zeros_like(a), then da[index] += dout"
        ),
    )


def _subscript_hint(a: str, *rest) -> str:
    """x[0] is x0, x[-1] xm1, a slice xs; W[idx] is Widx, S[arange(N), y] Sy."""
    *indexes, spec = rest
    items = [item for item in spec.value if item != ("rest", "implied")]
    if len(items) == 1 and items[0][0] == "at":
        k = items[0][1]
        return f"{a}{k}" if k >= 0 else f"{a}m{-k}"
    return a + ("".join(indexes) if indexes else "s")


_reversed_axes = sp.Function("reversed_axes")


def _vecdot_vjp(a, b, out, dout):
    """a @ b = dot(a, b) of vectors: da = dout * b, db = a * dout."""
    return (dout * b, a * dout)


def _product_jvp(a, b, out, tangent):
    """A product is bilinear: each operand's tangent in its place."""
    return (tangent @ b, a @ tangent)


_sum, _sum_axis, _mean, _mean_axis = (sp.Function(n) for n in ("sum", "sum_axis", "mean", "mean_axis"))
_logsumexp, _logsumexp_axis = sp.Function("logsumexp"), sp.Function("logsumexp_axis")
_softmax, _log_softmax = sp.Function("softmax"), sp.Function("log_softmax")
_prod, _prod_axis = sp.Function("prod"), sp.Function("prod_axis")
_max_axis, _min_axis = sp.Function("max_axis"), sp.Function("min_axis")


# the gate of a @ b by the operands' ranks (matmul_shape has refused any other)
_BY_RANKS = {(2, 2): "matmul", (2, 1): "matvec", (1, 2): "vecmat", (1, 1): "vecdot"}


def _matmul_of(a: tuple, b: tuple) -> str:
    """The gate of a @ b: by the ranks of vectors and matrices; stacks of
    matrices as matmul_batched where the batch axes agree, else matmul_broadcast
    (whose gradients are summed back over the batch axes broadcasting added)."""
    if len(a) <= 2 and len(b) <= 2:
        return _BY_RANKS[len(a), len(b)]
    return "matmul_batched" if a[:-2] == b[:-2] else "matmul_broadcast"


def _product(name: str, meaning, vjp, doc: str, **more) -> Gate:
    """One of @'s gates (by the operands' ranks): NumPy's matmul, bilinear, its
    backward by dimension analysis (`vjp`)."""
    return Gate(
        name,
        operands=("a", "b"),
        forward=lambda a, b: meaning(a, b),
        vjp=vjp,
        jvp=_product_jvp,
        elements=lambda np, a, b: np.matmul(a, b),
        code=lambda a, b: a @ b,
        shape=matmul_shape,
        arrays=True,
        name_hint="{0}{1}",
        symbol="@",
        doc=doc,
        **more,
    )


def _restored(value: Expr, axis: Num, keepdims: Num) -> Expr:
    """A reduction's output (or adjoint) with its reduced axis (axes) back, as size 1."""
    return value if keepdims.value else expand_dims(value, axis)


def _count(a: Expr, axis) -> Expr:
    """How many elements a reduction along `axis` (or a tuple of axes) takes:
    ``a.shape[k]``, or their product."""
    if isinstance(axis, Const):
        count = axis_size(a, Num(axis.value[0]))
        for k in axis.value[1:]:
            count = count * axis_size(a, Num(k))
        return count
    return axis_size(a, axis)


def _axes_resolved(shapes, axis, *rest) -> tuple:
    """A tuple of axes as non-negative and in order (expand_dims restores them so);
    one axis as written."""
    if isinstance(axis, tuple):
        axis = tuple(sorted(k % len(shapes[0]) for k in axis))
    return (axis, *rest)


def _axis_text(axis) -> str:
    """An axis (or axes) in a stage's name: sumx1, meanx023."""
    return "".join(map(str, axis.value)) if isinstance(axis, Const) else str(axis)


def _along(axis: Num, keepdims: Num) -> dict:
    """The keywords of a reduction along `axis`, keepdims written only when set."""
    return {"axis": axis, "keepdims": Num(True)} if keepdims.value else {"axis": axis}


_AXIS = {"params": ("axis", "keepdims"), "keywords": ("axis", "keepdims"), "defaults": {"keepdims": False}}
# a reduction whose axis= may be a tuple
_AXES = {**_AXIS, "axes": True, "resolve": _axes_resolved}

_GATES += [
    # -- arrays (numpy backend): the notes' matrix product, transpose, reductions --
    _product(
        "matmul",
        _matmul,
        lambda a, b, out, dout: (dout @ b.T, a.T @ dout),
        "a @ b for matrices a (n, k), b (k, m); by dimension analysis da = dout @ b.T, db = a.T @ dout",
        fn="matmul",
        operator="@",
        specialised=lambda a, b: _matmul_of(a, b),
    ),
    # @ of 1-D operands, NumPy's matmul: the same product with an axis left out
    _product(
        "matvec",
        _matvec,
        lambda a, b, out, dout: (outer(dout, b), a.T @ dout),
        "a @ b for a matrix a (n, k) and a vector b (k,), a vector (n,); "
        "da = outer(dout, b), db = a.T @ dout",
    ),
    _product(
        "vecmat",
        _vecmat,
        lambda a, b, out, dout: (b @ dout, outer(a, dout)),
        "a @ b for a vector a (k,) and a matrix b (k, m), a vector (m,); "
        "da = b @ dout, db = outer(a, dout)",
    ),
    _product(
        "vecdot",
        _vecdot,
        _vecdot_vjp,
        "a @ b for vectors a (k,), b (k,), a number; da = dout * b, db = a * dout",
    ),
    # stacks of matrices (NumPy's matmul over the leading axes)
    _product(
        "matmul_batched",
        _batched,
        lambda a, b, out, dout: (dout @ matrix_transpose(b), matrix_transpose(a) @ dout),
        "a @ b for stacks of matrices a (..., n, k), b (..., k, m) with the same batch axes; "
        "da = dout @ b.mT, db = a.mT @ dout",
    ),
    _product(
        "matmul_broadcast",
        _broadcast,
        lambda a, b, out, dout: (
            unbroadcast(dout @ matrix_transpose(b), a),
            unbroadcast(matrix_transpose(a) @ dout, b),
        ),
        "a @ b for stacks of matrices whose batch axes broadcast (a matrix times a stack); "
        "da = dout @ b.mT summed back to a's shape (_unbroadcast), db = a.mT @ dout likewise",
    ),
    Gate(
        "matrix_transpose",
        operands=("a",),
        forward=lambda a: _mT(a),
        vjp=lambda a, out, dout: (matrix_transpose(dout),),
        jvp=lambda a, out, tangent: (matrix_transpose(tangent),),
        elements=lambda np, a: np.swapaxes(a, -1, -2),
        code=lambda a: matrix_transpose(a),
        shape=matrix_transpose_shape,
        view=True,
        arrays=True,
        operator=".mT",
        name_hint="{0}T",
        symbol="mT",
        doc="a.mT, the last two axes of a swapped (each matrix of a stack transposed); da = dout.mT",
    ),
    Gate(
        "swapaxes",
        operands=("a",),
        params=("axis1", "axis2"),
        forward=lambda a, axis1, axis2: _swapaxes(a, axis1, axis2),
        vjp=lambda a, out, dout, axis1, axis2: (swapaxes(dout, axis1, axis2),),
        jvp=lambda a, out, tangent, axis1, axis2: (swapaxes(tangent, axis1, axis2),),
        elements=lambda np, a, axis1, axis2: np.swapaxes(a, axis1, axis2),
        code=lambda a, axis1, axis2: swapaxes(a, axis1, axis2),
        shape=swapaxes_shape,
        view=True,
        arrays=True,
        source="swapaxes",
        name_hint=lambda a, axis1, axis2: f"{a}T",
        symbol="swap",
        doc="swapaxes(a, i, j), axes i and j of a swapped (i, j constants); da = swapaxes(dout, i, j)",
    ),
    _subscript_gate("subscript"),
    _subscript_gate("gather"),
    Gate(
        "axis_size",
        operands=("a",),
        params=("size",),
        forward=lambda a, size: _axis_size(a, size),
        vjp=lambda a, out, dout, size: (None,),
        jvp=lambda a, out, tangent, size: (None,),
        elements=lambda np, a, size: np.asarray(np.shape(a)[size[1]], dtype=object),
        code={
            "numpy": lambda a, size: axis_size(a, Num(size.value[1])),
            # the namespace's functions take arrays only (xp.sqrt(d))
            "array": lambda a, size: call("asarray", axis_size(a, Num(size.value[1])), dtype=Named("float")),
        },
        display=lambda a, size: Ref(size.value[0]),
        shape=lambda a, size: (),
        arrays=True,
        name_hint=lambda a, size: size.value[0],
        written_name=True,
        symbol="size",
        doc="a size name as a number (sum(x) / N): ('N', k), axis k of the first input "
        "declared with N, a.shape[k]; no gradient",
    ),
    Gate(
        "reshape",
        operands=("a",),
        params=("shape",),
        tuples=("shape",),
        forward=lambda a, shape: _reshape(a, shape),
        vjp=lambda a, out, dout, shape: (call("reshape", dout, shape_of(a)),),
        jvp=lambda a, out, tangent, shape: (call("reshape", tangent, _sizes(a, shape.value)),),
        elements=lambda np, a, shape: np.reshape(a, _concrete(np, a, shape)),
        code=lambda a, shape: call("reshape", a, _sizes(a, shape.value)),
        display=lambda a, shape: call(
            "reshape", a, call("tuple", *(Ref(_written_size(d)) for d in shape.value))
        ),
        shape=lambda a, shape: reshape_shape(a, shape),
        resolve=lambda shapes, shape: (_reshape_resolved(shape, shapes[0]),),
        view=True,
        arrays=True,
        source="reshape",
        name_hint="{0}r",
        symbol="reshape",
        doc="reshape(a, (d1, ..., dk)), sizes integers, size names of a's axes or one -1; "
        "da = reshape(dout, a.shape)",
    ),
    Gate(
        "permute_dims",
        operands=("a",),
        params=("axes",),
        tuples=("axes",),
        forward=lambda a, axes: _permute(a, axes),
        vjp=lambda a, out, dout, axes: (call("permute_dims", dout, Const(_inverse(axes.value))),),
        jvp=lambda a, out, tangent, axes: (call("permute_dims", tangent, axes),),
        elements=lambda np, a, axes: np.transpose(a, axes),
        code=lambda a, axes: call("permute_dims", a, axes),
        display=lambda a, axes: call("permute_dims", a, axes),  # transpose(x, axes) (SOURCE)
        shape=lambda a, axes: permute_shape(a, axes),
        resolve=lambda shapes, axes: (tuple(k % len(shapes[0]) for k in axes),),
        view=True,
        arrays=True,
        source="transpose",
        name_hint="{0}T",
        symbol="transpose",
        doc="transpose(a, axes): axis k of the result is axis axes[k] of a; "
        "da = transpose(dout, the inverse permutation)",
    ),
    _joined(
        "concat",
        _concat,
        _concat_vjp,
        concat_shape,
        "concatenate",
        0,
        "concat([a, b, ...], axis=k) (axis 0 if left out); each operand's adjoint is "
        "its part of dout along axis k",
    ),
    _joined(
        "stack",
        _stack,
        lambda *xs, out, dout, axis: tuple(
            Subscript(dout, (*(Slice(),) * axis.value, Num(i)), True) for i in range(len(xs))
        ),
        stack_shape,
        "stack",
        1,
        "stack([a, b, ...], axis=k) (axis 0 if left out), a new axis k; "
        "each operand's adjoint is dout at its index along axis k",
    ),
    Gate(
        "dot",
        operands=("a", "b"),
        forward=lambda a, b: _dot(a, b),
        vjp=_vecdot_vjp,
        jvp=_product_jvp,
        elements=lambda np, a, b: np.dot(a, b),
        shape=dot_shape,
        arrays=True,
        source="dot",
        free_name=True,  # a neuron's weighted sum is often called dot
        name_hint="{0}{1}",
        symbol="dot",
        doc="dot(a, b) of vectors a (k,), b (k,), a number (a @ b); da = dout * b, db = a * dout",
    ),
    Gate(
        "outer",
        operands=("a", "b"),
        forward=lambda a, b: _outer(a, b),
        vjp=lambda a, b, out, dout: (dout @ b, a @ dout),
        jvp=lambda a, b, out, tangent: (outer(tangent, b), outer(a, tangent)),
        elements=lambda np, a, b: np.outer(a, b),
        shape=outer_shape,
        arrays=True,
        source="outer",
        free_name=True,
        name_hint="{0}o{1}",
        symbol="⊗",
        doc="outer(a, b) of vectors a (n,), b (m,), the matrix a_i b_j (n, m); "
        "da = dout @ b, db = a @ dout",
    ),
    Gate(
        "transpose",
        operands=("a",),
        forward=lambda a: _transpose(a),
        vjp=lambda a, out, dout: (dout.T,),
        jvp=lambda a, out, tangent: (tangent.T,),
        elements=lambda np, a: np.transpose(a),
        code=lambda a: a.T,
        fn="transpose",
        shape=transpose_shape,
        view=True,
        arrays=True,
        specialised=lambda a: "transpose" if len(a) == 2 else "reversed_axes",
        operator=".T",
        name_hint="{0}T",
        symbol="T",
        doc="a.T, the transpose of a matrix; da = dout.T",
    ),
    Gate(
        "reversed_axes",
        operands=("a",),
        forward=lambda a: _reversed_axes(a),
        vjp=lambda a, out, dout: (reversed_axes(dout),),
        jvp=lambda a, out, tangent: (reversed_axes(tangent),),
        elements=lambda np, a: np.transpose(a),
        code=lambda a: reversed_axes(a),
        shape=transpose_shape,
        view=True,
        arrays=True,
        name_hint="{0}T",
        symbol="T",
        doc="a.T of an array of 3 or more axes: every axis reversed, as NumPy's; da = dout.T",
    ),
    Gate(
        "sum",
        operands=("a",),
        forward=lambda a: _sum(a),
        vjp=lambda a, out, dout: (full_like(a, dout),),
        broadcast=lambda a, out, dout: (dout,),
        jvp=lambda a, out, tangent: (array_sum(tangent),),
        elements=lambda np, a: np.sum(a),
        shape=lambda a: (),
        arrays=True,
        source="sum",
        name_hint="sum{0}",
        symbol="Σ",
        doc="sum(a), of every element; da = full_like(a, dout)",
    ),
    Gate(
        "sum_axis",
        operands=("a",),
        **_AXES,
        forward=lambda a, axis, keepdims: _sum_axis(a, axis, keepdims),
        vjp=lambda a, out, dout, axis, keepdims: (_restored(dout, axis, keepdims) * ones_like(a),),
        broadcast=lambda a, out, dout, axis, keepdims: (_restored(dout, axis, keepdims),),
        jvp=lambda a, out, tangent, axis, keepdims: (array_sum(tangent, **_along(axis, keepdims)),),
        elements=lambda np, a, axis, keepdims: np.sum(a, axis=axis, keepdims=bool(keepdims)),
        shape=drop_axis,
        arrays=True,
        source="sum",
        name_hint=lambda a, axis, keepdims: f"sum{a}{_axis_text(axis)}",
        symbol="Σ",
        doc="sum(a, axis=k), keepdims=True keeping axis k with size 1; "
        "da = ones_like(a) * dout with axis k restored",
    ),
    Gate(
        "mean",
        operands=("a",),
        forward=lambda a: _mean(a),
        vjp=lambda a, out, dout: (full_like(a, dout / size(a)),),
        broadcast=lambda a, out, dout: (dout / size(a),),
        jvp=lambda a, out, tangent: (array_mean(tangent),),
        elements=lambda np, a: np.mean(a),
        shape=lambda a: (),
        arrays=True,
        source="mean",
        name_hint="mean{0}",
        symbol="mean",
        doc="mean(a), of every element; da = full_like(a, dout / a.size)",
    ),
    Gate(
        "mean_axis",
        operands=("a",),
        **_AXES,
        forward=lambda a, axis, keepdims: _mean_axis(a, axis, keepdims),
        vjp=lambda a, out, dout, axis, keepdims: (
            _restored(dout, axis, keepdims) * ones_like(a) / _count(a, axis),
        ),
        broadcast=lambda a, out, dout, axis, keepdims: (_restored(dout, axis, keepdims) / _count(a, axis),),
        jvp=lambda a, out, tangent, axis, keepdims: (array_mean(tangent, **_along(axis, keepdims)),),
        elements=lambda np, a, axis, keepdims: np.mean(a, axis=axis, keepdims=bool(keepdims)),
        shape=drop_axis,
        arrays=True,
        source="mean",
        name_hint=lambda a, axis, keepdims: f"mean{a}{_axis_text(axis)}",
        symbol="mean",
        doc="mean(a, axis=k), keepdims=True keeping axis k with size 1; "
        "da = ones_like(a) * dout / a.shape[k], axis k restored",
    ),
    Gate(
        "logsumexp",
        operands=("a",),
        forward=lambda a: _logsumexp(a),
        vjp=lambda a, out, dout: (dout * exp(a - out),),
        jvp=lambda a, out, tangent: (array_sum(exp(a - out) * tangent),),
        elements=lambda np, a: sp.log(np.sum(np.frompyfunc(sp.exp, 1, 1)(a))),
        # max(a) + log1p(the other terms of sum(exp(a - max(a)))): no exp of a large
        # number overflows, one max pass, and a value near the maximum keeps its digits
        code=lambda a: call("_logsumexp", a),
        shape=lambda a: (),
        arrays=True,
        source="logsumexp",
        name_hint="lse{0}",
        symbol="logΣexp",
        doc="logsumexp(a) = log(sum(exp(a))), stable; da = softmax(a) * dout = exp(a - out) * dout",
    ),
    Gate(
        "logsumexp_axis",
        operands=("a",),
        **_AXES,
        forward=lambda a, axis, keepdims: _logsumexp_axis(a, axis, keepdims),
        vjp=lambda a, out, dout, axis, keepdims: (
            exp(a - _restored(out, axis, keepdims)) * _restored(dout, axis, keepdims),
        ),
        jvp=lambda a, out, tangent, axis, keepdims: (
            array_sum(exp(a - _restored(out, axis, keepdims)) * tangent, **_along(axis, keepdims)),
        ),
        elements=lambda np, a, axis, keepdims: np.frompyfunc(sp.log, 1, 1)(
            np.sum(np.frompyfunc(sp.exp, 1, 1)(a), axis=axis, keepdims=bool(keepdims))
        ),
        code=lambda a, axis, keepdims: call("_logsumexp", a, **_along(axis, keepdims)),
        shape=drop_axis,
        arrays=True,
        source="logsumexp",
        name_hint=lambda a, axis, keepdims: f"lse{a}{_axis_text(axis)}",
        symbol="logΣexp",
        doc="logsumexp(a, axis=k), stable, keepdims=True keeping axis k with size 1; "
        "da = softmax(a, axis=k) * dout",
    ),
]


def _first_attained(a: Expr, out: Expr, axis, keepdims: Num) -> Expr:
    """1 where `a` first attains its reduction `out` along `axis`, else 0: the
    whole gradient goes to the first maximum (minimum), as max's ties do.

    Over axes a1 < ... < ak (ascending, as `_axes_resolved` writes them) "first"
    is in row-major order of the reduced elements: an element's count of those
    attaining `out` up to it is its count along ak plus, for each earlier axis
    aj, the exclusive cumulative sum along aj of the counts over the axes after
    it, cumsum(s, aj) - s; the element is first where that count is 1."""
    attained = equal(a, _restored(out, axis, keepdims))
    axes = [Num(k) for k in axis.value] if isinstance(axis, Const) else [axis]
    count = cumsum(attained, axis=axes[-1])
    for j in range(len(axes) - 2, -1, -1):
        after = axes[j + 1 :]
        along = after[0] if len(after) == 1 else Const(tuple(k.value for k in after))
        lines = array_sum(attained, axis=along, keepdims=Num(True))
        count = count + (cumsum(lines, axis=axes[j]) - lines)
    return attained * equal(count, 1)


def _extreme_elements(np, pick, a, axis, keepdims):
    """max or min along `axis` (or a tuple of axes) of an object array: a
    reduction of `pick`, which NumPy takes along one axis only, over the reduced
    axes moved to the end and made one."""
    if not isinstance(axis, tuple):
        return np.frompyfunc(pick, 2, 1).reduce(a, axis=axis, keepdims=bool(keepdims))
    axes = tuple(k % a.ndim for k in axis)
    kept = [d for k, d in enumerate(a.shape) if k not in axes]
    moved = np.moveaxis(a, axes, tuple(range(-len(axes), 0)))
    out = np.frompyfunc(pick, 2, 1).reduce(np.reshape(moved, (*kept, -1)), axis=-1)
    return np.expand_dims(out, axes) if keepdims else out


def _extreme_axis(name: str, pick, symbol: str) -> Gate:
    """max or min along an axis (or several: axis=(0, 2))."""
    meaning = {"max": _max_axis, "min": _min_axis}[name]
    return Gate(
        f"{name}_axis",
        operands=("a",),
        **_AXES,
        forward=lambda a, axis, keepdims: meaning(a, axis, keepdims),
        vjp=lambda a, out, dout, axis, keepdims: (
            _first_attained(a, out, axis, keepdims) * _restored(dout, axis, keepdims),
        ),
        jvp=lambda a, out, tangent, axis, keepdims: (
            array_sum(_first_attained(a, out, axis, keepdims) * tangent, **_along(axis, keepdims)),
        ),
        elements=lambda np, a, axis, keepdims: _extreme_elements(np, pick, a, axis, keepdims),
        code=lambda a, axis, keepdims: call(f"a{name}", a, **_along(axis, keepdims)),
        shape=drop_axis,
        arrays=True,
        source=name,
        name_hint=lambda a, axis, keepdims: f"{name}{a}{_axis_text(axis)}",
        symbol=symbol,
        doc=f"{name}(a, axis=k), keepdims=True keeping axis k with size 1; the whole gradient "
        f"goes to the first element along axis k that attains the {name}imum (over several "
        "axes, the first in row-major order of the reduced elements)",
    )


def _extreme(name: str, pick, symbol: str) -> Gate:
    """max or min of every element of an array (max(A)): the whole gradient goes
    to the first element in row-major order that attains it."""
    meaning = sp.Function(f"{name}_all")

    def first(a, out):
        attained = equal(a, out)
        flat = call("reshape", attained, call("tuple", Num(-1)))
        return attained * equal(call("reshape", cumsum(flat, axis=Num(0)), shape_of(a)), 1)

    return Gate(
        f"{name}_all",
        operands=("a",),
        forward=lambda a: meaning(a),
        vjp=lambda a, out, dout: (first(a, out) * dout,),
        jvp=lambda a, out, tangent: (array_sum(first(a, out) * tangent),),
        elements=lambda np, a: np.frompyfunc(pick, 2, 1).reduce(np.ravel(a)),
        code=lambda a: call(f"a{name}", a),
        shape=lambda a: (),
        single=True,
        arrays=True,
        source=name,
        name_hint=f"{name}{{0}}",
        symbol=symbol,
        doc=f"{name}(a) of an array, of every element; the whole gradient goes to the first "
        f"element (in row-major order) that attains the {name}imum",
    )


_NO = Num(0)  # a parameter a whole-array var or std does not have (keepdims)


def _spread(name: str, along: bool) -> Gate:
    """var or std, of every element or along an axis (keepdims too), with NumPy's
    ddof (default 0): mean((a - mean(a))**2) times n / (n - ddof), two passes."""
    std = name == "std"

    def count(a, axis):
        return _count(a, axis) if along else size(a)

    def centred(a, axis):
        return a - (array_mean(a, axis=axis, keepdims=True) if along else array_mean(a))

    def code(a, ddof, axis=None, keepdims=_NO):
        kept = _along(axis, keepdims) if along else {}
        var = array_mean(centred(a, axis) ** 2, **kept)
        if ddof.value:
            var = var * (count(a, axis) / (count(a, axis) - ddof))
        return sqrt(var) if std else var

    def slope(a, out, ddof, axis, keepdims):
        """d out / d a, elementwise (the output restored along the axis)."""
        if along:
            out = _restored(out, axis, keepdims)
        if std:  # d sqrt(var) = d var / (2 out)
            return centred(a, axis) / ((count(a, axis) - ddof) * out)
        return 2 * centred(a, axis) / (count(a, axis) - ddof)

    def vjp(a, out, dout, ddof, axis=None, keepdims=_NO):
        dout = _restored(dout, axis, keepdims) if along else dout
        return (slope(a, out, ddof, axis, keepdims) * dout,)

    def jvp(a, out, tangent, ddof, axis=None, keepdims=_NO):
        kept = _along(axis, keepdims) if along else {}
        return (array_sum(slope(a, out, ddof, axis, keepdims) * tangent, **kept),)

    def meaning_on(np, a, ddof, **kept):
        var = np.var(a, ddof=ddof, **kept)
        return np.frompyfunc(sp.sqrt, 1, 1)(var) if std else var

    if along:
        keywords, defaults = ("axis", "keepdims", "ddof"), {"keepdims": False, "ddof": 0}

        def elements(np, a, axis, keepdims, ddof):  # NumPy's own var, on SymPy elements
            return meaning_on(np, a, ddof, axis=axis, keepdims=bool(keepdims))

        def shape(a, axis, keepdims, ddof):
            return drop_axis(a, axis, keepdims)

    else:
        keywords, defaults = ("ddof",), {"ddof": 0}

        def elements(np, a, ddof):
            return meaning_on(np, a, ddof)

        def shape(a, ddof):
            return ()

    full = name + ("_axis" if along else "")
    meaning = sp.Function(full)
    return Gate(
        full,
        operands=("a",),
        params=keywords,
        keywords=keywords,
        defaults=defaults,
        forward=lambda a, **params: meaning(a, *params.values()),
        vjp=vjp,
        jvp=jvp,
        elements=elements,
        code=code,
        shape=shape,
        arrays=True,
        source=name,
        name_hint=(lambda a, *params: f"{name}{a}{_axis_text(params[0])}") if along else name + "{0}",
        axes=along,
        resolve=_axes_resolved if along else None,
        symbol=name,
        doc=f"{name}(a{', axis=k' if along else ''}, ddof=0), NumPy's: "
        + (
            "the square root of the variance; da = (a - mean) / ((n - ddof) std) * dout"
            if std
            else "mean((a - mean)**2) n / (n - ddof); da = 2 (a - mean) / (n - ddof) * dout"
        ),
    )


def _softmax_elements(np, a, axis):
    e = np.frompyfunc(sp.exp, 1, 1)(a)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_elements(np, a, axis):
    return a - np.frompyfunc(sp.log, 1, 1)(np.sum(np.frompyfunc(sp.exp, 1, 1)(a), axis=axis, keepdims=True))


# The circuits softmax and log_softmax are written as, along one axis with
# keepdims=True (1): the same axis, as written, in every reduction of one.
def _sum_exp(a, axis):
    return _sum_axis(sp.exp(a), axis, 1)


def _shifted(a, axis):
    return a - _max_axis(a, axis, 1)


_SOFTMAX_CIRCUITS = (
    # exp(a - max(a)) / sum(exp(a - max(a))) before exp(a) / sum(exp(a)), which
    # would take a - max(a) as its operand (two max passes)
    lambda a, axis: sp.exp(_shifted(a, axis)) / _sum_exp(_shifted(a, axis), axis),
    lambda a, axis: sp.exp(a) / _sum_exp(a, axis),
)
_LOG_SOFTMAX_CIRCUITS = (
    lambda a, axis: a - _logsumexp_axis(a, axis, 1),
    lambda a, axis: a - sp.log(_sum_exp(a, axis)),
    lambda a, axis: sp.log(sp.exp(a) / _sum_exp(a, axis)),
)


_GATES += [
    # prod's gradient is the product of the other elements, from exclusive cumulative
    # products from both ends (`_prod_others`): no out / a, right where elements are 0
    Gate(
        "prod",
        operands=("a",),
        forward=lambda a: _prod(a),
        vjp=lambda a, out, dout: (dout * others(a),),
        jvp=lambda a, out, tangent: (array_sum(others(a) * tangent),),
        elements=lambda np, a: np.prod(a),
        shape=lambda a: (),
        arrays=True,
        source="prod",
        name_hint="prod{0}",
        symbol="Π",
        doc="prod(a), of every element; da = dout * the product of the other elements "
        "(no division: right where elements are 0)",
    ),
    Gate(
        "prod_axis",
        operands=("a",),
        **_AXES,
        forward=lambda a, axis, keepdims: _prod_axis(a, axis, keepdims),
        vjp=lambda a, out, dout, axis, keepdims: (_restored(dout, axis, keepdims) * others(a, axis=axis),),
        jvp=lambda a, out, tangent, axis, keepdims: (
            array_sum(others(a, axis=axis) * tangent, **_along(axis, keepdims)),
        ),
        elements=lambda np, a, axis, keepdims: np.prod(a, axis=axis, keepdims=bool(keepdims)),
        code=lambda a, axis, keepdims: array_prod(a, **_along(axis, keepdims)),
        shape=drop_axis,
        arrays=True,
        source="prod",
        name_hint=lambda a, axis, keepdims: f"prod{a}{_axis_text(axis)}",
        symbol="Π",
        doc="prod(a, axis=k) (k an axis or a tuple of axes), keepdims=True keeping axis k with "
        "size 1; da = dout (axis k restored) * the product of the other elements along axis k "
        "(no division)",
    ),
    _extreme_axis("max", sp.Max, "max"),
    _extreme("max", sp.Max, "max"),
    _extreme("min", sp.Min, "min"),
    _extreme_axis("min", sp.Min, "min"),
]
_GATES += [_spread(name, along) for name in ("var", "std") for along in (False, True)]

_GATES += [
    # -- grouped array gates: a whole normalisation along an axis, one stage --
    Gate(
        "softmax",
        operands=("a",),
        params=("axis",),
        keywords=("axis",),
        defaults={"axis": -1},
        forward=lambda a, axis: _softmax(a, axis),
        # the Jacobian along the axis is diag(s) - s s^T
        vjp=lambda a, out, dout, axis: (out * (dout - array_sum(out * dout, axis=axis, keepdims=True)),),
        jvp=lambda a, out, tangent, axis: (
            out * (tangent - array_sum(out * tangent, axis=axis, keepdims=True)),
        ),
        elements=_softmax_elements,
        # exp(a - max) / sum(exp(a - max)): one max pass, no exp of a positive number
        code=lambda a, axis: call("_softmax", a, axis=axis),
        shape=same_shape,
        arrays=True,
        source="softmax",
        patterns=_SOFTMAX_CIRCUITS,
        why="no overflow for any floats (one max pass, then exp of a - max only); "
        "vjp out * (dout - sum(out * dout))",
        name_hint="softmax{0}",
        symbol="softmax",
        doc="softmax(a, axis=k) = exp(a) / sum(exp(a), axis=k) (axis -1 if left out), stable; "
        "da = out * (dout - sum(out * dout, axis=k))",
    ),
    Gate(
        "log_softmax",
        operands=("a",),
        params=("axis",),
        keywords=("axis",),
        defaults={"axis": -1},
        forward=lambda a, axis: _log_softmax(a, axis),
        vjp=lambda a, out, dout, axis: (dout - exp(out) * array_sum(dout, axis=axis, keepdims=True),),
        jvp=lambda a, out, tangent, axis: (
            tangent - array_sum(exp(out) * tangent, axis=axis, keepdims=True),
        ),
        elements=_log_softmax_elements,
        # (a - max) - log1p(the other terms of sum(exp(a - max))): no overflow, and a
        # log-probability near 0 keeps its digits
        code=lambda a, axis: call("_log_softmax", a, axis=axis),
        shape=same_shape,
        arrays=True,
        source="log_softmax",
        patterns=_LOG_SOFTMAX_CIRCUITS,
        why="no overflow for any floats (one max pass), and a log-probability near 0 keeps "
        "its digits; vjp dout - exp(out) * sum(dout)",
        name_hint="logsoftmax{0}",
        symbol="log softmax",
        doc="log_softmax(a, axis=k) = a - logsumexp(a, axis=k) (axis -1 if left out), stable; "
        "da = dout - exp(out) * sum(dout, axis=k)",
    ),
]

if any(gate.structural and gate.elements is None for gate in _GATES):
    raise GateDefinitionError("a structural gate needs its meaning on arrays, `elements`")
if any(gate.structural and gate.jvp is None for gate in _GATES):
    raise GateDefinitionError("a structural gate needs its forward-mode rule, `jvp`")
REGISTRY: Mapping[str, Gate] = MappingProxyType({gate.name: gate for gate in _GATES})
if len(REGISTRY) != len(_GATES):
    raise GateDefinitionError("two gates share a name")

BY_FUNCTION: Mapping[type, Gate] = MappingProxyType({gate.function: gate for gate in _GATES})
BY_OPERATOR: Mapping[str, Gate] = MappingProxyType({g.operator: g for g in _GATES if g.operator})
# by the source name, for a call that writes no keyword a gate requires (softmax(a) too)
BY_SOURCE: Mapping[str, Gate] = MappingProxyType(
    {g.source: g for g in _GATES if g.source and not g.required and not g.single}
)
# by the source name, for a call with one operand where another gate takes several
BY_SINGLE: Mapping[str, Gate] = MappingProxyType({g.source: g for g in _GATES if g.single})
# by the source name and the keywords a call must write (sum(a, axis=k), keepdims optional)
BY_KEYWORDS: Mapping[tuple, Gate] = MappingProxyType(
    {(g.source, g.required): g for g in _GATES if g.keywords}
)

CONSTANTS: Mapping[str, sp.Expr] = MappingProxyType({"pi": sp.pi, "E": sp.E})
# a mask used as a number is this selection of it: where(mask, 1.0, 0.0)
SELECTION: Gate = REGISTRY["where"]
# a subscript (integers, slices, None, ...), one with index arrays, a size as a number
SUBSCRIPT: Gate = REGISTRY["subscript"]
GATHER: Gate = REGISTRY["gather"]
SIZE: Gate = REGISTRY["axis_size"]


def _derivative(gate: Gate):
    def partials(args, node):
        return tuple(map(_expr, gate.local(*args, out=node)))

    return partials


# The meanings of the functions rules call that are no gate's (the gradients of
# lgamma and gamma): digamma and trigamma, SymPy's polygamma of order 0 and 1.
FUNCTIONS: Mapping[str, Callable[..., sp.Expr]] = MappingProxyType(
    {"digamma": lambda x: sp.polygamma(0, x), "trigamma": lambda x: sp.polygamma(1, x)}
)

# The derivative of every function an elementwise rule may call, from its gate:
# what `expr.diff` needs to differentiate a rule (second order); digamma's is
# trigamma (trigamma's, a third order, is none: polygamma(2, x) has no helper).
DERIVATIVES: Mapping[str, Callable] = MappingProxyType(
    {
        **{
            (g.fn or g.source): _derivative(g)
            for g in _GATES
            if not g.structural and not g.params and (g.fn or g.source) and not g.variadic and not g.mask
        },
        "digamma": lambda args, node: (trigamma(*args),),
    }
)

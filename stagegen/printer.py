"""Expression -> text. The only code that writes an expression as source.

One printer class per target: `MathPrinter` writes Python for the ``math``
backend; `SourcePrinter` writes stagegen's input language (stage formulas in
comments, the docstring of a module made from a SymPy object). Both print in
black's style directly (spaces around binary operators, ``x**2`` hugged when
both operands are simple) and with exactly the parentheses Python needs, so
that emitted lines are already black-formatted.

Gate rules are printed once per gate instance as *templates*: placeholder
symbols print as ``{0}``, ``{1}``, ``{out}`` and `fill` substitutes operand
text later, so a 100,000-stage program costs one SymPy print per distinct gate
instance, not per stage. Operand text is always an atom (a name or a
non-negative number; negative numbers are parenthesised), so substitution never
changes how an expression parses.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.printing.printer import Printer

from .errors import UnsupportedError
from .gates import DOUT, OUT, REGISTRY, ordered_max, ordered_min, slot

# Precedence levels of Python expressions, loosest first.
COND, CMP, ADD, MUL, UNARY, POW, ATOM = range(7)


def number(value: sp.Expr) -> str:
    """A SymPy constant as a Python literal (exact for integers; repr of the float)."""
    if isinstance(value, sp.Integer):
        return str(int(value))
    x = float(sp.N(value, 30))
    if not math.isfinite(x):
        raise UnsupportedError(f"the constant {value} is not a finite float")
    return repr(x)


def _simple(text: str) -> bool:
    """black's simple power operand: a name, a number or a dotted name, maybe negated."""
    text = text[1:] if text.startswith("-") else text
    if text.startswith("{") and text.endswith("}"):
        return True  # a template slot: an operand name or a non-negative number
    try:
        float(text)
        return True
    except ValueError:
        return all(part.isidentifier() for part in text.split("."))


class _Printer(Printer):
    """Shared precedence-aware printing; `_print_*` methods return (text, prec)."""

    printmethod = "_stagegen_print"
    functions: dict[str, str] = {}

    def __init__(self, slots: dict[sp.Symbol, tuple[str, int]] | None = None):
        super().__init__()
        self.slots = slots or {}
        # integer constants as float literals (not exponents): CPython's float
        # arithmetic takes its fast path only when both operands are floats
        self.floats = False

    def doprint(self, expr) -> str:
        return self._print(sp.sympify(expr))[0]

    def emptyPrinter(self, expr):
        raise UnsupportedError(f"cannot print {type(expr).__name__} ({expr})")

    def paren(self, expr, prec: int, strict: bool = False) -> str:
        text, p = self._print(expr)
        return f"({text})" if p < prec or (strict and p == prec) else text

    # -- leaves -----------------------------------------------------------
    def _print_Symbol(self, expr):
        return self.slots.get(expr, (expr.name, ATOM))

    def _print_Number(self, expr):
        text = repr(float(expr)) if self.floats and expr.is_Integer else number(expr)
        return text, UNARY if text.startswith("-") else ATOM

    def _constant(self, expr):
        return self._print_Number(expr)

    # -- arithmetic -------------------------------------------------------
    def _print_Add(self, expr):
        terms = list(expr.args)
        if not expr.free_symbols:
            return self._constant(expr)
        pos = [t for t in terms if not t.could_extract_minus_sign()]
        neg = [-t for t in terms if t.could_extract_minus_sign()]
        if pos:
            text = " + ".join([self.paren(pos[0], ADD)] + [self.paren(t, ADD, strict=True) for t in pos[1:]])
        else:
            text = "-" + self.paren(neg.pop(0), UNARY)
        for t in neg:
            text += " - " + self.paren(t, ADD, strict=True)
        return text, ADD

    def _print_Mul(self, expr):
        if not expr.free_symbols:
            return self._constant(expr)
        consts = [f for f in expr.args if not f.free_symbols]
        coeff = sp.Mul(*consts)
        if not coeff.is_Number and coeff not in (sp.pi, sp.E):
            coeff = sp.Float(sp.N(coeff, 30))  # 2/sqrt(pi) is one literal
        num, den = [], []
        for f in (f for f in expr.args if f.free_symbols):
            if f.is_Pow and f.exp.is_Number and f.exp < 0:
                den.append(f.base if f.exp == -1 else sp.Pow(f.base, -f.exp, evaluate=False))
            else:
                num.append(f)
        # Readable order of a product: sums first, then names, then the rest.
        num.sort(key=lambda f: 0 if f.is_Add else 1 if f.is_Symbol else 2)
        is_float = isinstance(coeff, sp.Float)
        negate = coeff == -1 and not is_float
        if negate and not num:
            num, negate = [sp.Integer(-1)], False  # -1 / den
        elif not negate and (coeff != 1 or is_float or not num):
            num.insert(0, coeff)
        first, prec = self._print(num[0])
        if negate:
            # -x * y is (-x) * y in Python: the same value, as a hand writes it;
            # black writes a negated power as -(x**2).
            first = "-" + (first if prec > POW else f"({first})")
            prec = UNARY
        parts = [first if prec >= MUL else f"({first})"] + [self.paren(f, MUL, strict=True) for f in num[1:]]
        text = " * ".join(parts)
        if den:
            if len(den) == 1:
                text += " / " + self.paren(den[0], MUL, strict=True)
            else:
                text += " / (" + " * ".join(self.paren(f, MUL, strict=True) for f in den) + ")"
        return text, MUL if len(parts) > 1 or den else prec

    def _print_Pow(self, expr):
        base, exp = expr.args
        if not expr.free_symbols:
            return self._constant(expr)
        if exp == 1:
            return self._print(base)
        if exp.is_Number and exp < 0:
            return self._print_Mul(sp.Mul(1, expr, evaluate=False))
        if exp == sp.S.Half:
            return self.call("sqrt", [base])
        return self.power(base, exp)

    def power(self, base, exp):
        b, bp = self._print(base)
        floats, self.floats = self.floats, False  # x**2 stays an integer power
        e, ep = self._print(exp)
        self.floats = floats
        # black hugs ** when both operands are simple: names, numbers, -number.
        simple = _simple(b) and _simple(e)
        b = b if bp > POW else f"({b})"
        e = e if ep >= UNARY else f"({e})"
        return (f"{b}**{e}" if simple else f"{b} ** {e}"), POW

    # -- functions and conditions ----------------------------------------
    def call(self, name: str, args) -> tuple[str, int]:
        return f"{self.functions.get(name, name)}({', '.join(self._print(a)[0] for a in args)})", ATOM

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in ("matmul", "transpose"):  # SymPy does not dispatch undefined functions by name
            return getattr(self, f"_print_{name}")(expr)
        if name not in self.functions:
            raise UnsupportedError(f"no {self.__class__.__name__} form for the function {name}")
        return self.call(name, expr.args)

    def _print_Relational(self, expr):
        lhs, rhs = expr.args
        return f"{self.paren(lhs, ADD)} {expr.rel_op} {self.paren(rhs, ADD)}", CMP

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise UnsupportedError("a Piecewise without a default branch")
        text = self.paren(last, COND)
        for value, cond in reversed(pieces):
            text = (
                f"{self.paren(value, COND, strict=True)} if {self.paren(cond, COND, strict=True)} else {text}"
            )
        return text, COND

    def _print_matmul(self, expr):
        a, b = expr.args
        return f"{self.paren(a, MUL)} @ {self.paren(b, MUL, strict=True)}", MUL

    def _print_transpose(self, expr):
        return f"{self.paren(expr.args[0], ATOM)}.T", ATOM

    def _print_MinMaxBase(self, expr):
        return self.call(type(expr).__name__, expr.args)

    def _print_Heaviside(self, expr):
        # The step of a kink, with its value at 0 fixed by the gate (0 or 1).
        arg, at_zero = expr.args
        lhs, rhs = self._split(arg)
        op = ">=" if at_zero == 1 else ">"
        return f"{self.paren(lhs, ADD)} {op} {self.paren(rhs, ADD)}", CMP

    def _print_sign(self, expr):
        lhs, rhs = self._split(expr.args[0])
        lhs, rhs = self.paren(lhs, ADD), self.paren(rhs, ADD)
        return f"({lhs} > {rhs}) - ({lhs} < {rhs})", ADD

    @staticmethod
    def _split(arg):
        """arg as lhs - rhs with both sides written positively (x - y, not x + -y)."""
        terms = sp.Add.make_args(arg)
        pos = [t for t in terms if not t.could_extract_minus_sign()]
        neg = [-t for t in terms if t.could_extract_minus_sign()]
        return sp.Add(*pos, evaluate=False) if pos else sp.Integer(0), (
            sp.Add(*neg, evaluate=False) if neg else sp.Integer(0)
        )


class _ModulePrinter(_Printer):
    """A backend's printer: functions and constants from its module (math or
    numpy), noting whether the printed code uses the module at all."""

    def __init__(self, slots=None, module: str = "math"):
        super().__init__(slots)
        self.module = module
        self.uses_module = False

    def call(self, name, args):
        self.uses_module |= self.functions.get(name, "").startswith(self.module + ".")
        return super().call(name, args)

    def _constant(self, expr):
        if expr in (sp.pi, sp.E):
            self.uses_module = True
            return f"{self.module}.{'pi' if expr is sp.pi else 'e'}", ATOM
        return super()._constant(expr)

    _print_Pi = _print_Exp1 = _constant


class MathPrinter(_ModulePrinter):
    """Python source for the ``math`` backend (module alias configurable)."""

    backend = "math"

    def __init__(self, slots=None, module: str = "math"):
        super().__init__(slots, module)
        mathfuncs = [
            "exp",
            "log",
            "sqrt",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "asinh",
            "acosh",
            "atanh",
            "erf",
            "expm1",
            "log1p",
            "pow",
        ]
        self.functions = {name: f"{module}.{name}" for name in mathfuncs}
        self.functions.update({"Abs": "abs", "ordered_max": "max", "ordered_min": "min"})

    def power(self, base, exp):
        # A non-integer power of a negative float is complex in Python; math.pow
        # raises a domain error instead, as the hand-written code would.
        if exp.is_Integer or (exp.is_Float and float(exp).is_integer()):
            return super().power(base, exp)
        return self.call("pow", [base, exp])


class NumpyPrinter(_ModulePrinter):
    """Python source for the ``numpy`` backend: elementwise ufuncs, array operations."""

    backend = "numpy"
    # Array operations: the format for each argument count (``{0}`` the array).
    ARRAY = {
        "ones_like": {1: "{np}.ones_like({0})"},
        "full_like": {2: "{np}.full_like({0}, {1})"},
        "expand_dims": {2: "{np}.expand_dims({0}, {1})"},
        "axis_size": {1: "{0}.size", 2: "{0}.shape[{1}]"},
        "sum": {1: "{np}.sum({0})"},
        "sum_axis": {2: "{np}.sum({0}, axis={1})"},
        "mean": {1: "{np}.mean({0})"},
        "mean_axis": {2: "{np}.mean({0}, axis={1})"},
        "amax": {
            1: "{np}.max({0})",
            2: "{np}.max({0}, axis={1})",
            3: "{np}.max({0}, axis={1}, keepdims=True)",
        },
    }

    def __init__(self, slots=None, module: str = "np"):
        super().__init__(slots, module)
        ufuncs = ["exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh", "expm1", "log1p", "sign"]
        self.functions = {name: f"{module}.{name}" for name in ufuncs}
        self.functions.update(
            {
                "asin": f"{module}.arcsin",
                "acos": f"{module}.arccos",
                "atan": f"{module}.arctan",
                "asinh": f"{module}.arcsinh",
                "acosh": f"{module}.arccosh",
                "atanh": f"{module}.arctanh",
                "Abs": f"{module}.abs",
                "erf": "_erf",
            }
        )

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in ("ordered_max", "ordered_min"):  # NumPy's maximum is binary
            fn = "maximum" if name == "ordered_max" else "minimum"
            text = self._print(expr.args[0])[0]
            for arg in expr.args[1:]:
                text = f"{self.module}.{fn}({text}, {self._print(arg)[0]})"
            self.uses_module = True
            return text, ATOM
        if name == "if_all":  # a if every element meets the condition, else b
            cond, a, b = expr.args
            self.uses_module = True
            return (
                f"{self.paren(a, COND, strict=True)} if {self.module}.all({self._print(cond)[0]}) "
                f"else {self.paren(b, COND)}",
                COND,
            )
        if name in self.ARRAY:
            form = self.ARRAY[name][len(expr.args)]
            if "{np}" in form:
                self.uses_module = True
            args = [self._print(a)[0] for a in expr.args]
            return form.format(*args, np=self.module), ATOM
        return super()._print_Function(expr)

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        text = self._print(last)[0]
        for value, cond in reversed(pieces):
            text = f"{self.module}.where({self._print(cond)[0]}, {self._print(value)[0]}, {text})"
        self.uses_module = True
        return text, ATOM

    def _print_sign(self, expr):
        return self.call("sign", expr.args)


class SourcePrinter(_Printer):
    """stagegen's input language: exp(x), sigmoid(y), x**2.5, max(a, b)."""

    functions = {
        "Abs": "abs",
        "Max": "max",
        "Min": "min",
        "ordered_max": "max",
        "ordered_min": "min",
        "exp": "exp",
        "log": "log",
        "sin": "sin",
        "cos": "cos",
        "tan": "tan",
        "asin": "asin",
        "acos": "acos",
        "atan": "atan",
        "sinh": "sinh",
        "cosh": "cosh",
        "tanh": "tanh",
        "asinh": "asinh",
        "acosh": "acosh",
        "atanh": "atanh",
        "erf": "erf",
    }
    # a gate's own function class prints as the name the input language calls it by
    functions.update({gate.name: gate.source for gate in REGISTRY.values() if gate.source})

    def _print_Function(self, expr):
        gate = REGISTRY.get(type(expr).__name__)
        if gate is not None and gate.keywords:  # sum(a, axis=0)
            n = gate.arity(len(expr.args))
            args = [self._print(a)[0] for a in expr.args[:n]]
            args += [f"{k}={self._print(v)[0]}" for k, v in zip(gate.keywords, expr.args[n:], strict=True)]
            return f"{gate.source}({', '.join(args)})", ATOM
        return super()._print_Function(expr)

    def _constant(self, expr):
        if expr is sp.pi or expr is sp.E:
            return str(expr), ATOM
        return super()._constant(expr)

    _print_Pi = _print_Exp1 = _constant


def template(printer: _Printer, expr: sp.Expr, kinds: str) -> tuple[str, int]:
    """`expr` printed with operand `i` as ``{i}`` and the output as ``{out}``.

    `kinds` has one letter per operand: ``v`` a value name or non-negative
    number, ``n`` a negative number (printed where a unary minus may stand).
    Returns the text and its precedence.
    """
    printer.slots = {slot(i): ("{%d}" % i, UNARY if kind == "n" else ATOM) for i, kind in enumerate(kinds)}
    printer.slots[OUT] = ("{out}", ATOM)
    printer.slots[DOUT] = ("{dout}", ATOM)
    return printer._print(sp.sympify(expr))


class StagePrinter:
    """Text of stages and their local gradients, one SymPy print per gate instance."""

    def __init__(self, backend: str = "math", module: str = "math"):
        self.backend = backend
        self.code = (NumpyPrinter if backend == "numpy" else MathPrinter)(module=module)
        self.source = SourcePrinter()
        self._cache: dict[tuple, tuple[str, int]] = {}

    def _text(self, stage, which, operands: list[str], out: str = "", dout: str = "") -> tuple[str, int]:
        kinds = "".join("n" if t.startswith("-") else "v" for t in operands)
        key = (stage.gate, len(stage.operands), stage.params, kinds, which)
        if key not in self._cache:
            gate = REGISTRY[stage.gate]
            inst = gate.instance(len(stage.operands), stage.params)
            if which == "forward":
                self._cache[key] = template(self.code, inst.emitted(self.backend), kinds)
            elif which == "source":
                expr = (
                    inst.forward
                    if gate.source is None
                    else gate.function(*[slot(i) for i in range(len(stage.operands))], *stage.params)
                )
                self._cache[key] = template(self.source, expr, kinds)
            else:
                operand, unit, floats = which
                rule = (inst.local or inst.vjp)[operand]
                self.code.floats = floats
                self._cache[key] = template(self.code, rule.subs(DOUT, 1) if unit else rule, kinds)
                self.code.floats = False
        text, prec = self._cache[key]
        return text.format(*operands, out=out, dout=dout), prec

    def constant(self, value: sp.Expr, source: bool = False) -> str:
        return (self.source if source else self.code).doprint(value)

    def forward(self, stage, operands: list[str]) -> str:
        """The emitted right-hand side of `stage` (a safe form where the gate has one)."""
        return self._text(stage, "forward", operands)[0]

    def display(self, stage, operands: list[str]) -> str:
        """The stage in stagegen's input language: sigmoid(y), x + y, xpy**2."""
        return self._text(stage, "source", operands)[0]

    def local(
        self,
        stage,
        operand: int,
        operands: list[str],
        out: str,
        dout: str = "",
        unit: bool = False,
        floats: bool = False,
    ) -> tuple[str, int]:
        """The local gradient of `stage` for operand `operand`, with its precedence;
        for a structural gate, the whole contribution (reading the adjoint `dout`,
        or with `unit`, the literal 1 in its place, simplified away). `floats`:
        the rule's integer constants written as floats (``1.0 - out``)."""
        return self._text(stage, (operand, unit, floats), operands, out, dout)

    @staticmethod
    def floating(stage, operand: int, floats: bool = False) -> bool:
        """Whether the local gradient's text evaluates to a float by itself: a
        comparison such as (x > 0) is a bool, sign(x) and integer literals are
        ints (unless written as floats)."""
        instance = REGISTRY[stage.gate].instance(len(stage.operands), stage.params)
        rule = (instance.local or instance.vjp)[operand]
        return not ((rule.is_Integer and not floats) or rule.has(sp.Heaviside, sp.sign))

    def reduce(self, text: str, steps) -> str:
        """`text` summed over axes, as NumPy writes it: np.sum(g, axis=0)."""
        for axes, keep in steps:
            axis = str(axes[0]) if len(axes) == 1 else "(" + ", ".join(map(str, axes)) + ")"
            text = f"{self.code.module}.sum({text}, axis={axis}{', keepdims=True' if keep else ''})"
        return text


__all__ = [
    "MathPrinter",
    "NumpyPrinter",
    "SourcePrinter",
    "StagePrinter",
    "template",
    "number",
    "ordered_max",
    "ordered_min",
]

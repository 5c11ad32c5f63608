"""A SymPy expression written in stagegen's input language: the source shown
in the docstring of a module made from a SymPy object.

Part of the front door, like `parse.from_sympy`: it reads SymPy's encoding
(sums and products with their signs and coefficients, powers, functions) and
writes the input language with exactly the parentheses Python needs, in
black's style. It recurses once per level of nesting, so it is given only
expressions that are small and shallow (`shown`); a deeper one is shown as its
stages by the renderer. Nothing here writes generated code.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.printing.printer import Printer

from .errors import UnsupportedError
from .expr import Num
from .gates import REGISTRY

SIZE_LIMIT = 5_000  # nodes of a SymPy expression, counted as a tree, shown as one expression
DEPTH_LIMIT = 40  # deeper SymPy expressions are shown as their stages
TEXT_LIMIT = 20_000  # characters of the shown source


def shown(statements) -> tuple[str, ...] | None:
    """``name = expression`` per statement, or None when the expressions are too
    large, too deep or hold something the input language cannot write."""
    size, depth = _tree_shape([s.expr for s in statements])
    if size > SIZE_LIMIT or depth > DEPTH_LIMIT:
        return None
    try:
        printer = SourcePrinter()
        lines = tuple(f"{s.name} = {printer.doprint(s.expr)}" for s in statements)
    except (UnsupportedError, TypeError, ValueError, ArithmeticError):
        # something the input language cannot write as it stands (a constant
        # SymPy cannot evaluate, 1/0): the docstring shows the stages instead
        return None
    return lines if sum(map(len, lines)) <= TEXT_LIMIT else None


def _tree_shape(exprs) -> tuple[int, int]:
    """Nodes of SymPy expressions counted as trees (a shared subexpression once
    per use), and the deepest nesting, in time linear in the number of distinct
    nodes. Nodes are told apart by identity: SymPy's == compares equal but
    distinct objects as trees."""
    shapes: dict[int, tuple[int, int]] = {}
    stack = list(exprs)
    while stack:
        e = stack[-1]
        if id(e) in shapes:
            stack.pop()
            continue
        pending = [a for a in e.args if id(a) not in shapes]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        kids = [shapes[id(a)] for a in e.args]
        shapes[id(e)] = (1 + sum(k[0] for k in kids), 1 + max((k[1] for k in kids), default=0))
    return sum(shapes[id(e)][0] for e in exprs), max((shapes[id(e)][1] for e in exprs), default=0)


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
    try:
        float(text)
        return True
    except ValueError:
        return all(part.isidentifier() for part in text.split("."))


class _Printer(Printer):
    """Shared precedence-aware printing; `_print_*` methods return (text, prec)."""

    printmethod = "_stagegen_print"
    functions: dict[str, str] = {}

    def __init__(self):
        super().__init__()

    def doprint(self, expr) -> str:
        return self._print(sp.sympify(expr))[0]

    def emptyPrinter(self, expr):
        raise UnsupportedError(f"cannot print {type(expr).__name__} ({expr})")

    def paren(self, expr, prec: int, strict: bool = False) -> str:
        text, p = self._print(expr)
        return f"({text})" if p < prec or (strict and p == prec) else text

    # -- leaves -----------------------------------------------------------
    def _print_Symbol(self, expr):
        return expr.name, ATOM

    def _print_Number(self, expr):
        text = number(expr)
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
        e, ep = self._print(exp)
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
        "erfc": "erfc",
        "atan2": "atan2",
        "sign": "sign",
        "floor": "floor",
        "ceiling": "ceil",
    }
    # a gate's own function class prints as the name the input language calls it by
    functions.update({gate.name: gate.source for gate in REGISTRY.values() if gate.source})

    def _print_sign(self, expr):  # a gate of the input language, not a comparison
        return self._print_Function(expr)

    def _print_Function(self, expr):
        gate = REGISTRY.get(type(expr).__name__)
        if gate is not None and gate.keywords:  # sum(a, axis=0)
            n = gate.arity(len(expr.args))
            args = [self._print(a)[0] for a in expr.args[:n]]
            params = {k: Num(int(v)) for k, v in zip(gate.keywords, expr.args[n:], strict=True)}
            args += [f"{k}={v.value!r}" for k, v in gate.written(params).items()]
            return f"{gate.source}({', '.join(args)})", ATOM
        return super()._print_Function(expr)

    def _constant(self, expr):
        if expr is sp.pi or expr is sp.E:
            return str(expr), ATOM
        return super()._constant(expr)

    _print_Pi = _print_Exp1 = _constant

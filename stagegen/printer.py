"""Expressions -> Python text. The only code that writes an expression as source.

One iterative printer for every target. What differs between targets is data,
a `Syntax`: how a function is written (by convention ``math.exp``, ``np.exp``
or the input language's ``exp``, with a table of exceptions), which functions
expand into others (``sign`` in the math backend), postfix forms (``a.T``),
named constants, and whether non-integer powers are a call (``math.pow``).
The text is black's style (spaces around binary operators, ``x**2`` hugged
when both operands are simple, ``-(x**2)``) with exactly the parentheses
Python needs, so emitted lines are already black-formatted.

Rules are printed once per gate instance as templates: operand slots print as
``{0}``, ``{1}``, the output as ``{out}``, the upstream adjoint as ``{dout}``,
and `fill` substitutes names later (an operand's text is always a name or a
number, so substitution never changes how an expression parses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .expr import (
    OPERATORS,
    Aux,
    Call,
    Compare,
    Const,
    Dout,
    Expr,
    Named,
    Num,
    Out,
    Ref,
    Select,
    Slice,
    Slot,
    Subscript,
    nodes,
    rebuild,
)

# Precedence levels of Python expressions, loosest first.
COND, OR, AND, NOT, CMP, BOR, BAND, ADD, MUL, UNARY, POW, ATOM = range(12)
_BINARY = {"add": ADD, "sub": ADD, "mul": MUL, "div": MUL, "floordiv": MUL, "matmul": MUL}
# logical operators, where a target writes them as operators (`Syntax.logic`)
_LOGIC = {"and": AND, "or": OR, "not": NOT, "&": BAND, "|": BOR, "~": UNARY}


@dataclass(frozen=True)
class Syntax:
    """How one target writes functions and constants."""

    prefix: str  # a function is written prefix + its name ("math.exp"); "" for the input language
    functions: Mapping[str, str] = field(default_factory=dict)  # exceptions: fn -> name ("{m}" the alias)
    expansions: Mapping[str, Callable[..., Expr]] = field(default_factory=dict)  # fn -> a form of others
    postfix: Mapping[str, str] = field(default_factory=dict)  # fn -> "{0}.T", "{0}.shape[{1}]"
    constants: Mapping[str, str] = field(default_factory=dict)  # named constant -> text ("{m}.pi")
    power_call: str = ""  # a non-integer power is this function ("pow"), else **
    # how a comparison reads as a number, where a boolean is not one ("{m}.astype({0}, {m}.float64)";
    # "{d}": the name of the float dtype of the arguments, where the module takes it from them)
    mask: str = ""
    # a per-element conditional (`expr.where`) of arrays ("{m}.where({0}, {1}, {2})"; its
    # condition is not a mask); without it, a Python conditional
    where: str = ""
    # masks' logical_and, logical_or and logical_not written as Python's operators
    # ("and", "or", "not"; "&", "|", "~"); without an entry, a call (np.logical_and)
    logic: Mapping[str, str] = field(default_factory=dict)
    # a subscript names every axis, ``...`` added where it has none (``x[0, ...]``):
    # the array API standard leaves ``x[0]`` of a matrix unspecified
    every_axis: bool = False

    def function(self, fn: str, module: str) -> str:
        name = self.functions.get(fn)
        return (self.prefix + fn if name is None else name).format(m=module)


@dataclass
class Printer:
    """Text of expressions for one target, module alias and leaf names.

    `leaves` names slots, the output, the adjoint, auxiliaries and references;
    `used` collects every function name written (for imports and helpers)."""

    syntax: Syntax
    module: str = ""
    leaves: Mapping[Expr, tuple[str, int]] = field(default_factory=dict)
    floats: bool = False  # integers written as floats (except exponents): CPython's float fast path
    used: set[str] = field(default_factory=set)
    dtype: str = ""  # the name of the arguments' float dtype, where constants and masks name it ("{d}")
    _conditions: set[int] = field(default_factory=set, repr=False)  # ids of where's conditions
    numbers: frozenset = frozenset()  # a template's slots that numbers fill

    def text(self, expr: Expr) -> str:
        return self.print(expr)[0]

    def print(self, expr: Expr) -> tuple[str, int]:
        """(text, precedence) of `expr`, without recursion."""
        expansions = self.syntax.expansions
        if expansions:
            expr = rebuild(
                expr,
                lambda node, kids: (
                    expansions[node.fn](*kids) if isinstance(node, Call) and node.fn in expansions else None
                ),
            )
        done: dict[int, tuple[str, int]] = {}
        order = list(nodes(expr))
        # the conditions of per-element conditionals stay booleans
        self._conditions = {id(n.cond) for n in order if isinstance(n, Select) and n.each}
        for node in order:
            done[id(node)] = self._node(node, done)
        return done[id(expr)]

    def _node(self, node: Expr, done) -> tuple[str, int]:
        def sub(e: Expr) -> tuple[str, int]:
            return done[id(e)]

        def paren(e: Expr, prec: int, strict: bool = False) -> str:
            text, p = done[id(e)]
            return f"({text})" if p < prec or (strict and p == prec) else text

        if isinstance(node, (Slot, Out, Dout, Aux, Ref)):
            found = self.leaves.get(node)
            if found is None and isinstance(node, Ref):
                return node.name, ATOM
            assert found is not None, f"no name for {node}"
            return found
        if isinstance(node, Num):
            return self._number(node)
        if isinstance(node, Const):  # a tuple parameter: transpose's axes
            return repr(node.value), ATOM
        if isinstance(node, Named):
            return self._constant(node.name), ATOM
        if isinstance(node, Compare):
            text = f"{paren(node.a, ADD)} {node.op} {paren(node.b, ADD)}"
            if self.syntax.mask and id(node) not in self._conditions and not node.boolean:
                mask = self.syntax.mask.format(text, m=self.module, d=self.dtype)
                self.used.add(mask.split("(", 1)[0])
                return mask, ATOM
            return text, CMP
        if isinstance(node, Select) and node.each and self.syntax.where:
            a, b = sub(node.a)[0], sub(node.b)[0]
            if self.syntax.mask and self._numeric(node.a) and self._numeric(node.b):
                # the standard's where takes one Python number at most
                if (node.a, node.b) == (Num(1.0), Num(0.0)):
                    text = self.syntax.mask.format(sub(node.cond)[0], m=self.module, d=self.dtype)
                    self.used.add(text.split("(", 1)[0])
                    return text, ATOM
                a = self.syntax.mask.format(a, m=self.module, d=self.dtype)
                self.used.add(a.split("(", 1)[0])
            text = self.syntax.where.format(sub(node.cond)[0], a, b, m=self.module)
            self.used.add(text.split("(", 1)[0])
            return text, ATOM
        if isinstance(node, Select):
            cond, a, b = paren(node.cond, COND, True), paren(node.a, COND, True), paren(node.b, COND)
            return f"{a} if {cond} else {b}", COND
        if isinstance(node, Subscript):
            items = ", ".join("None" if i is None else sub(i)[0] for i in node.index)
            if self.syntax.every_axis and node.open:
                items += ", ..."
            return f"{paren(node.value, ATOM)}[{items}]", ATOM
        if isinstance(node, Slice):
            ends = (node.start, node.stop) if node.step is None else (node.start, node.stop, node.step)
            parts = ["" if e is None else sub(e)[0] for e in ends]
            # black's spacing: a colon between parts other than names and numbers is spaced
            simple = all(e is None or isinstance(e, (Num, Slot, Ref, Out)) for e in ends)
            return (":".join(parts) if simple else " : ".join(parts).strip()), ATOM
        assert isinstance(node, Call), node
        fn, args = node.fn, node.args
        if fn in _BINARY:
            prec = _BINARY[fn]
            return f"{paren(args[0], prec)} {OPERATORS[fn]} {paren(args[1], prec, True)}", prec
        if fn in self.syntax.logic:
            op = self.syntax.logic[fn]
            prec = _LOGIC[op]
            if len(args) == 1:
                return f"{op}{' ' if op.isalpha() else ''}{paren(args[0], prec)}", prec
            return f"{paren(args[0], prec)} {op} {paren(args[1], prec, True)}", prec
        if fn == "neg":
            text, prec = sub(args[0])
            return "-" + (text if prec > POW else f"({text})"), UNARY
        if fn == "pow":
            return self._power(node, sub, paren)
        if fn == "paren":  # parentheses a reader expects, though Python does not need them
            return f"({sub(args[0])[0]})", ATOM
        if fn == "tuple":
            items = [sub(a)[0] for a in args]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")", ATOM
        if fn == "list":
            return "[" + ", ".join(sub(a)[0] for a in args) + "]", ATOM
        if fn in self.syntax.postfix:
            texts = [paren(a, ATOM) for a in args]
            return self.syntax.postfix[fn].format(*texts), ATOM
        return self._call(fn, [sub(a)[0] for a in args], [(k, sub(v)[0]) for k, v in node.keywords])

    def _call(self, fn: str, args: list[str], keywords: list[tuple[str, str]]) -> tuple[str, int]:
        name = self.syntax.function(fn, self.module)
        self.used.add(name)
        return f"{name}({', '.join(args + [f'{k}={v}' for k, v in keywords])})", ATOM

    def _numeric(self, node: Expr) -> bool:
        """A number, or a template's slot that a number fills."""
        return isinstance(node, Num) or node in self.numbers

    def _constant(self, name: str) -> str:
        text = self.syntax.constants[name].format(m=self.module, d=self.dtype)
        if "." in text:
            self.used.add(text)
        return text

    def _number(self, node: Num) -> tuple[str, int]:
        if node.name:
            return self._constant(node.name), ATOM
        value = node.value
        if isinstance(value, bool):
            return str(value), ATOM
        if isinstance(value, int):
            text = repr(float(value)) if self.floats else str(value)
        else:
            value = float(value)  # a fraction prints as the float nearest to it
            if not math.isfinite(value):
                raise ValueError(f"the constant {node.value!r} is not a finite float")
            text = repr(value)
        return text, UNARY if text.startswith("-") else ATOM

    def _power(self, node: Call, sub, paren) -> tuple[str, int]:
        base, exp = node.args
        if self.syntax.power_call and not (isinstance(exp, Num) and float(exp.value).is_integer()):
            # a non-integer power of a negative float is complex in Python; the
            # target's function raises a domain error instead
            return self._call(self.syntax.power_call, [sub(base)[0], sub(exp)[0]], [])
        b, bp = sub(base)
        # the exponent keeps its integers (x**2), whatever `floats` says
        e, ep = replace(self, floats=False).print(exp) if self.floats else sub(exp)
        b = b if bp > POW else f"({b})"
        e = e if ep >= UNARY else f"({e})"
        # black hugs ** between simple operands; in a chain x ** y ** z (no
        # parentheses) the operand right of this ** is the next base, y
        right = e
        while isinstance(exp, Call) and exp.fn == "pow" and ep == POW and not self.floats:
            exp = exp.args[0]
            right, ep = sub(exp)
            right = right if ep > POW else f"({right})"
        return (f"{b}**{e}" if _simple(b) and _simple(right) else f"{b} ** {e}"), POW


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


def template_leaves(kinds: str) -> dict[Expr, tuple[str, int]]:
    """Leaf names of a template: operand i as ``{i}`` (``kinds[i]`` is ``n`` for
    a negative number, which prints where a unary minus may stand), the output
    as ``{out}``, the adjoint as ``{dout}``, auxiliary k as ``{aux_k}``."""
    leaves: dict[Expr, tuple[str, int]] = {
        Slot(i): ("{%d}" % i, UNARY if kind == "n" else ATOM) for i, kind in enumerate(kinds)
    }
    leaves[Out()] = ("{out}", ATOM)
    leaves[Dout()] = ("{dout}", ATOM)
    leaves[Ref("{like}")] = ("{like}", ATOM)
    return leaves


class Forms:
    """Forms printed for one target: each once per form and operand kinds, as a
    template, then filled with the operands' text and the names of the output
    (``{out}``), the adjoint (``{dout}``) and a value to take the shape of
    (``{like}``). Numbers among the operands are printed here too."""

    def __init__(self, syntax: Syntax, module: str = "", dtype: str = ""):
        self.printer = Printer(syntax, module, dtype=dtype)
        self.templates: dict[tuple, str] = {}

    @property
    def used(self) -> set[str]:
        return self.printer.used

    def operand(self, op) -> str:
        """An operand's text: a name as it is, a number printed."""
        return self.printer.text(op) if isinstance(op, Num) else op

    def fill(
        self, form: Expr, operands, out: str = "", dout: str = "", like: str = "", floats: bool = False
    ) -> str:
        texts = [self.operand(op) for op in operands]
        # n: a negative number, c: another number, v: a name
        kinds = "".join(
            "n" if t.startswith("-") else "c" if isinstance(op, Num) else "v"
            for t, op in zip(texts, operands, strict=True)
        )
        key = (id(form), kinds, floats)
        if key not in self.templates:
            # forms live in the gate registry's instances and the planner: ids are stable
            self.printer.leaves, self.printer.floats = template_leaves(kinds), floats
            self.printer.numbers = frozenset(Slot(i) for i, k in enumerate(kinds) if k != "v")
            self.templates[key] = (self.printer.text(form), form)
            self.printer.leaves, self.printer.floats, self.printer.numbers = {}, False, frozenset()
        return self.templates[key][0].format(*texts, out=out, dout=dout, like=like)


__all__ = [
    "Printer",
    "Syntax",
    "Forms",
    "template_leaves",
    "COND",
    "OR",
    "AND",
    "NOT",
    "CMP",
    "BOR",
    "BAND",
    "ADD",
    "MUL",
    "UNARY",
    "POW",
    "ATOM",
]

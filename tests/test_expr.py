"""stagegen's expression language: folding, printing and differentiation.

Printing is checked against Python itself (the printed text evaluates to the
value of the expression, with exactly the parentheses Python needs) and
against black (the text is black's style); `diff` against SymPy's
derivative of the same expression (`verify.to_sympy`), numerically at random
points.
"""

from __future__ import annotations

import math
import random

import black
import mpmath
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from stagegen.backends import ARRAY, MATH, NUMPY, SOURCE
from stagegen.expr import (
    DOUT,
    OUT,
    Call,
    Num,
    Ref,
    Select,
    Slice,
    Slot,
    Subscript,
    call,
    diff,
    function,
    neg,
    nodes,
    select,
    substitute,
    where,
)
from stagegen.gates import DERIVATIVES, slot
from stagegen.printer import Forms, Printer
from stagegen.verify import to_sympy

x, y, z = Ref("x"), Ref("y"), Ref("z")
exp, log, sin, sqrt = function("exp"), function("log"), function("sin"), function("sqrt")


def text(expr, syntax=SOURCE, module="") -> str:
    return Printer(syntax, module).text(expr)


@pytest.mark.parametrize(
    "expr, expected",
    [
        (-(x**2), "-(x**2)"),
        (x**-2, "x**-2"),
        (x ** (y - 1), "x ** (y - 1)"),
        ((x + y) * z, "(x + y) * z"),
        (x - (y - z), "x - (y - z)"),
        (x - (y + z), "x - (y + z)"),
        ((x - y) - z, "x - y - z"),
        (x / (y * z), "x / (y * z)"),
        (x / y * z, "x / y * z"),
        (-x * y, "-x * y"),
        (-(x * y), "-(x * y)"),
        ((-x) ** 2, "(-x) ** 2"),
        (x**y**z, "x**y**z"),
        (x**y ** sin(z), "x**y ** sin(z)"),
        (sin(x) ** y**z, "sin(x) ** y**z"),
        ((x**y) ** z, "(x**y) ** z"),
        (Num(2) * exp(-(x**2)), "2 * exp(-(x**2))"),
        ((x > 0) * (y >= x), "(x > 0) * (y >= x)"),
        ((x > 0) - (x < 0), "(x > 0) - (x < 0)"),
        (
            select(x > -700.0, 1.0 / (1.0 + exp(-x)), exp(x)),
            "1.0 / (1.0 + exp(-x)) if x > -700.0 else exp(x)",
        ),
        (select(x > 0, select(y > 0, x, y), z) + 1, "((x if y > 0 else y) if x > 0 else z) + 1"),
        (Num(0.1) + Num(0.2) * x, "0.1 + 0.2 * x"),
        (x * 0.30000000000000004, "x * 0.30000000000000004"),
        (Subscript(x, (Num(0), Slice(Num(1), Num(3)))), "x[0, 1:3]"),
        (Subscript(x + y, (Slice(), None)), "(x + y)[:, None]"),
        (call("sum", x, axis=Num(1), keepdims=Num(True)), "sum(x, axis=1, keepdims=True)"),
        (call("tuple", 0, 1), "(0, 1)"),
    ],
)
def test_printing_uses_exactly_the_parentheses_python_needs(expr, expected):
    assert text(expr) == expected
    assert black.format_str(f"f = {expected}\n", mode=black.Mode()) == f"f = {expected}\n"


def test_folding_is_exact_and_only_exact():
    assert x**1 is x and (x * 1) is x and (1 * x) is x and (x + 0) is x
    assert (Num(2) - 1) == Num(1) and (Num(0.5) - 1) == Num(-0.5)
    assert x * 1.0 != x  # 1.0 * x keeps its float
    assert neg(neg(x)) is x and x + -y == x - y and -x + y == y - x and x - -y == x + y
    assert x * -1 == -x and 0 * exp(x) == Num(0)
    assert Num(2) != Num(2.0) and Num(1) != Num(True)
    assert substitute((1 - OUT) * OUT * DOUT, {DOUT: Num(1)}) == (1 - OUT) * OUT


def test_backends_write_the_same_form_their_way():
    form = call("max", Slot(0), Slot(1), 0.0) + call("asin", Slot(0))
    assert Forms(MATH.syntax, "math").fill(form, ["a", "b"]) == "max(a, b, 0.0) + math.asin(a)"
    assert (
        Forms(NUMPY.syntax, "np").fill(form, ["a", "b"]) == "np.maximum(np.maximum(a, b), 0.0) + np.arcsin(a)"
    )
    assert Forms(SOURCE).fill(form, ["a", "b"]) == "max(a, b, 0.0) + asin(a)"
    assert text(call("sign", x), MATH.syntax, "math") == "1.0 if x > 0 else -1.0 if x < 0 else 0.0"
    # a per-element choice: a Python conditional of floats, np.where of arrays (its
    # condition a boolean, never the array backend's float mask)
    choice = where(x > 0, x, 1.0)
    assert text(choice, MATH.syntax, "math") == "x if x > 0 else 1.0"
    assert text(choice, NUMPY.syntax, "np") == "np.where(x > 0, x, 1.0)"
    assert Printer(ARRAY.syntax, "xp", dtype="dtype").text(choice * (x > 0)) == (
        "xp.where(x > 0, x, 1.0) * xp.asarray(x > 0, dtype=dtype)"
    )
    assert text(call("sign", x), NUMPY.syntax, "np") == "np.sign(x)"
    assert text(x**2.5, MATH.syntax, "math") == "math.pow(x, 2.5)"
    assert text(x**2.5, NUMPY.syntax, "np") == "x**2.5" and text(x**2, MATH.syntax, "math") == "x**2"


def test_printing_is_iterative():
    """Deeper than Python's recursion limit (forms are small; this is the guarantee)."""
    deep = x
    for _ in range(3_000):
        deep = sin(deep)
    assert text(deep, MATH.syntax, "math") == "math.sin(" * 3_000 + "x" + ")" * 3_000
    assert sum(1 for _ in nodes(deep)) == 3_001


# -- diff against SymPy -----------------------------------------------------------------

LEAVES = [Slot(0), Slot(1), OUT, Num(2), Num(0.5), Num(-3)]
UNARY = ["exp", "log", "sin", "cos", "sqrt", "tanh", "atan", "sinh", "erf", "log1p", "expm1", "log2"]


@st.composite
def rules(draw, depth: int = 4):
    """A random rule over two operand slots and the output."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES))
    kind = draw(st.sampled_from(["unary", "binary", "power"]))
    a = draw(rules(depth - 1))
    if kind == "unary":
        return call(draw(st.sampled_from(UNARY)), a)
    if kind == "power":
        return a ** draw(st.sampled_from([Num(2), Num(3), Num(0.5), Num(-1)]))
    b = draw(rules(depth - 1))
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[draw(st.sampled_from("+-*/"))]


@given(rule=rules(), var=st.sampled_from([Slot(0), Slot(1), OUT]))
def test_diff_is_sympys_derivative(rule, var):
    out = sp.Symbol("_out", real=True)
    symbol = {Slot(0): slot(0), Slot(1): slot(1), OUT: out}[var]
    got = to_sympy(diff(rule, var, DERIVATIVES), out=out)
    want = sp.diff(to_sympy(rule, out=out), symbol)
    rng = random.Random(str(rule))
    for _ in range(3):
        point = {slot(0): rng.uniform(0.2, 1.5), slot(1): rng.uniform(0.2, 1.5), out: rng.uniform(0.2, 1.5)}
        with mpmath.workdps(30):
            a, b = got.evalf(30, subs=point), want.evalf(30, subs=point)
        if not (a.is_real and b.is_real and a.is_finite and b.is_finite):
            continue
        assert math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12), (rule, var, got, want)


def test_diff_of_a_comparison_and_a_select():
    assert diff((Slot(0) > 0) * Slot(0), Slot(0), DERIVATIVES) == (Slot(0) > 0)
    chosen = diff(Select(Slot(0) > 0, Slot(0) ** 2, -Slot(0)), Slot(0), DERIVATIVES)
    assert chosen == Select(Slot(0) > 0, Num(2) * Slot(0), Num(-1))
    assert Forms(SOURCE).fill(chosen, ["x"]) == "2 * x if x > 0 else -1"
    with pytest.raises(ValueError, match="no derivative of nowhere"):
        diff(call("nowhere", Slot(0)), Slot(0), DERIVATIVES)


def test_a_call_with_keywords_is_printed_in_order():
    assert text(Call("sum", (x,), (("axis", Num(0)),)), NUMPY.syntax, "np") == "np.sum(x, axis=0)"

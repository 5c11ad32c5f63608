"""The lowering pass, asserted on its stable dump (``stagegen FILE --dump lower``)."""

import textwrap

import pytest
import sympy as sp

import stagegen
from stagegen.lower import lower
from stagegen.parse import from_sympy, parse


def dump(source: str, gates: str = "grouped") -> str:
    return lower(parse(source, "t.txt"), gates).dump()


def sympy_dump(expr, inputs) -> str:
    return lower(from_sympy(expr, inputs=inputs)).dump()


def lines(text: str) -> str:
    return textwrap.dedent(text).strip()


def test_source_order_is_kept():
    assert dump("f = x + x") == lines("""
        in  x
        %1 = add x x  [f]           ; 1:5
        out %1""")
    assert dump("f = max(x, 0) * num / den") == lines("""
        in  x num den
        %3 = max x 0                ; 1:5
        %4 = mul %3 num             ; 1:5
        %5 = reciprocal den         ; 1:5
        %6 = mul %4 %5  [f]         ; 1:5
        out %6""")


def test_negation_of_a_sum_is_one_negation_in_the_fine_circuit():
    assert dump("f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))", gates="fine") == lines("""
        in  w0 x0 w1 x1 w2
        %5 = mul w0 x0              ; 1:20
        %6 = mul w1 x1              ; 1:28
        %7 = add %5 %6              ; 1:20
        %8 = add %7 w2              ; 1:20
        %9 = neg %8                 ; 1:18
        %10 = exp %9                ; 1:14
        %11 = add 1 %10             ; 1:10
        %12 = reciprocal %11  [f]   ; 1:5
        out %12""")
    assert dump("f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))").splitlines()[-2].startswith("%9 = sigmoid %8")


def test_shared_subexpressions_are_one_stage():
    assert dump("a = exp(x) + 1\nb = exp(x) * a\nf = b - exp(x)") == lines("""
        in  x
        %1 = exp x                  ; 1:5
        %2 = add %1 1  [a]          ; 1:5
        %3 = mul %1 %2  [b]         ; 2:5
        %4 = sub %3 %1  [f]         ; 3:5
        out %4""")


def test_powers_quotients_and_constants():
    assert dump("f = x / 4 + 2 ** x - x**-2 + x**0.5 + E**x").split("\n")[1:-1] == [
        "%1 = div x 4                ; 1:5",
        "%2 = pow 2 x                ; 1:13",
        "%3 = add %1 %2              ; 1:5",
        "%4 = powc x 2               ; 1:5",
        "%5 = reciprocal %4          ; 1:22",
        "%6 = sub %3 %5              ; 1:5",
        "%7 = sqrt x                 ; 1:30",
        "%8 = add %6 %7              ; 1:5",
        "%9 = exp x                  ; 1:39",
        "%10 = add %8 %9  [f]        ; 1:5",
    ]


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda x, y: x - y, ["%2 = sub x y  [f]"]),
        (lambda x, y: -x - y, ["%2 = add x y", "%3 = neg %2  [f]"]),
        (
            lambda x, y: 2 * x / (3 * y),
            ["%2 = mul 2 x", "%3 = mul 3 y", "%4 = reciprocal %3", "%5 = mul %2 %4  [f]"],
        ),
        (lambda x, y: x / 3, ["%2 = div x 3  [f]"]),
        (lambda x, y: 1 / sp.sqrt(x), ["%2 = sqrt x", "%3 = reciprocal %2  [f]"]),
        (lambda x, y: x**-3, ["%2 = powc x 3", "%3 = reciprocal %2  [f]"]),
        (lambda x, y: sp.exp(x) / (1 + sp.exp(x)), ["%2 = sigmoid x  [f]"]),
        (lambda x, y: x * sp.log(1 + sp.exp(y)), ["%2 = softplus y", "%3 = mul x %2  [f]"]),
        (
            lambda x, y: 1 / (1 + sp.exp(-2 * x - 3 * y)),
            ["%2 = mul 2 x", "%3 = mul 3 y", "%4 = add %2 %3", "%5 = sigmoid %4  [f]"],
        ),
    ],
)
def test_sympy_encodings(make, expected):
    x, y = sp.symbols("x y")
    assert sympy_dump(make(x, y), [x, y]).splitlines()[1:-1] == expected


def test_fine_gates_expand_named_grouped_gates():
    assert [line.split("=")[1].split()[0] for line in dump("f = sigmoid(x)", "fine").splitlines()[1:-1]] == [
        "neg",
        "exp",
        "add",
        "reciprocal",
    ]
    assert [line.split("=")[1].split()[0] for line in dump("f = softplus(x)", "fine").splitlines()[1:-1]] == [
        "exp",
        "add",
        "log",
    ]


def test_rewrites_are_recorded():
    graph = lower(parse("s = 1/(1 + exp(-x))\nf = s + log(1 + exp(y))", "t.txt"))
    assert [(gate, span.line, span.col) for gate, span in graph.rewrites] == [
        ("sigmoid", 1, 5),
        ("softplus", 2, 9),
    ]
    assert lower(parse("f = 1/(1 + exp(-x))", "t.txt"), "fine").rewrites == ()


def test_unused_named_stages_are_dropped():
    graph = lower(parse("a = exp(x)\nb = sin(y)\nf = a * x", "t.txt"))
    assert graph.dropped == ("b",)
    assert [s.gate for s in graph.stages] == ["exp", "mul"]
    graph.check()


def _composed(n: int):
    """The notes' function composed n times with sharing: a SymPy DAG whose tree
    form doubles at every step."""
    x, y = sp.symbols("x y", real=True)
    a, b = x, y
    for _ in range(n):
        a, b = (a + stagegen.sigmoid(b)) / (stagegen.sigmoid(a) + (a + b) ** 2), a * b - b
    return a


def test_docstring_of_a_shared_sympy_dag_is_its_stages():
    small = stagegen.generate(_composed(1))
    assert "    x: scalar\n    y: scalar\n    f = (x + sigmoid(y)) / ((x + y) ** 2 + sigmoid(x))\n" in small
    sizes = []
    for n in (8, 12):
        text = stagegen.generate(_composed(n))
        source = text.split("Source (<sympy>):\n", 1)[1].split('"""', 1)[0]
        assert source.startswith("\n    y: scalar\n    x: scalar\n    sigy = sigmoid(y)\n")
        sizes.append(len(text))
    # linear in n (the tree form would grow about 2**4 times from n = 8 to 12)
    assert sizes[1] < 2 * sizes[0]


@pytest.mark.parametrize("n", [1, 3])
def test_docstring_of_a_sympy_object_regenerates_the_module(n):
    # the argument order is declared (SymPy's order need not be the printed one)
    module = stagegen.load(_composed(n))
    lines = module.__doc__.splitlines()
    declared = [line.split(":")[0].strip() for line in lines if line.endswith(": scalar")]
    assert tuple(declared) == module.INPUTS
    report = stagegen.verify(module, points=2)
    assert report.ok, report.table()

"""Deep and wide inputs: 10,000-deep nesting, 10,000-term sums and products,
10,000 named stages. Each generated module is checked at a point against an
independent computation written here (plain math, or forward-mode dual
numbers), never against stagegen's own rules. No timing is asserted; the
benchmark (benchmarks/scale.py) measures time.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

import stagegen
from benchmarks.scale import FORMS, source
from gradcheck import close

N = 10_000
RTOL = 1e-9


def test_sin_nested_10000_deep():
    x = sp.Symbol("x", real=True)
    expr = x
    for _ in range(N):
        expr = sp.sin(expr, evaluate=False)
    module = stagegen.load(expr)
    value, (dx,) = module.value_and_grad(1.2)
    v, d = 1.2, 1.0
    for _ in range(N):
        d *= math.cos(v)
        v = math.sin(v)
    assert close(value, v, RTOL) and close(dx, d, RTOL)


def test_sum_of_10000_terms():
    xs = sp.symbols(f"x0:{N}", real=True)
    module = stagegen.load(sp.Add(*[(k % 7 + 1) * sp.sin(x) for k, x in enumerate(xs)]), inputs=xs)
    point = [0.001 * k - 3.0 for k in range(N)]
    value, grads = module.value_and_grad(*point)
    terms = [(k % 7 + 1) * math.sin(p) for k, p in enumerate(point)]
    assert close(value, math.fsum(terms), RTOL, scale=sum(map(abs, terms)))
    assert len(grads) == N
    for k, (g, p) in enumerate(zip(grads, point, strict=True)):
        assert close(g, (k % 7 + 1) * math.cos(p), RTOL)


def test_product_chain_of_10000_factors():
    xs = sp.symbols(f"x0:{N}", real=True)
    module = stagegen.load(sp.Mul(*xs), inputs=xs)
    point = [1.0 + ((-1) ** k) * 1e-4 * (k % 13) for k in range(N)]
    value, grads = module.value_and_grad(*point)
    product = math.prod(point)
    assert close(value, product, 1e-12 * N)  # N roundings, each within half an ulp
    for g, p in zip(grads, point, strict=True):
        assert close(g, product / p, 1e-12 * N)


class Dual:
    """a + b·ε with ε² = 0: forward-mode derivatives, independent of stagegen."""

    def __init__(self, a, b=0.0):
        self.a, self.b = a, b

    def __add__(self, o):
        return Dual(self.a + o.a, self.b + o.b)

    def __sub__(self, o):
        return Dual(self.a - o.a, self.b - o.b)

    def __mul__(self, o):
        return Dual(self.a * o.a, self.a * o.b + self.b * o.a)


def _apply(form: str, p: Dual, h: Dual, x: Dual, y: Dual) -> Dual:
    if form == "t{k} = t{p} * x":
        return p * x
    if form == "t{k} = sin(t{p})":
        return Dual(math.sin(p.a), math.cos(p.a) * p.b)
    if form == "t{k} = t{p} + t{h}":
        return p + h
    if form == "t{k} = sigmoid(t{p})":
        s = 1.0 / (1.0 + math.exp(-p.a))
        return Dual(s, s * (1.0 - s) * p.b)
    if form == "t{k} = t{p} - y":
        return p - y
    assert form == "t{k} = tanh(t{p})"
    t = math.tanh(p.a)
    return Dual(t, (1.0 - t * t) * p.b)


def _reference(n: int, at: tuple[float, float], seed: int) -> Dual:
    x, y = Dual(at[0], float(seed == 0)), Dual(at[1], float(seed == 1))
    t = [x * y]
    for k in range(1, n):
        t.append(_apply(FORMS[k % len(FORMS)], t[k - 1], t[k // 2], x, y))
    return t[-1]


def test_10000_named_stages():
    module = stagegen.load(source(N))
    assert module.INPUTS == ("x", "y")
    at = (0.7, -0.4)
    value, (dx, dy) = module.value_and_grad(*at)
    rx, ry = _reference(N, at, 0), _reference(N, at, 1)
    assert close(value, rx.a, RTOL)
    assert close(dx, rx.b, 1e-7, scale=1.0) and close(dy, ry.b, 1e-7, scale=1.0)


def test_code_size_grows_linearly():
    """Four times the stages, four times the code (names grow by a digit)."""
    small, large = (stagegen.generate(source(n)) for n in (1_000, 4_000))
    assert 4.0 <= len(large) / len(small) <= 4.0 * 1.1
    assert 3.9 <= large.count("\n") / small.count("\n") <= 4.1


def test_nested_unevaluated_sum_10000_deep():
    """SymPy's own sign and is_number tests recurse through nested sums; lowering does not."""
    x = sp.Symbol("x", real=True)
    expr = x
    for k in range(N):
        expr = sp.Add(expr, sp.Integer(k % 3 - 1), evaluate=False)
    value, (dx,) = stagegen.load(expr).value_and_grad(0.5)
    assert value == 0.5 + sum(k % 3 - 1 for k in range(N)) and dx == 1.0


# -- SymPy input nested deeper than any recursion could go, through every pass --


def _nested(kind: str, depth: int) -> sp.Expr:
    """x inside `depth` unevaluated applications of one construction."""
    x, y = sp.symbols("x y", real=True)
    wrap = {
        "sin": lambda e: sp.sin(e, evaluate=False),
        # half of (e + 1), then e * y + x: sums, products and constants alternate
        "sum-product": lambda e, k=[0]: (
            k.__setitem__(0, k[0] + 1)
            or (
                sp.Mul(sp.Add(e, 1, evaluate=False), sp.Rational(1, 2), evaluate=False)
                if k[0] % 2
                else sp.Add(sp.Mul(e, y, evaluate=False), x, evaluate=False)
            )
        ),
        "continued-fraction": lambda e: sp.Pow(sp.Add(1, e, evaluate=False), -1, evaluate=False),
        "sigmoid": lambda e: stagegen.sigmoid(sp.Add(e, y, evaluate=False)),
    }[kind]
    expr = x
    for _ in range(depth):
        expr = wrap(expr)
    return expr


@pytest.mark.parametrize(
    "kind, depth",
    [("sin", d) for d in (200, 1_000, 5_000)]
    + [pytest.param("sin", 10_000, marks=pytest.mark.slow)]
    + [(kind, 1_000) for kind in ("sum-product", "continued-fraction", "sigmoid")],
)
def test_deep_sympy_input_generates_and_verifies(kind, depth):
    expr = _nested(kind, depth)
    build = stagegen.build(expr)
    assert len(build.graph.stages) >= depth
    report = stagegen.verify(build, points=2)
    assert report.ok and report.points == 2, report.table()[:2000]
    docstring = build.text.split('"""', 2)[1]
    # too deep to print as one expression: recorded as its stages, one per line
    source = docstring.split("Source (<sympy>):\n", 1)[1]
    assert source.count("\n    ") == len(build.graph.inputs) + len(build.graph.stages)


def test_a_module_of_deep_sympy_input_verifies_from_its_docstring(tmp_path):
    path = tmp_path / "deep_grad.py"
    path.write_text(stagegen.generate(_nested("sin", 200)))  # its stages fit in the docstring
    report = stagegen.verify(str(path), points=2)
    assert report.ok, report.table()[:2000]


def test_an_error_about_a_deep_tree_is_short():
    expr = sp.zeta(_nested("sin", 5_000), evaluate=False)
    with pytest.raises(stagegen.UnsupportedError) as info:
        stagegen.generate(expr)
    first = info.value.render().split("\n")[0]
    assert first.startswith("stagegen: error: stagegen has no gate for zeta (in zeta(sin(sin(")
    assert first.endswith("...)") and len(first) < 200

"""Several outputs: the last statement a tuple (``ex, ey``, ``a, b = e1, e2``),
an output that renames a value (``delta = N1``, ``f = x``), and the module's
contract for them (DESIGN.md, "Several outputs"): ``OUTPUTS``, ``forward``
returning a tuple, ``backward`` taking one adjoint per output, never writing
into a ``dout`` it was given nor returning it.

Values and gradients are checked against references derived independently:
closed forms (Black-Scholes from the normal CDF, the arm's trigonometry) and
SymPy at 50 digits through `verify`.
"""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

import stagegen
from helpers import EXAMPLES
from stagegen.errors import StagegenError

BACKENDS_STYLES = [(b, s) for b in ("math", "numpy") for s in ("seed", "compact")]

FORKED = """\
sigy = sigmoid(y)
ex = x * sigy
ey = ex * y + x
ex, ey
"""


def load(text, **options):
    return stagegen.load(text, **options)


# -- the language ------------------------------------------------------------------


def test_a_tuple_of_stage_names_is_the_outputs_in_order():
    m = load(FORKED)
    assert m.OUTPUTS == ("ex", "ey")
    assert m.INPUTS == ("y", "x")
    (ex, ey), _ = m.forward(2.0, 3.0)
    sig = 1 / (1 + math.exp(-2.0))
    assert ex == pytest.approx(3.0 * sig, rel=1e-15)
    assert ey == pytest.approx(3.0 * sig * 2.0 + 3.0, rel=1e-15)
    assert not hasattr(m, "value_and_grad") and not hasattr(m, "OUTPUT")


def test_unnamed_outputs_are_f1_f2_by_place_giving_way():
    m = load("x, x * y, f2 + y")
    assert m.OUTPUTS == ("f1", "f2_", "f3")
    assert m.INPUTS == ("x", "y", "f2")
    values, _ = m.forward(2.0, 5.0, 7.0)
    assert values == (2.0, 10.0, 12.0)


def test_a_tuple_assignment_names_the_outputs():
    m = load("a, b = x * y, x\n")
    assert m.OUTPUTS == ("a", "b")
    values, cache = m.forward(3.0, 4.0)
    assert values == (12.0, 3.0)
    assert m.backward((1.0, 10.0), cache) == (14.0, 3.0)


def test_an_alias_is_an_output_and_the_identity_is_legal():
    m = load("N1 = x * y\nC = N1 + x\ndelta = N1\nC, delta\n")
    assert m.OUTPUTS == ("C", "delta")
    assert "delta = N1  # (3)" in stagegen.generate("N1 = x * y\nC = N1 + x\ndelta = N1\nC, delta\n")
    values, cache = m.forward(3.0, 4.0)
    assert values == (15.0, 12.0)
    # d/dx (C + 2 delta) = (y + 1) + 2 y, d/dy = x + 2 x
    assert m.backward((1.0, 2.0), cache) == (13.0, 9.0)
    f = load("f = x")
    assert f.OUTPUT == "f" and f.OUTPUTS == ("f",)
    assert f.value_and_grad(3.0) == (3.0, (1.0,))


def test_a_bare_name_last_is_the_output():
    assert load("t = x * y\nt").OUTPUTS == ("t",)
    assert load("x").value_and_grad(2.5) == (2.5, (1.0,))


@pytest.mark.parametrize(
    "text, message",
    [
        ("t = x * y\ng = t\nf = g + 1\n", "'g' only renames 't'"),
        ("g = x\nf = g * y\n", "'g' only renames 'x'"),
        ("a = x * y\na, a\n", "'a' is listed twice"),
        ("a, b = x * y, x\nc = a + b\n", "a tuple assignment names the outputs"),
        ("a, b = x * y, x, y\n", "2 names need 2 expressions"),
        ("a, b = x * y\n", "2 names need 2 expressions"),
        ("a, b[0] = x, y\n", "outputs are named by plain names"),
        ("x, y = x * y, y\n", "'x' is used before it is defined"),
        ("()\n", "an empty tuple has no outputs"),
        ("x, 2.0\n", "a constant"),
    ],
)
def test_bad_outputs_are_clear_errors(text, message):
    with pytest.raises(StagegenError) as err:
        stagegen.generate(text)
    assert message in str(err.value), str(err.value)
    assert ":" in str(err.value).splitlines()[0]


def test_cli_refuses_an_alias_that_is_not_an_output(tmp_path, capsys):
    from stagegen.__main__ import main

    path = tmp_path / "alias.txt"
    path.write_text("N1 = x * y\ndelta = N1\nC = delta + x\n")
    out = tmp_path / "out.py"
    assert main([str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:2:9: error: 'delta' only renames 'N1'"), err
    assert "C, delta" in err or "f, delta" in err
    assert "Traceback" not in err and not out.exists()


# -- the contract ------------------------------------------------------------------


@pytest.mark.parametrize("backend, style", BACKENDS_STYLES)
def test_backward_never_writes_into_dout_nor_returns_it(backend, style):
    # ex feeds ey (its adjoint starts as dout[0] and is added to); f1 = x is the identity
    text = "ex = x * y\ney = ex * y + x\nw = x\nex, ey, w\n"
    m = load(text, backend=backend, style=style)
    if backend == "numpy":
        x, y = np.array([1.0, 2.0, -0.5]), np.array([0.5, -1.5, 2.0])
        douts = tuple(np.array([1.0, 2.0, 3.0]) * k for k in (1, 2, 3))
        kept = [d.copy() for d in douts]
    else:
        x, y, douts = 1.5, -0.5, (1.0, 2.0, 3.0)
        kept = list(douts)
    values, cache = m.forward(x, y)
    dx, dy = m.backward(douts, cache)
    for d, k in zip(douts, kept, strict=True):
        np.testing.assert_array_equal(d, k)
    if backend == "numpy":
        assert not any(np.shares_memory(g, d) for g in (dx, dy) for d in douts)
    d1, d2, d3 = kept
    # ex = x y, ey = x y^2 + x, w = x
    np.testing.assert_allclose(dx, d1 * y + d2 * (y * y + 1) + d3, rtol=1e-15)
    np.testing.assert_allclose(dy, d1 * x + d2 * 2 * x * y, rtol=1e-15)


def test_identity_gradient_is_a_fresh_array_of_the_inputs_shape():
    for style in ("seed", "compact"):
        m = load("f = x", backend="numpy", style=style)
        x = np.array([[1.0, 2.0], [3.0, 4.0]])
        value, cache = m.forward(x)
        dout = np.full((2, 2), 3.0)
        (dx,) = m.backward(dout, cache)
        assert dx is not dout and not np.shares_memory(dx, dout)
        np.testing.assert_array_equal(dx, dout)


def test_single_output_modules_keep_output_and_gain_outputs():
    text = (EXAMPLES / "notes.txt").read_text()
    m = load(text)
    assert m.OUTPUT == "f" and m.OUTPUTS == ("f",)
    assert 'OUTPUT = "f"\nOUTPUTS = (OUTPUT,)\n' in stagegen.generate(text)


def test_shared_stages_are_computed_once():
    text = (EXAMPLES / "arm3.txt").read_text()
    build = stagegen.build(text)
    gates = [s.gate for s in build.graph.stages]
    assert gates.count("add") == 2 + 4  # t1 + t2, a2 + t3, then the two sums of three terms each
    assert sum(1 for s in build.graph.stages if s.gate == "cos") == 3


# -- values and gradients against independent references ------------------------------


def _normal_cdf(x):
    return 0.5 * (1 + mpmath.erf(x / mpmath.sqrt(2)))


def test_black_scholes_price_and_delta_at_the_textbook_point():
    """S = K = 100, T = 1, r = 0.05, sigma = 0.2: C = 10.4505835722 and delta =
    0.6368306512, the closed forms with the normal CDF (as scipy.stats.norm gives them)."""
    m = load((EXAMPLES / "black_scholes.txt").read_text())
    (C, delta), cache = m.forward(100.0, 100.0, 1.0, 0.05, 0.2)
    assert C == pytest.approx(10.4505835722, abs=5e-11)
    assert delta == pytest.approx(0.6368306512, abs=5e-11)
    # the gradient of C alone (dout = (1, 0)) holds delta as dC/dS
    dS, dK, dT, dr, dsigma = m.backward((1.0, 0.0), cache)
    assert dS == pytest.approx(delta, rel=1e-13)
    # vega = S phi(d1) sqrt(T), rho = K T exp(-rT) N(d2), from the textbook
    with mpmath.workdps(30):
        d1 = (mpmath.log(1) + (0.05 + mpmath.mpf(0.2) ** 2 / 2)) / mpmath.mpf(0.2)
        d2 = d1 - mpmath.mpf(0.2)
        vega = 100 * mpmath.npdf(d1)
        rho = 100 * mpmath.exp(-0.05) * _normal_cdf(d2)
    assert dsigma == pytest.approx(float(vega), rel=1e-13)
    assert dr == pytest.approx(float(rho), rel=1e-13)
    assert float(vega) == pytest.approx(37.5240346917, abs=5e-10)


def test_arm_backward_rows_are_the_analytic_jacobian():
    m = load((EXAMPLES / "arm3.txt").read_text())
    t = (0.3, -0.7, 1.1)
    _, cache = m.forward(*t)
    a1, a2, a3 = t[0], t[0] + t[1], t[0] + t[1] + t[2]
    jx = [-math.sin(a1) - 0.8 * math.sin(a2) - 0.5 * math.sin(a3), -0.8 * math.sin(a2) - 0.5 * math.sin(a3)]
    jx.append(-0.5 * math.sin(a3))
    jy = [math.cos(a1) + 0.8 * math.cos(a2) + 0.5 * math.cos(a3), 0.8 * math.cos(a2) + 0.5 * math.cos(a3)]
    jy.append(0.5 * math.cos(a3))
    np.testing.assert_allclose(m.backward((1.0, 0.0), cache), jx, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(m.backward((0.0, 1.0), cache), jy, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend, style", BACKENDS_STYLES)
@pytest.mark.parametrize("example", ["black_scholes.txt", "arm3.txt"])
def test_examples_verify(example, backend, style):
    report = stagegen.verify((EXAMPLES / example).read_text(), backend=backend, style=style, points=8)
    assert report.ok, report.table()
    assert report.points == 8


@pytest.mark.parametrize("backend, style", BACKENDS_STYLES)
def test_verify_catches_a_wrong_line_and_a_swapped_output(backend, style, tmp_path):
    build = stagegen.build(FORKED, backend=backend, style=style)
    good = stagegen.verify(build)
    assert good.ok, good.table()
    line = next(s for s in build.text.splitlines() if s.strip().startswith("dex") and "# (3)" in s)
    wrong = build.text.replace(line, line.replace("# (3)", "* 1.000001  # (3)"))
    path = tmp_path / "wrong.py"
    path.write_text(wrong)
    report = stagegen.verify(path)
    assert not report.ok
    assert any("line" in n and "(backward) is off by" in n for n in report.notes), report.table()
    swapped = build.text.replace("dex, dey = dout", "dey, dex = dout")
    path.write_text(swapped)
    assert not stagegen.verify(path).ok


def test_verify_of_an_array_program_with_several_outputs():
    text = "W: matrix(n, d)\nx: matrix(d, 1)\nh = W @ x\ns = sum(h * h)\nm = mean(exp(h))\nh, s, m\n"
    for style in ("seed", "compact"):
        report = stagegen.verify(text, backend="numpy", style=style, points=6)
        assert report.ok, report.table()
        assert [r.quantity for r in report.rows[:3]] == ["h", "s", "m"]


def test_sympy_reference_of_several_outputs():
    """An independent reference: SymPy differentiates the written maths of each
    output, and the weighted sum is compared with backward at 20 points."""
    m = load(FORKED)
    x, y = sp.symbols("x y", real=True)
    ex = x / (1 + sp.exp(-y))
    ey = ex * y + x
    rng = np.random.default_rng(5)
    for _ in range(20):
        px, py = rng.uniform(-3, 3, 2)
        w = rng.uniform(0.5, 2.0, 2)
        _, cache = m.forward(py, px)
        dy, dx = m.backward(tuple(w), cache)
        at = {x: sp.Float(px, 30), y: sp.Float(py, 30)}
        total = w[0] * ex + w[1] * ey
        assert dx == pytest.approx(float(sp.diff(total, x).evalf(30, subs=at)), rel=1e-13)
        assert dy == pytest.approx(float(sp.diff(total, y).evalf(30, subs=at)), rel=1e-13)


# -- views --------------------------------------------------------------------------


def test_trace_shows_every_output_and_the_gradient_of_their_sum():
    trace = stagegen.trace(FORKED, x=1.0, y=2.0)
    assert trace.outputs == ("ex", "ey")
    table = trace.table()
    assert "d(ex + ey)/d(stage)" in table
    sig = 1 / (1 + math.exp(-2.0))
    # d(ex + ey)/dx = sig + sig y + 1
    assert trace.row("x").gradient == pytest.approx(sig + sig * 2 + 1, rel=1e-14)
    assert trace.row("ey").value == pytest.approx(sig * 2 + 1, rel=1e-14)


def test_diagram_draws_every_output():
    dot = stagegen.diagram(FORKED, "x=1,y=2").dot
    assert "out1 [shape=plaintext, label=<<b>ex</b>>]" in dot
    assert "out2 [shape=plaintext, label=<<b>ey</b>>]" in dot
    assert "d(ex + ey)/d(wire)" in dot


def test_inputs_order_keeps_every_output():
    m = load("a = x * y\nb = y\na, b\n", inputs="y,x")
    assert m.INPUTS == ("y", "x") and m.OUTPUTS == ("a", "b")
    assert m.forward(2.0, 3.0)[0] == (6.0, 2.0)


def test_a_sequence_of_sympy_expressions_is_several_outputs():
    x, y = sp.symbols("x y", real=True)
    m = load((x * sp.exp(y), x + y, x))
    assert m.OUTPUTS == ("f1", "f2", "f3")
    values, cache = m.forward(2.0, 0.5)
    assert values == (pytest.approx(2.0 * math.exp(0.5), rel=1e-15), 2.5, 2.0)
    assert m.backward((1.0, 0.0, 0.0), cache) == (
        pytest.approx(math.exp(0.5)),
        pytest.approx(2 * math.exp(0.5)),
    )
    text = stagegen.generate([x * y, sp.sin(x)])
    assert "    f1 = x * y\n    f2 = sin(x)\n    f1, f2\n" in text  # the source it regenerates from
    report = stagegen.verify([x * sp.exp(y), sp.sin(x) * y], with_="jacobian,jvp")
    assert report.ok, report.table()


def test_a_deep_sequence_of_sympy_expressions_is_staged_with_its_outputs():
    x, y = sp.symbols("x y", real=True)
    e = x
    for _ in range(60):  # too deep to print as one expression: written as its stages
        e = sp.sin(e) + y
    text = stagegen.generate((e, e * x))
    assert "    f1, f2\n" in text and 'OUTPUTS = ("f1", "f2")' in text
    assert stagegen.verify((e, e * x), points=3).ok

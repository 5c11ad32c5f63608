"""The worked examples of the backprop notes, stage for stage.

Numbers and listings are transcribed from ../shared/reference/backprop-notes.txt
(and the issue that quotes them), so the suite stands on its own; where the
notes round, the exact value is recomputed here with `math`, independently of
stagegen.
"""

import math

import pytest
import sympy as sp

import stagegen
from helpers import adjoint_lines, example, function_lines, instrumented

# -- (a) f(x, y, z) = (x + y) * z at x = -2, y = 5, z = -4 -----------------------


def test_circuit_values_and_gradients():
    module = stagegen.load(example("circuit.txt"))
    f, grads = module.value_and_grad(-2.0, 5.0, -4.0)
    assert f == -12.0
    assert grads == (-4.0, -4.0, 3.0)  # dfdx, dfdy, dfdz of the notes
    run = instrumented(example("circuit.txt")).value_and_grad(-2.0, 5.0, -4.0)
    assert run["q"] == 3.0 and run["dq"] == -4.0  # "gradient on q becomes -4"


def test_circuit_listing():
    text = stagegen.generate(example("circuit.txt"))
    # dfdz = q; dfdq = z; dfdx = 1.0 * dfdq; dfdy = 1.0 * dfdq
    assert adjoint_lines(text) == [
        ("dq", "=", "(z) * dout", 2),
        ("dz", "=", "(q) * dout", 2),
        ("dx", "=", "(1) * dq", 1),
        ("dy", "=", "(1) * dq", 1),
    ]


# -- (b) the 2-D sigmoid neuron at w = [2, -3, -3], x = [-1, -2] ----------------

W, X = (2.0, -3.0, -3.0), (-1.0, -2.0)


def test_neuron_numbers():
    module = stagegen.load(example("neuron.txt"))
    assert module.INPUTS == ("w0", "w1", "w2", "x0", "x1")
    f, (dw0, dw1, dw2, dx0, dx1) = module.value_and_grad(*W, *X)
    # the notes: dot = 1.0, f = 0.73, ddot = (1 - 0.73) * 0.73 ~= 0.2
    assert round(f, 2) == 0.73
    ddot = instrumented(example("neuron.txt")).value_and_grad(*W, *X)["ddot"]
    assert round(ddot, 3) == 0.197
    assert [round(g, 3) for g in (dx0, dx1)] == [0.393, -0.590]
    assert [round(g, 3) for g in (dw0, dw1, dw2)] == [-0.197, -0.393, 0.197]
    exact = 1 / (1 + math.exp(-1.0))
    assert f == pytest.approx(exact, rel=1e-15)
    assert ddot == pytest.approx((1 - exact) * exact, rel=1e-15)


def test_neuron_is_one_sigmoid_stage_with_the_notes_local_gradient():
    text = stagegen.generate(example("neuron.txt"))
    assert adjoint_lines(text)[0] == ("ddot", "=", "((1 - f) * f) * dout", 5)
    # dx = [w[0] * ddot, w[1] * ddot]; dw = [x[0] * ddot, x[1] * ddot, 1.0 * ddot]
    assert ("dw2", "=", "(1) * ddot", 4) in adjoint_lines(text)


def test_neuron_fine_gates_is_the_notes_circuit():
    """--gates fine: the *-1, exp, +1 and 1/x gates of the notes' circuit diagram."""
    module = stagegen.build(example("neuron.txt"), gates="fine")
    gates = [s.gate for s in module.graph.stages]
    assert gates[-4:] == ["neg", "exp", "add", "reciprocal"]
    run = instrumented(example("neuron.txt"), gates="fine").value_and_grad(*W, *X)
    # by hand, as in the notes' circuit diagram: dot = 1, *-1 -> -1, exp -> 0.37,
    # +1 -> 1.37, 1/x -> 0.73; backward 1/x: -1/1.37**2 = -0.53, +1 passes -0.53,
    # exp: 0.37 * -0.53 = -0.20, *-1: 0.20
    assert round(run["dden"], 2) == -0.53
    assert round(run["dexpnegdot"], 2) == -0.53
    assert round(run["dnegdot"], 2) == -0.20
    assert round(run["ddot"], 2) == 0.20


# -- (c) the staged function (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2) --------

FORWARD = [  # name, the notes' formula (stage k is line k)
    ("sigy", "sigmoid(y)"),
    ("num", "x + sigy"),
    ("sigx", "sigmoid(x)"),
    ("xpy", "x + y"),
    ("xpysqr", "xpy**2"),
    ("den", "sigx + xpysqr"),
    ("invden", "1.0 / den"),
    ("f", "num * invden"),
]

BACKWARD = [  # target, op, local gradient, upstream, forward stage: the notes' listing
    ("dnum", "=", "invden", "dout", 8),
    ("dinvden", "=", "num", "dout", 8),
    ("dden", "=", "(-1.0 / (den**2))", "dinvden", 7),
    ("dsigx", "=", "(1)", "dden", 6),
    ("dxpysqr", "=", "(1)", "dden", 6),
    ("dxpy", "=", "(2 * xpy)", "dxpysqr", 5),
    ("dx", "=", "(1)", "dxpy", 4),
    ("dy", "=", "(1)", "dxpy", 4),
    ("dx", "+=", "((1 - sigx) * sigx)", "dsigx", 3),
    ("dx", "+=", "(1)", "dnum", 2),
    ("dsigy", "=", "(1)", "dnum", 2),
    ("dy", "+=", "((1 - sigy) * sigy)", "dsigy", 1),
]


def _split(rhs: str) -> tuple[str, str]:
    local, upstream = rhs.rsplit(" * ", 1)
    return local, upstream


@pytest.mark.parametrize("source", ["notes.txt", "notes_expr.txt"])
def test_staged_function_structure(source):
    text = stagegen.generate(example(source))
    forward = function_lines(text, "forward")
    assert [line.split(" = ")[0].strip() for line in forward] == [name for name, _ in FORWARD]
    assert [int(line.rsplit("# (", 1)[1].rstrip(")")) for line in forward] == list(range(1, 9))
    found = adjoint_lines(text)
    assert len(found) == len(BACKWARD)
    for (target, op, rhs, stage), (e_target, e_op, e_local, e_up, e_stage) in zip(
        found, BACKWARD, strict=True
    ):
        local, upstream = _split(rhs)
        assert (target, op, upstream, stage) == (e_target, e_op, e_up, e_stage)
        assert sp.sympify(local) == sp.sympify(e_local), (local, e_local)


def test_staged_function_display_formulas():
    text = stagegen.generate(example("notes.txt"))
    for name, formula in FORWARD:
        assert (
            f"# backprop {name} = {formula}\n" in text or name == "f" and f"# backprop f = {formula}" in text
        )


def test_staged_function_values():
    module = stagegen.load(example("notes.txt"))
    f, (dx, dy) = module.value_and_grad(3.0, -4.0)
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    assert f == pytest.approx((3 + sig(-4)) / (sig(3) + 1), rel=1e-15)
    x, y = sp.symbols("x y")
    expr = (x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2)
    for g, s in ((dx, x), (dy, y)):
        assert g == pytest.approx(float(sp.diff(expr, s).evalf(50, subs={x: 3, y: -4})), rel=1e-13)


def test_sigmoid_stage_does_not_overflow_where_the_notes_line_would():
    module = stagegen.load(example("notes.txt"))
    with pytest.raises(OverflowError):
        y = -1000.0
        1.0 / (1 + math.exp(-y))  # the notes' sigmoid line
    f, (dx, dy) = module.value_and_grad(3.0, -1000.0)
    assert math.isfinite(f) and math.isfinite(dx) and math.isfinite(dy)

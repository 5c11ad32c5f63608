"""The per-stage trace: values, local gradients and gradients at a point.

Expected numbers are worked out here by hand (with `math`) from the backprop
notes, never read from stagegen; the trace must show them because it runs the
generated module.
"""

from __future__ import annotations

import math

import pytest

import stagegen
from helpers import example, scale_backward_line
from helpers import run_cli as run
from stagegen.errors import UsageError

CIRCUIT = example("circuit.txt")  # q = x + y; f = q * z
NEURON = example("neuron.txt")  # dot = w0*x0 + w1*x1 + w2; f = 1 / (1 + exp(-dot))
NOTES = example("notes.txt")
NEURON_POINT = dict(w0=2.0, w1=-3.0, w2=-3.0, x0=-1.0, x1=-2.0)  # the notes' w = [2,-3,-3], x = [-1,-2]
# The notes' "patterns in backward flow" circuit: 2 * (x*y + max(z, w)).
PATTERNS = "xy = x * y\nm = max(z, w)\ns = xy + m\nf = 2 * s\n"
PATTERNS_POINT = dict(x=3.0, y=-4.0, z=2.0, w=-1.0)


def numbers(row) -> dict[str, float | None]:
    return {local.operand: local.value for local in row.locals}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STAGEGEN_DEBUG", raising=False)
    (tmp_path / "circuit.txt").write_text(CIRCUIT, encoding="utf-8")
    return tmp_path


# -- the numbers -------------------------------------------------------------------------


def test_circuit_at_the_notes_point():
    x, y, z = -2.0, 5.0, -4.0
    q = x + y  # 3
    f = q * z  # -12
    dq, dz = z, q  # the multiply gate swaps its inputs: -4 and 3
    dx = dy = 1.0 * dq  # the add gate distributes: -4 and -4
    t = stagegen.trace(CIRCUIT, x=x, y=y, z=z)
    assert [(r.number, r.name, r.formula) for r in t.rows] == [(1, "q", "x + y"), (2, "f", "q * z")]
    q_row, f_row = t.rows
    assert (q_row.value, q_row.gradient, numbers(q_row)) == (q, dq, {"x": 1.0, "y": 1.0})
    assert (f_row.value, f_row.gradient, numbers(f_row)) == (f, 1.0, {"q": z, "z": q})
    assert (q, f, dq, dz, dx) == (3.0, -12.0, -4.0, 3.0, -4.0)
    assert [(i.name, i.value, i.gradient) for i in t.inputs] == [("x", x, dx), ("y", y, dy), ("z", z, dz)]
    assert t.outputs == ("f",) and t.row("q") is q_row and t.row("z") is t.inputs[2]


def test_circuit_table():
    assert stagegen.trace(CIRCUIT, x=-2, y=5, z=-4).table() == (
        "#    stage  formula  value  local gradients  gradient\n"
        "(1)  q      x + y        3  x: 1, y: 1             -4\n"
        "(2)  f      q * z      -12  q: -4, z: 3             1\n"
        "\n"
        "input  value  gradient\n"
        "x         -2        -4\n"
        "y          5        -4\n"
        "z         -4         3\n"
        "gradient: df/d(stage) after the backward pass; local gradients: d(stage)/d(operand); "
        "-: not computed"
    )


@pytest.mark.parametrize("gates", ["grouped", "fine"])
def test_sigmoid_neuron(gates):
    p = NEURON_POINT
    dot = p["w0"] * p["x0"] + p["w1"] * p["x1"] + p["w2"]  # 1.0
    f = 1.0 / (1.0 + math.exp(-dot))
    ddot = (1.0 - f) * f  # the notes' sigmoid gradient
    t = stagegen.trace(NEURON, gates=gates, **p)
    assert (dot, round(f, 2), round(ddot, 1)) == (1.0, 0.73, 0.2)
    assert t.row("dot").value == dot
    assert t.row("f").value == pytest.approx(f, rel=1e-15)
    assert t.row("dot").gradient == pytest.approx(ddot, rel=1e-12)
    expected = {  # the notes: dx = [w0 * ddot, w1 * ddot], dw = [x0 * ddot, x1 * ddot, ddot]
        "w0": p["x0"] * ddot,
        "w1": p["x1"] * ddot,
        "w2": ddot,
        "x0": p["w0"] * ddot,
        "x1": p["w1"] * ddot,
    }
    assert {i.name: i.gradient for i in t.inputs} == pytest.approx(expected, rel=1e-12)
    formulas = [r.formula for r in t.rows]
    if gates == "grouped":
        assert formulas[-1] == "sigmoid(dot)"
        assert numbers(t.rows[-1]) == pytest.approx({"dot": ddot}, rel=1e-12)
    else:  # the notes' circuit: *-1, exp, +1, 1/x
        assert formulas[-4:] == ["-dot", "exp(negdot)", "1 + expnegdot", "1.0 / den"]
        den = 1.0 + math.exp(-dot)
        assert numbers(t.rows[-1]) == pytest.approx({"den": -1.0 / den**2}, rel=1e-12)
        assert numbers(t.rows[-2]) == {"1": None, "expnegdot": 1.0}  # a constant has no gradient


def test_max_routes_the_gradient_to_one_input():
    x, y, z, w = PATTERNS_POINT.values()
    t = stagegen.trace(PATTERNS, **PATTERNS_POINT)
    ds = 2.0  # from f = 2 * s
    assert t.row("m").value == max(z, w) == z
    assert numbers(t.row("m")) == {"z": 1.0, "w": 0.0}
    assert t.row("m").gradient == ds
    grads = {i.name: i.gradient for i in t.inputs}
    assert grads == {"x": y * ds, "y": x * ds, "z": ds, "w": 0.0}  # the notes: -8, 6, 2, 0
    assert (grads["x"], grads["y"]) == (-8.0, 6.0)


def test_a_constant_operand_has_no_local_gradient():
    t = stagegen.trace("f = max(x, 0) + x * x", x=1.5)
    assert numbers(t.rows[0]) == {"x": 1.0, "0": None}
    assert [(local.operand, local.value) for local in t.rows[1].locals] == [("x", 1.5), ("x", 1.5)]
    assert t.inputs[0].gradient == 1.0 + 2 * 1.5
    assert "max(x, 0)" in t.table() and "x: 1, 0: -" in t.table()


def test_pruned_stages_show_what_was_not_computed():
    t = stagegen.trace(NEURON, wrt="w0", **NEURON_POINT)
    w1x1 = t.row("w1x1")  # off every path to w0
    assert w1x1.value == 6.0 and w1x1.gradient is None and w1x1.adjoint is None
    assert numbers(w1x1) == {"w1": None, "x1": None}
    assert numbers(t.row("w0x0")) == {"w0": -1.0, "x0": None}
    assert [i.name for i in t.inputs if i.gradient is not None] == ["w0"]
    lines = t.table().splitlines()
    assert lines[2] == "(2)  w1x1       w1 * x1                6  w1: -, x1: -                -"
    assert lines[-2] == "x1        -2          -"


@pytest.mark.parametrize("gates", ["grouped", "fine"])
def test_compact_style_traces_the_same_numbers(gates):
    seed = stagegen.trace(NOTES, x=3, y=-4, gates=gates)
    compact = stagegen.trace(NOTES, x=3, y=-4, gates=gates, style="compact")

    def numbers_of(t):  # the compact style names some adjoints after the one they alias
        return [(r.name, r.value, r.locals, r.gradient) for r in t.rows]

    assert numbers_of(compact) == numbers_of(seed)
    assert [r.adjoint for r in compact.rows] != [r.adjoint for r in seed.rows]
    assert [i.gradient for i in compact.inputs] == [i.gradient for i in seed.inputs]


def test_numbers_come_from_the_generated_module(monkeypatch):
    """A changed backward line in the module shows up in the trace: it is not re-derived."""
    scale_backward_line(monkeypatch)
    t = stagegen.trace(CIRCUIT, x=-2, y=5, z=-4)
    assert t.row("q").gradient == -40.0 and t.row("x").gradient == -40.0
    assert t.row("z").gradient == 3.0


def test_point_as_a_mapping_for_inputs_named_like_options():
    t = stagegen.trace("f = style * gates", {"style": 2.0, "gates": 3.0}, gates="fine")
    assert (t.rows[0].value, [i.gradient for i in t.inputs]) == (6.0, [3.0, 2.0])
    with pytest.raises(UsageError, match="the point gives x twice"):
        stagegen.trace("f = x * y", {"x": 1.0}, x=2.0, y=3.0)


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "point, message",
    [
        (
            dict(x=1, y=2),
            "<input>: error: the point misses z; give a value for every input (x=..., y=..., z=...)",
        ),
        (
            dict(x=1, y=2, z=3, q=4),
            "<input>: error: the point names q, which is not an input; the inputs are x, y, z",
        ),
        (dict(x=1, y=2, z="3"), "<input>: error: the point: z='3' is not a number"),
        (dict(x=1, y=2, z=True), "<input>: error: the point: z=True is not a number"),
        (dict(x=1, y=2, z=math.inf), "<input>: error: the point: z=inf is not a finite number"),
        (dict(x=1, y=2, z=math.nan), "<input>: error: the point: z=nan is not a finite number"),
    ],
    ids=["missing", "unknown", "string", "bool", "inf", "nan"],
)
def test_bad_points(point, message):
    with pytest.raises(UsageError) as error:
        stagegen.trace(CIRCUIT, **point)
    assert error.value.render() == message


def test_a_domain_error_is_the_modules_own_located_message():
    with pytest.raises(UsageError) as error:
        stagegen.trace("lnx = log(x)\nf = lnx * y", x=-1, y=2, filename="ln.txt")
    assert error.value.render() == (
        "ln.txt: error: the point x=-1.0, y=2.0: the generated code raised ValueError: "
        "stage (1) lnx = math.log(x): math domain error (x = -1.0)\n"
        "  choose a point where every stage is defined"
    )


# -- the command line ----------------------------------------------------------------------


def test_cli_prints_the_table(folder, capsys):
    status, out, err = run(["circuit.txt", "--trace", "x=-2, y=5,z=-4"], capsys)
    assert (status, err) == (0, "")
    assert out == stagegen.trace(CIRCUIT, x=-2, y=5, z=-4).table() + "\n"


def test_cli_trace_and_output_file(folder, capsys):
    status, out, err = run(["circuit.txt", "--trace", "x=1,y=2,z=3", "-o", "out.py"], capsys)
    assert (status, err) == (0, "")
    assert out.startswith("#    stage") and "(2)  f      q * z        9" in out
    assert (folder / "out.py").read_text(encoding="utf-8") == stagegen.generate(
        CIRCUIT, filename="circuit.txt", output="out.py"
    )


@pytest.mark.parametrize(
    "point, message",
    [
        (
            "x=1,y=2",
            "circuit.txt: error: --trace misses z; give a value for every input (x=..., y=..., z=...)",
        ),
        (
            "x=1,y=2,z=3,w=4",
            "circuit.txt: error: --trace names w, which is not an input; the inputs are x, y, z",
        ),
        ("x=1,y=2,z=three", "circuit.txt: error: --trace: z=three is not a number (e.g. --trace x=3,y=-4)"),
        ("x=1,y=2,z=1e400", "circuit.txt: error: --trace: z=inf is not a finite number"),
        ("x=1,y2,z=3", "circuit.txt: error: --trace: 'y2' is not name=value (e.g. --trace x=3,y=-4)"),
        ("x=1,x=2,z=3", "circuit.txt: error: --trace: x is given twice"),
        ("", "circuit.txt: error: --trace: '' is not name=value (e.g. --trace x=3,y=-4)"),
    ],
    ids=["missing", "unknown", "word", "overflow", "no-equals", "twice", "empty"],
)
def test_cli_bad_points(folder, capsys, point, message):
    (folder / "out.py").write_text("# old\n", encoding="utf-8")
    status, out, err = run(["circuit.txt", "--trace", point, "-o", "out.py"], capsys)
    assert (status, out, err) == (2, "", message + "\n")
    assert (folder / "out.py").read_text(encoding="utf-8") == "# old\n"


def test_cli_domain_error(folder, capsys):
    (folder / "ln.txt").write_text("lnx = log(x)\nf = lnx * y\n", encoding="utf-8")
    status, out, err = run(["ln.txt", "--trace", "x=-1,y=2", "-o", "out.py"], capsys)
    assert (status, out) == (2, "")
    assert err == (
        "ln.txt: error: --trace x=-1.0, y=2.0: the generated code raised ValueError: "
        "stage (1) lnx = math.log(x): math domain error (x = -1.0)\n"
        "  choose a point where every stage is defined\n"
    )
    assert "Traceback" not in err and not (folder / "out.py").exists()

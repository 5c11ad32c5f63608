"""The circuit diagram: its DOT text, the SVG Graphviz makes of it, and the CLI.

The DOT text and the SVG are parsed back (a regular expression per DOT
statement, `xml.etree` for SVG) into nodes, wires and the numbers on them,
and those are checked against numbers worked out here by hand from the
backprop notes. Tests that run Graphviz skip only when its ``dot`` program is
absent; "Graphviz missing" is simulated with an empty PATH.
"""

from __future__ import annotations

import html as htmllib
import importlib
import math
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

import stagegen
from helpers import example, run_subprocess, scale_backward_line
from helpers import run_cli as run
from stagegen.errors import UsageError

DIAGRAM = importlib.import_module("stagegen.diagram")  # the module; stagegen.diagram is its function
CIRCUIT = example("circuit.txt")  # q = x + y; f = q * z
NEURON = example("neuron.txt")  # dot = w0*x0 + w1*x1 + w2; f = 1 / (1 + exp(-dot))
NOTES = example("notes.txt")
NEURON_POINT = dict(w0=2.0, w1=-3.0, w2=-3.0, x0=-1.0, x1=-2.0)  # the notes' w = [2,-3,-3], x = [-1,-2]
PATTERNS = "xy = x * y\nm = max(z, w)\ns = xy + m\nf = 2 * s\n"  # the notes' 2 * (x*y + max(z, w))
PATTERNS_POINT = dict(x=3.0, y=-4.0, z=2.0, w=-1.0)
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"
MISSING_DOT = (
    "stagegen: error: cannot draw a .{0} file: Graphviz's 'dot' program was not found on PATH; "
    "install Graphviz (apt-get install graphviz, or brew install graphviz), "
    "or write the DOT text with a .dot file name\n"
)


# -- reading a diagram back ----------------------------------------------------------------


@dataclass
class Circuit:
    """A diagram read back: gate labels, wires with their numbers, and edges."""

    labels: dict[str, str]  # node id -> text shown in the node (inputs, gates, output)
    gates: list[str]  # ids of the gate nodes, in the order they appear
    wires: dict[str, tuple[str | None, str | None]]  # wire name -> (value, gradient) as printed
    edges: list[tuple[str, str]]  # (from node, to node), ports dropped, in the order they appear
    forks: list[str]  # ids of junction dots
    nodes: dict[str, str]  # wire name -> id of the node that shows its numbers
    rows: dict[str, dict[str, float]] | None = None  # SVG only: node id -> text -> baseline y

    def into(self, node: str) -> list[str]:
        return [a for a, b in self.edges if b == node]

    def out_of(self, node: str) -> list[str]:
        return [b for a, b in self.edges if a == node]

    def value(self, name: str) -> float:
        return float(self.wires[name][0])

    def gradient(self, name: str) -> float:
        return float(self.wires[name][1])

    def numbers(self, name: str) -> tuple[float, float]:
        return self.value(name), self.gradient(name)


def _wire_names(labels, edges, italic, gates) -> dict[str, str]:
    """Wire label node id -> the wire's name: its own (italic) name, else its input's, else the output's."""
    names = {}
    for w in (node for node in labels if node.startswith("w")):
        source = next(a for a, b in edges if b == w)
        if w in italic:
            names[w] = italic[w]
        elif source not in gates:
            names[w] = labels[source]  # an input's wire: the input node shows the name
        else:
            names[w] = labels["out"]  # the output's wire: the output node shows it
    return names


def read_dot(text: str) -> Circuit:
    assert text.startswith("digraph circuit {\n") and text.endswith("}\n")
    labels, shapes, italic, numbers, edges = {}, {}, {}, {}, []
    colour = {"value": DIAGRAM.VALUE_COLOUR, "gradient": DIAGRAM.GRADIENT_COLOUR}
    for line in text.splitlines():
        edge = re.fullmatch(r"  (\w+)(?::\w+)? -> (\w+)(?::\w+)?(?: \[(.*)\])?;", line)
        node = re.fullmatch(r"  (\w+) \[(.*)\];", line)
        if edge:
            edges.append((edge[1], edge[2]))
        elif node and node[1] not in ("graph", "node", "edge"):
            ident, attrs = node[1], node[2]
            shapes[ident] = re.search(r"shape=(\w+)", attrs)[1]
            label = re.search(r"label=<(.*)>", attrs)
            html = label[1] if label else ""
            found = {
                kind: re.findall(rf'<font color="{c}">([^<]*)</font>', html) for kind, c in colour.items()
            }
            numbers[ident] = tuple(found[kind][0] if found[kind] else None for kind in colour)
            name = re.search(r"<i>([^<]*)</i>", html)
            if name:
                italic[ident] = name[1]
            labels[ident] = htmllib.unescape(re.sub(r"<[^>]*>", "", html))
    gates = [n for n, shape in shapes.items() if n.startswith("v") and shape != "plaintext"]
    names = _wire_names(labels, edges, italic, gates)
    wires = {names[w]: numbers[w] for w in names}
    forks = [n for n, shape in shapes.items() if shape == "point"]
    return Circuit(labels, gates, wires, edges, forks, {name: w for w, name in names.items()})


def read_svg(data: bytes) -> Circuit:
    root = ET.fromstring(data)
    labels, italic, numbers, edges, gates, forks, rows = {}, {}, {}, [], [], [], {}
    for group in root.iter(f"{SVG}g"):
        kind = group.get("class")
        title = group.findtext(f"{SVG}title")
        if kind == "edge":
            a, b = title.split("->")
            edges.append((a.split(":")[0], b.split(":")[0]))
        elif kind == "node":
            texts = list(group.iter(f"{SVG}text"))
            labels[title] = "".join(t.text or "" for t in texts).strip()
            by_colour = {t.get("fill"): t.text for t in texts}
            numbers[title] = (by_colour.get(DIAGRAM.VALUE_COLOUR), by_colour.get(DIAGRAM.GRADIENT_COLOUR))
            rows[title] = {t.text: float(t.get("y")) for t in texts}
            for t in texts:
                if t.get("font-style") == "italic":
                    italic[title] = t.text
                    labels[title] = "".join(u.text for u in texts if u is not t)
            # a circle or a rounded box (an SVG path) around text is a gate; a bare dot is a fork
            if group.find(f".//{SVG}ellipse") is not None or group.find(f".//{SVG}path") is not None:
                (gates if texts else forks).append(title)
    names = _wire_names(labels, edges, italic, gates)
    wires = {names[w]: numbers[w] for w in names}
    return Circuit(labels, gates, wires, edges, forks, {name: w for w, name in names.items()}, rows)


def svg_of(source, at=None, **options) -> Circuit:
    return read_svg(stagegen.diagram(source, at, **options).image("svg"))


def dot_of(source, at=None, **options) -> Circuit:
    return read_dot(stagegen.diagram(source, at, **options).dot)


@pytest.fixture(params=["dot", pytest.param("svg", marks=needs_dot)])
def drawn(request):
    """The diagram read back from its DOT text, and from the SVG Graphviz draws of it."""
    return dot_of if request.param == "dot" else svg_of


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STAGEGEN_DEBUG", raising=False)
    (tmp_path / "circuit.txt").write_text(CIRCUIT, encoding="utf-8")
    return tmp_path


@pytest.fixture
def no_graphviz(tmp_path, monkeypatch):
    """A PATH on which no program, dot included, is found."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


# -- the numbers on the wires ------------------------------------------------------------------


def _check_circuit(c: Circuit, ordered: bool = True):
    x, y, z = -2.0, 5.0, -4.0
    q = x + y  # 3
    f = q * z  # -12
    dq, dz = z, q  # the multiply gate swaps: -4 and 3
    dx = dy = dq  # the add gate distributes: -4 and -4
    assert [c.labels[g] for g in c.gates] == ["+", "*"]
    assert c.labels["out"] == "f"
    assert c.numbers("q") == (q, dq) == (3.0, -4.0)
    assert c.numbers("f") == (f, 1.0) and f == -12.0
    assert (c.numbers("x"), c.numbers("y"), c.numbers("z")) == ((x, dx), (y, dy), (z, dz))
    assert dz == 3.0
    plus, times = c.gates
    wire = c.nodes
    order = list if ordered else sorted  # SVG lists edges in its own order
    assert order(c.into(plus)) == order([wire["x"], wire["y"]])  # DOT: operands in written order
    assert c.out_of(plus) == [wire["q"]]
    assert order(c.into(times)) == order([wire["q"], wire["z"]])
    assert c.out_of(times) == [wire["f"]] and c.into("out") == [wire["f"]]
    assert not c.forks


def test_circuit_dot_at_the_notes_point():
    d = stagegen.diagram(CIRCUIT, {"x": -2, "y": 5, "z": -4})
    _check_circuit(read_dot(d.dot))
    assert d.trace is not None and d.trace.row("q").value == 3.0


@needs_dot
def test_circuit_svg_at_the_notes_point():
    c = svg_of(CIRCUIT, {"x": -2, "y": 5, "z": -4})
    _check_circuit(c, ordered=False)
    # the value is printed above the wire's line and the gradient below it
    assert c.rows[c.nodes["q"]]["3"] < c.rows[c.nodes["q"]]["-4"]


@pytest.mark.parametrize("gates", ["grouped", "fine"])
def test_sigmoid_neuron(gates, drawn):
    p = NEURON_POINT
    dot = p["w0"] * p["x0"] + p["w1"] * p["x1"] + p["w2"]  # 1.0
    f = 1.0 / (1.0 + math.exp(-dot))
    ddot = (1.0 - f) * f  # the notes' sigmoid gradient
    c = drawn(NEURON, p, gates=gates)
    assert round(c.value("f"), 2) == 0.73 and c.gradient("f") == 1.0
    assert c.value("dot") == 1.0 and round(c.gradient("dot"), 1) == 0.2
    assert c.numbers("dot") == pytest.approx((dot, ddot), rel=1e-3)  # 4 significant digits
    assert c.numbers("w0") == pytest.approx((2.0, p["x0"] * ddot), rel=1e-3)
    assert c.numbers("x0") == pytest.approx((-1.0, p["w0"] * ddot), rel=1e-3)
    labels = [c.labels[g] for g in c.gates]
    if gates == "grouped":
        assert sorted(labels) == sorted(["*", "*", "+", "+", "σ"])
    else:  # the notes' circuit: *-1, exp, +1 (the constant folded into the label), 1/x
        assert sorted(labels) == sorted(["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"])
        den = 1.0 + math.exp(-dot)
        assert c.numbers("den") == pytest.approx((den, -1.0 / den**2), rel=1e-3)


def test_fine_and_grouped_gate_counts():
    def count(source, gates):
        return len(read_dot(stagegen.diagram(source, gates=gates).dot).gates)

    assert (count(NEURON, "grouped"), count(NEURON, "fine")) == (5, 8)  # sigmoid = *-1, exp, +1, 1/x
    assert (count(NOTES, "grouped"), count(NOTES, "fine")) == (8, 14)  # two sigmoids


def test_max_routes_the_gradient_to_one_input(drawn):
    x, y, z, w = PATTERNS_POINT.values()
    c = drawn(PATTERNS, PATTERNS_POINT)
    ds = 2.0  # from f = 2 * s
    assert sorted(c.labels[g] for g in c.gates) == sorted(["*", "max", "+", "*2"])
    assert c.numbers("m") == (max(z, w), ds) == (2.0, 2.0)
    assert c.numbers("z") == (z, ds)  # z wins the max: the whole gradient
    assert c.numbers("w") == (w, 0.0)  # w loses: nothing
    assert (c.gradient("x"), c.gradient("y")) == (y * ds, x * ds) == (-8.0, 6.0)


def test_a_fork_is_a_junction_whose_gradient_is_the_sum_of_its_branches():
    # f = x * x at x = 3: x is read twice by one gate; df/dx = 2x = 6, 3 from each branch
    c = read_dot(stagegen.diagram("f = x * x", {"x": 3.0}).dot)
    (junction,) = c.forks
    (times,) = c.gates
    assert c.out_of(junction) == [times, times]
    assert c.numbers("x") == (3.0, 6.0)
    # the notes' function: x and y each fork; the sums are the module's dx and dy
    t = stagegen.trace(NOTES, x=3, y=-4)
    c = read_dot(stagegen.diagram(NOTES, {"x": 3, "y": -4}).dot)
    assert len(c.forks) == 2
    assert sorted(len(c.out_of(j)) for j in c.forks) == [2, 3]  # y: sigmoid, +; x: +, sigmoid, +
    assert c.gradient("x") == pytest.approx(t.row("x").gradient, rel=1e-3)
    assert c.wires["x"][1] == f"{t.row('x').gradient:.4g}" == "2.06"
    assert c.wires["y"][1] == f"{t.row('y').gradient:.4g}" == "1.592"
    assert "a dot is a fork" in stagegen.diagram(NOTES, {"x": 3, "y": -4}).dot


def test_numbers_come_from_the_generated_module(monkeypatch):
    """A changed backward line in the module shows up on the wires: nothing is re-derived."""
    scale_backward_line(monkeypatch)
    c = read_dot(stagegen.diagram(CIRCUIT, {"x": -2, "y": 5, "z": -4}).dot)
    assert (c.gradient("q"), c.gradient("x"), c.gradient("z")) == (-40.0, -40.0, 3.0)


def test_without_a_point_the_wires_carry_names_only():
    c = read_dot(stagegen.diagram(NOTES).dot)
    assert set(c.wires) == {"sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden"}
    assert all(numbers == (None, None) for numbers in c.wires.values())
    assert [c.labels[g] for g in c.gates] == ["σ", "+", "σ", "+", "**2", "+", "1/x", "*"]
    assert (c.labels["v0"], c.labels["v1"], c.labels["out"]) == ("x", "y", "f")
    assert len(c.forks) == 2


def test_pruned_wires_have_no_gradient():
    c = read_dot(stagegen.diagram(NEURON, NEURON_POINT, wrt="w0").dot)
    assert c.wires["w1x1"] == ("6", None) and c.wires["w1"] == ("-3", None)
    assert c.numbers("w0x0") == pytest.approx((-2.0, 0.1966), rel=1e-3)


@pytest.mark.parametrize(
    "source, labels",
    [
        ("f = 1 + exp(-x)", ["*-1", "exp", "+1"]),
        ("f = x * 2.5", ["*2.5"]),
        ("f = 3 - x", ["3 - ·"]),
        ("f = x - 3", ["-3"]),
        ("f = 2**x", ["2**·"]),
        ("f = max(x, 0)", ["max(·, 0)"]),
        ("f = x**3 / 7", ["**3", "/7"]),
        ("f = x * -2", ["*(-2)"]),
    ],
)
def test_constants_are_folded_into_the_gate_label(source, labels):
    c = read_dot(stagegen.diagram(source).dot)
    assert [c.labels[g] for g in c.gates] == labels
    assert not any(node.startswith("c") for node in c.labels)


@needs_dot
def test_operands_enter_a_gate_in_written_order_top_to_bottom():
    # b's stage comes first, so without ordering its wire would be drawn first (on top)
    c = svg_of("b = exp(y)\na = exp(x)\nf = a - b", {"x": 1.0, "y": 2.0})
    (minus,) = [g for g in c.gates if c.labels[g] == "-"]
    a, b = c.nodes["a"], c.nodes["b"]
    assert sorted(c.into(minus)) == sorted([a, b])
    assert c.rows[a]["a"] < c.rows[b]["b"], "the first operand enters on top"
    assert (*c.numbers("a"), *c.numbers("b")) == pytest.approx((math.e, 1.0, math.e**2, -1.0), rel=1e-3)


# -- DOT text that user names cannot break -------------------------------------------------


def test_unicode_names():
    d = stagegen.diagram("ωt = θ * t\nf = sin(ωt)", {"θ": 2.0, "t": 0.5})
    c = read_dot(d.dot)
    assert c.labels["v0"] == "θ" and c.labels["out"] == "f"
    assert c.numbers("ωt") == pytest.approx((1.0, math.cos(1.0)), rel=1e-3)
    if HAS_DOT:
        svg = read_svg(d.image("svg"))
        assert svg.labels["v0"] == "θ" and svg.wires["ωt"] == c.wires["ωt"]


def test_markup_and_quotes_are_escaped():
    assert DIAGRAM._html("a\"<b>&'") == "a&quot;&lt;b&gt;&amp;&#x27;"
    assert DIAGRAM._html("x\ny\x00") == "xy"
    assert DIAGRAM._quoted('say "hi" \\N') == '"say \\"hi\\" \\\\N"'
    # a tooltip holds the stage's formula; the constant's text is quoted, not spliced
    d = stagegen.diagram("f = x * 2.5", {"x": 1.0})
    assert 'tooltip="(1) f = x * 2.5"' in d.dot


@needs_dot
def test_every_format_renders(tmp_path):
    d = stagegen.diagram(CIRCUIT, {"x": -2, "y": 5, "z": -4})
    magic = {"svg": b"<?xml", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "dot": b"digraph circuit {"}
    for fmt, head in magic.items():
        path = tmp_path / f"circuit.{fmt.upper() if fmt == 'png' else fmt}"
        d.render(path)
        assert path.read_bytes().startswith(head), fmt
    assert (tmp_path / "circuit.dot").read_text(encoding="utf-8") == d.dot
    assert not list(tmp_path.glob(".stagegen-*"))


def _fake_dot(folder, script: str) -> None:
    dot = folder / "dot"
    dot.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    dot.chmod(0o755)


def test_a_failing_dot_is_reported(no_graphviz, tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    _fake_dot(bin_, 'echo "Error: <stdin>: syntax error in line 1" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(bin_))
    with pytest.raises(stagegen.StagegenError) as error:
        stagegen.diagram(CIRCUIT).image("svg")
    assert error.value.render() == (
        "stagegen: error: Graphviz's 'dot -Tsvg' failed (exit status 1): "
        "Error: <stdin>: syntax error in line 1"
    )


def test_a_slow_dot_is_stopped(no_graphviz, tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    _fake_dot(bin_, f"exec '{sys.executable}' -c 'import time; time.sleep(30)'\n")
    monkeypatch.setenv("PATH", str(bin_))
    monkeypatch.setattr(DIAGRAM, "DOT_TIMEOUT", 0.5)
    with pytest.raises(stagegen.StagegenError) as error:
        stagegen.diagram(CIRCUIT).image("png")
    assert error.value.render() == (
        "stagegen: error: Graphviz's 'dot' did not lay out the circuit within 0.5 s\n"
        "  draw a smaller part of the expression, or write the DOT text with a .dot file name"
    )


def test_large_circuits_limit_dots_layout_passes():
    small = stagegen.diagram(
        "\n".join(f"s{k} = sin(s{k - 1})" if k else "s0 = x" + " * x" for k in range(60))
    )
    large = stagegen.diagram(
        "\n".join(f"s{k} = sin(s{k - 1})" if k else "s0 = x" + " * x" for k in range(61))
    )
    assert len(read_dot(small.dot).gates) == 60 and "nslimit" not in small.dot
    assert len(read_dot(large.dot).gates) == 61 and "nslimit=2, nslimit1=2, mclimit=0.5" in large.dot


# -- the API --------------------------------------------------------------------------------


def test_point_as_text_or_mapping():
    a = stagegen.diagram(CIRCUIT, "x=-2,y=5,z=-4")
    b = stagegen.diagram(CIRCUIT, {"x": -2, "y": 5, "z": -4})
    assert a.dot == b.dot
    with pytest.raises(UsageError) as error:
        stagegen.diagram(CIRCUIT, {"x": 1, "y": 2})
    assert error.value.render() == (
        "<input>: error: the point misses z; give a value for every input (x=..., y=..., z=...)"
    )
    with pytest.raises(UsageError, match="at: 'x' is not name=value"):
        stagegen.diagram(CIRCUIT, "x")


@needs_dot
def test_jupyter_shows_svg():
    d = stagegen.diagram(CIRCUIT)
    bundle = d._repr_mimebundle_()
    assert bundle["text/plain"] == d.dot
    assert ET.fromstring(bundle["image/svg+xml"]).tag == f"{SVG}svg"
    assert d._repr_svg_() == bundle["image/svg+xml"]


def test_jupyter_without_graphviz_shows_the_dot_text(no_graphviz):
    d = stagegen.diagram(CIRCUIT)
    assert d._repr_svg_() is None
    assert d._repr_mimebundle_() == {"text/plain": d.dot}


def test_render_without_graphviz(no_graphviz, tmp_path):
    d = stagegen.diagram(CIRCUIT)
    d.render(tmp_path / "c.dot")
    assert (tmp_path / "c.dot").read_text(encoding="utf-8") == d.dot
    with pytest.raises(stagegen.StagegenError) as error:
        d.render(tmp_path / "c.svg")
    assert error.value.render() + "\n" == MISSING_DOT.format("svg")
    assert not (tmp_path / "c.svg").exists()
    with pytest.raises(UsageError, match=r"cannot tell the format of .*c\.jpg"):
        d.render(tmp_path / "c.jpg")


# -- the command line ------------------------------------------------------------------------


@needs_dot
def test_cli_svg(folder, capsys):
    status, out, err = run(["circuit.txt", "--diagram", "c.svg", "--at", "x=-2, y=5,z=-4"], capsys)
    assert (status, out, err) == (0, "", "")
    _check_circuit(read_svg((folder / "c.svg").read_bytes()), ordered=False)


@needs_dot
def test_cli_png_of_the_fine_circuit(folder, capsys):
    (folder / "neuron.txt").write_text(NEURON, encoding="utf-8")
    point = ",".join(f"{k}={v:g}" for k, v in NEURON_POINT.items())
    status, out, err = run(["neuron.txt", "--gates", "fine", "--diagram", "n.png", "--at", point], capsys)
    assert (status, out, err) == (0, "", "")
    assert (folder / "n.png").read_bytes().startswith(b"\x89PNG")


def test_cli_dot_without_graphviz(folder, capsys, no_graphviz):
    status, out, err = run(["circuit.txt", "--diagram", "c.dot", "--at", "x=-2,y=5,z=-4"], capsys)
    assert (status, out, err) == (0, "", "")
    text = (folder / "c.dot").read_text(encoding="utf-8")
    assert text == stagegen.diagram(CIRCUIT, {"x": -2, "y": 5, "z": -4}, filename="circuit.txt").dot
    _check_circuit(read_dot(text))


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_cli_without_graphviz_says_what_to_install(folder, capsys, no_graphviz, fmt):
    (folder / "out.py").write_text("# old\n", encoding="utf-8")
    status, out, err = run(["circuit.txt", "--diagram", f"c.{fmt}", "-o", "out.py"], capsys)
    assert (status, out, err) == (2, "", MISSING_DOT.format(fmt))
    assert not (folder / f"c.{fmt}").exists()
    assert (folder / "out.py").read_text(encoding="utf-8") == "# old\n"  # nothing is written


def test_cli_without_graphviz_in_a_new_process(folder, monkeypatch, tmp_path):
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status, out, err = run_subprocess(["circuit.txt", "--diagram", "c.svg"], folder)
    assert (status, out, err) == (2, "", MISSING_DOT.format("svg"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--diagram", "c.jpg"],
            "stagegen: error: --diagram: cannot tell the format of 'c.jpg' from its extension; "
            "use one of .dot, .svg, .png, .pdf",
        ),
        (
            ["--diagram", "c"],
            "stagegen: error: --diagram: cannot tell the format of 'c' from its extension; "
            "use one of .dot, .svg, .png, .pdf",
        ),
        (
            ["--at", "x=1,y=2,z=3"],
            "stagegen: error: --at goes with --diagram, e.g. --diagram circuit.svg --at x=3,y=-4",
        ),
        (
            ["--diagram", "circuit.txt"],
            "stagegen: error: --diagram: cannot tell the format of 'circuit.txt' from its extension; "
            "use one of .dot, .svg, .png, .pdf",
        ),
        (
            ["--diagram", "c.dot", "-o", "c.dot"],
            "stagegen: error: the --diagram file is the input file or the -o file; choose another",
        ),
        (
            ["--diagram", "c.dot", "--at", "x=1,y=2"],
            "circuit.txt: error: --at misses z; give a value for every input (x=..., y=..., z=...)",
        ),
        (
            ["--diagram", "c.dot", "--at", "x=1,y=2,z=three"],
            "circuit.txt: error: --at: z=three is not a number (e.g. --at x=3,y=-4)",
        ),
        (
            ["--diagram", "c.dot", "--at", "x=1;y=2;z=3"],
            "circuit.txt: error: --at: x=1;y=2;z=3 is not a number (e.g. --at x=3,y=-4)",
        ),
        (
            ["--diagram", "c.dot", "--at", "x=1,y2,z=3"],
            "circuit.txt: error: --at: 'y2' is not name=value (e.g. --at x=3,y=-4)",
        ),
        (
            ["--diagram", "c.dot", "--at", "x=1,y=2,z=3,w=4"],
            "circuit.txt: error: --at names w, which is not an input; the inputs are x, y, z",
        ),
        (
            ["--diagram", "missing/c.dot"],
            "stagegen: error: cannot write missing/c.dot: the folder {folder}/missing does not exist",
        ),
    ],
    ids=[
        "extension",
        "no-extension",
        "at-alone",
        "txt-extension",
        "same-as-o",
        "missing",
        "word",
        "semicolons",
        "no-equals",
        "unknown",
        "no-folder",
    ],
)
def test_cli_usage_errors(folder, capsys, argv, message):
    status, out, err = run(["circuit.txt", *argv], capsys)
    assert (status, out, err) == (2, "", message.format(folder=folder) + "\n")
    assert "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["circuit.txt"]


def test_cli_domain_error_at_the_point(folder, capsys):
    (folder / "ln.txt").write_text("lnx = log(x)\nf = lnx * y\n", encoding="utf-8")
    status, out, err = run(["ln.txt", "--diagram", "c.dot", "--at", "x=-1,y=2"], capsys)
    assert (status, out) == (2, "")
    assert err.startswith("ln.txt: error: --at x=-1.0, y=2.0: the generated code raised ValueError: ")
    assert not (folder / "c.dot").exists()


def test_cli_diagram_with_trace_and_output(folder, capsys):
    status, out, err = run(
        ["circuit.txt", "--trace", "x=1,y=2,z=3", "--diagram", "c.dot", "-o", "out.py"], capsys
    )
    assert (status, err) == (0, "")
    assert out == stagegen.trace(CIRCUIT, x=1, y=2, z=3).table() + "\n"
    assert (folder / "out.py").read_text(encoding="utf-8") == stagegen.generate(
        CIRCUIT, filename="circuit.txt", output="out.py"
    )
    assert read_dot((folder / "c.dot").read_text(encoding="utf-8")).wires["q"] == (None, None)


def test_help_shows_a_diagram_example(capsys):
    status, out, err = run(["--help"], capsys)
    assert status == 0
    assert "stagegen examples/notes.txt --diagram notes.svg --at x=3,y=-4" in out

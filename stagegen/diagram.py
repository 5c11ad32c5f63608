"""The circuit diagram: the stage DAG as Graphviz DOT text, and its rendering.

A view, not a pass: it reads the stage DAG and the names of one `Build`, and
at a point every number on a wire comes from a `Trace`, that is from running
the generated module; nothing here evaluates a gate. The circuit runs left to
right: inputs on the left, one node per stage labelled by its gate's
`Gate.label` (constant operands folded into the label), the output on the
right. A wire carries its value and, below it, the gradient of the output with
respect to it, each in its own colour. A value used more than once forks at a
junction dot, so the gradient on the wire before the dot is the sum of what
its branches bring back. Nothing here branches on a gate's name.

The DOT text is written here, one statement a line; user text (names,
constants) reaches it only through `_html` (inside HTML-like
labels) or `_quoted`. Rendering to SVG, PNG or PDF runs Graphviz's ``dot``
program (no shell, with a timeout); DOT text needs no Graphviz.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from .backends import SOURCE
from .errors import ToolError, UsageError
from .expr import Num
from .files import check_target, write_atomically
from .gates import REGISTRY
from .pipeline import build
from .printer import Forms
from .trace import Trace, evaluate, gradient_of, number, parse_point

VALUE_COLOUR = "#1f5fbf"  # blue: the forward value on a wire
GRADIENT_COLOUR = "#c62828"  # red: the gradient flowing back on it
DIGITS = 4  # significant digits of a number on a wire
FORMATS = {".dot": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf"}  # extension -> format
DOT_TIMEOUT = 60.0  # seconds; see LARGE for what dot lays out within it
PNG_DPI = 144  # sharp on high-density screens and in READMEs
INSTALL = "install Graphviz (apt-get install graphviz, or brew install graphviz)"
FONT = 'fontname="Helvetica,Arial,sans-serif"'
WIRE_COLOUR = "gray30"
HOLE = "·"  # a value operand in a gate label that shows constant operands
# dot's layout time grows fast with long wires: a 180-gate circuit with a 60-way fork
# took over 60 s; with these limits on its network simplex and crossing passes, 6 s
# (300 gates: 20 s). Below the threshold the limits would only cost layout quality.
LARGE = 60  # stages
LARGE_LIMITS = "nslimit=2, nslimit1=2, mclimit=0.5, "


@dataclass(frozen=True)
class Diagram:
    """A circuit diagram: its DOT text, and the trace its numbers come from (None: no point)."""

    dot: str
    trace: Trace | None = None

    def image(self, format: str) -> bytes:
        """The diagram in `format` (``svg``, ``png``, ``pdf`` or ``dot``)."""
        if format == "dot":
            return self.dot.encode("utf-8")
        if format not in FORMATS.values():
            raise UsageError(f"unknown diagram format {format!r}; use one of {', '.join(FORMATS.values())}")
        return run_dot(self.dot, format)

    def render(self, path: str | os.PathLike) -> None:
        """Write the diagram to `path` (atomically), in the format its extension names."""
        path = os.fspath(path)
        image_format = format_of(path)
        check_target(path)  # before dot runs, which can take a minute
        write_atomically(path, self.image(image_format))

    def _repr_svg_(self) -> str | None:
        """Inline SVG in Jupyter; None (so the DOT text shows instead) without Graphviz."""
        try:
            return self.image("svg").decode("utf-8")
        except ToolError:
            return None

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        bundle = {"text/plain": self.dot}
        svg = self._repr_svg_()
        if svg is not None:
            bundle["image/svg+xml"] = svg
        return bundle


def format_of(path: str, option: str = "diagram") -> str:
    """The format a diagram file's extension names, or a usage error."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise UsageError(
            f"{option}: cannot tell the format of {path!r} from its extension; "
            f"use one of {', '.join(FORMATS)}"
        )
    return FORMATS[extension]


def run_dot(dot: str, format: str) -> bytes:
    """Graphviz's rendering of `dot` in `format`, from the ``dot`` program on PATH."""
    program = shutil.which("dot")
    if program is None:
        raise ToolError(
            f"cannot draw a .{format} file: Graphviz's 'dot' program was not found on PATH; "
            f"{INSTALL}, or write the DOT text with a .dot file name"
        )
    command = [program, f"-T{format}"]
    if format == "png":
        command.append(f"-Gdpi={PNG_DPI}")
    try:
        done = subprocess.run(command, input=dot.encode("utf-8"), capture_output=True, timeout=DOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"Graphviz's 'dot' did not lay out the circuit within {DOT_TIMEOUT:g} s",
            hint="draw a smaller part of the expression, or write the DOT text with a .dot file name",
        ) from None
    except OSError as exc:
        raise ToolError(
            f"cannot run Graphviz's 'dot' ({program}): {exc.strerror or exc}; {INSTALL}"
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ToolError(
            f"Graphviz's 'dot -T{format}' failed (exit status {done.returncode})"
            + (f": {said[0]}" if said else "")
        )
    return done.stdout


def diagram(source, at: Mapping | str | None = None, /, **options) -> Diagram:
    """The circuit diagram of `source`; with `at` (input name -> number, or
    text such as ``"x=3,y=-4"``), the value and gradient of every wire there.

    `options` are those of `stagegen.build` (``gates="fine"`` draws the
    primitive circuit). The result renders inline in Jupyter and writes files
    with ``.render("circuit.svg")``.
    """
    b = build(source, **options)
    if isinstance(at, str):
        at = parse_point(at, "at", b.program.filename)
    traced = None if at is None else evaluate(b, at, "the point")
    return Diagram(draw(b, traced), traced)


def draw(build, trace: Trace | None = None) -> str:
    """DOT text of `build`'s stage DAG; with `trace`, its numbers on the wires."""
    graph, names = build.graph, build.names
    n = len(graph.inputs)
    source = Forms(SOURCE)
    rows = None if trace is None else (*trace.inputs, *trace.rows)  # by value id
    outputs = tuple(names.values[o] for o in graph.outputs)
    # the output nodes, on the right: "out", or for several outputs "out1", "out2", ...
    ends = ["out"] if len(outputs) == 1 else [f"out{k + 1}" for k in range(len(outputs))]

    # how many times each value is read; an output is read once more, by its output node
    reads = [0] * (n + len(graph.stages))
    for stage in graph.stages:
        for op in stage.values():
            reads[op] += 1
    for o in graph.outputs:
        reads[o] += 1

    lines = [
        "digraph circuit {",
        f"  graph [rankdir=LR, ordering=in, {LARGE_LIMITS if len(graph.stages) > LARGE else ''}"
        f"nodesep=0.25, ranksep=0.25, {FONT}, fontsize=12, labelloc=b,",
        f"    label={_legend(outputs, trace, any(count > 1 for count in reads))}];",
        f"  node [{FONT}, fontsize=14, height=0.4, width=0.4, margin=0.04];",
        f"  edge [{FONT}, arrowsize=0.6, color={WIRE_COLOUR}];",
        "  // inputs, on the left",
        *(f"  v{v} [shape=plaintext, label=<<b>{_html(i.name)}</b>>];" for v, i in enumerate(graph.inputs)),
        "  { rank=source; " + "".join(f"v{v}; " for v in range(n)) + "}",
        "  // one node per stage, labelled by its gate",
    ]
    for k, stage in enumerate(graph.stages):
        shown = [names.values[op] if isinstance(op, int) else op for op in stage.operands]
        label = _gate_label(stage, source)
        shape = "circle" if len(label) <= 3 else "box, style=rounded"
        tooltip = f"({k + 1}) {names.values[stage.out]} = {_display(stage, shown, source)}"
        lines.append(f"  v{stage.out} [shape={shape}, label=<{_html(label)}>, tooltip={_quoted(tooltip)}];")
    lines += [
        "  // the output, on the right" if len(ends) == 1 else "  // the outputs, on the right",
        *(f"  {e} [shape=plaintext, label=<<b>{_html(o)}</b>>];" for e, o in zip(ends, outputs, strict=True)),
        "  { rank=sink; " + "".join(f"{e}; " for e in ends) + "}",
        "  // wires: a labelled wire runs through its label (value above the line, gradient below);",
        "  // a value read more than once forks at a junction dot",
    ]
    end = {}  # value id -> the node its readers' wires start from
    for v, count in enumerate(reads):
        if not count:
            continue
        end[v] = f"v{v}"
        label = _wire_label(names.values[v] if n <= v and v not in graph.outputs else None, rows and rows[v])
        if label:
            lines.append(f"  w{v} [shape=plaintext, margin=0, width=0, height=0, label={label}];")
            lines.append(f"  {end[v]} -> w{v} [dir=none, headport=w];")
            end[v] = f"w{v}:e"
        if count > 1:
            lines.append(f"  j{v} [shape=point, width=0.08, height=0.08, color={WIRE_COLOUR}];")
            lines.append(f"  {end[v]} -> j{v} [dir=none];")
            end[v] = f"j{v}"
    # each stage's wires in operand order: with ordering=in, the first operand enters on top
    for stage in graph.stages:
        lines += [f"  {end[op]} -> v{stage.out};" for op in stage.values()]
    lines += [f"  {end[o]} -> {e};" for o, e in zip(graph.outputs, ends, strict=True)] + ["}"]
    return "\n".join(lines) + "\n"


def _display(stage, operands, source: Forms) -> str:
    return source.fill(REGISTRY[stage.gate].instance(len(stage.operands), stage.params).display, operands)


def _gate_label(stage, source: Forms) -> str:
    """The gate's label, constant operands folded in: ``+1``, ``/7``, ``3 - ·``, ``max(·, 0)``."""
    gate = REGISTRY[stage.gate]
    label = gate.label(stage.params)
    operands = stage.operands
    constants = [source.operand(op) for op in operands if isinstance(op, Num)]
    if not constants:
        return label
    if (
        gate.operator
        and len(operands) == 2
        and len(constants) == 1
        and (isinstance(operands[1], Num) or gate.commutative)
    ):  # the notes' style: +1, *2, -3
        constant = constants[0]
        return label + (f"({constant})" if constant.startswith("-") else constant)
    return _display(stage, [HOLE if isinstance(op, int) else op for op in operands], source)


def _wire_label(name: str | None, row) -> str:
    """An HTML-like label for a wire: its name and value above the line, its gradient below."""
    top, bottom = [], ""
    if name is not None:
        top.append(f'<font color="gray30"><i>{_html(name)}</i></font>')
    if row:
        top.append(f'<font color="{VALUE_COLOUR}">{_html(number(row.value, DIGITS))}</font>')
        if row.gradient is not None:
            bottom = f'<font color="{GRADIENT_COLOUR}">{_html(number(row.gradient, DIGITS))}</font>'
    if not top:
        return ""
    # an empty cell below keeps the line in the middle, where the wire meets the label
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
        f'<tr><td>{" ".join(top)}</td></tr>'
        f'<tr><td sides="t" border="1" color="{WIRE_COLOUR}">{bottom or "&#160;"}</td></tr></table>>'
    )


def _legend(outputs: tuple[str, ...], trace: Trace | None, forks: bool) -> str:
    """The graph's label: the point, what the two colours mean, what a dot is."""
    if trace is None:
        return f"<the circuit of {_html(', '.join(outputs))}>"
    at = ", ".join(f"{i.name} = {number(i.value, DIGITS)}" for i in trace.inputs)
    legend = (
        f"at {_html(at)}:  "
        f'<font color="{VALUE_COLOUR}">value</font> above each wire, '
        f'<font color="{GRADIENT_COLOUR}">gradient {_html(gradient_of(outputs))}/d(wire)</font> below'
    )
    if forks:
        legend += "<br/>a dot is a fork: the gradient before it is the sum of its branches' gradients"
    return f"<{legend}>"


def _html(text: str) -> str:
    """Text for an HTML-like DOT label: markup characters as entities, no control characters."""
    return html.escape("".join(c for c in text if c.isprintable()), quote=True)


def _quoted(text: str) -> str:
    """A DOT double-quoted string for `text`; backslashes stay backslashes in Graphviz's escString."""
    text = "".join(c for c in text if c.isprintable())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["Diagram", "diagram", "draw", "format_of", "run_dot", "FORMATS"]

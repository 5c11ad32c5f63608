"""Program -> the text of a generated module.

Builds the template context from the stage DAG, the reverse pass and the
names: every expression comes from `printer.StagePrinter`, the layout from
``templates/module.py.j2`` (which only loops over finished lines). The text is
written in black's style directly; `compile()` checks it, and black runs only
when a line is longer than black's limit, so that black stays a test oracle
rather than the cost of every generation.
"""

from __future__ import annotations

import importlib.resources
import textwrap
from pathlib import Path

import jinja2

from .blackline import format_statement
from .differentiate import Backward, Line
from .gates import REGISTRY
from .ir import Graph
from .names import Names
from .options import Options
from .parse import Program
from .printer import MUL, SourcePrinter, StagePrinter

LINE_LENGTH = 88  # black's default


def _environment() -> jinja2.Environment:
    packaged = importlib.resources.files("stagegen") / "templates"
    folder = Path(str(packaged))
    if not (folder / "module.py.j2").is_file():  # a source checkout or editable install
        folder = Path(__file__).resolve().parent.parent / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


_ENV = _environment()


def _tuple(items: list[str]) -> str:
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


class _Module:
    """Lines of one module; one instance per `emit` call."""

    def __init__(self, program: Program, graph: Graph, backward: Backward, names: Names, options: Options):
        self.program, self.graph, self.backward, self.names, self.options = (
            program,
            graph,
            backward,
            names,
            options,
        )
        self.printer = StagePrinter(options.backend, names.module)

    def operands(self, stage, source: bool = False) -> list[str]:
        return [
            self.names.values[op] if isinstance(op, int) else self.printer.constant(op.value, source)
            for op in stage.operands
        ]

    def forward(self) -> list[str]:
        return [
            f"{self.names.values[s.out]} = {self.printer.forward(s, self.operands(s))}  # ({k + 1})"
            for k, s in enumerate(self.graph.stages)
        ]

    def display(self, k: int) -> str:
        stage = self.graph.stages[k]
        return f"{self.names.values[stage.out]} = {self.printer.display(stage, self.operands(stage, True))}"

    def line(self, line: Line, unit_dout: bool) -> str:
        """One adjoint line; `unit_dout`: the output's adjoint is the literal 1.0."""
        graph, names = self.graph, self.names
        stage = graph.stages[line.stage]
        local, prec = self.printer.local(stage, line.operand, self.operands(stage), names.values[stage.out])
        upstream = self.backward.upstream(graph, line)
        up = names.adjoints[upstream]
        target = names.adjoints[line.target]
        op = "+=" if line.accumulate else "="
        if self.backward.style == "seed":
            text = f"({local}) * {up}"
        elif unit_dout and upstream == graph.output:
            # dout is the literal 1.0 here; the gradient must still be a float
            if local.lstrip("-").isdigit():
                text = f"{local}.0"
            elif self.printer.floating(stage, line.operand):
                text = local
            else:
                text = f"({local}) * 1.0" if prec < MUL else f"{local} * 1.0"
        elif local == "1":
            text = up
        elif local == "-1":
            op, text = ("-=", up) if line.accumulate else (op, f"-{up}")
        else:
            text = f"({local}) * {up}" if prec < MUL else f"{local} * {up}"
        convention = REGISTRY[stage.gate].convention
        return f"{target} {op} {text}  # ({line.stage + 1}){'; ' + convention if convention else ''}"

    def backward_lines(self, unit_dout: bool) -> list[str]:
        lines, current = [], None
        for line in self.backward.lines:
            if line.stage != current:
                current = line.stage
                lines.append(f"# backprop {self.display(current)}")
            lines.append(self.line(line, unit_dout))
        for k in self.backward.zero:
            lines.append(
                f"{self.names.adjoints[k]} = 0.0  # {self.graph.inputs[k].name} does not reach "
                f"{self.names.values[self.graph.output]}"
            )
        return lines

    def docstring(self, n_lines: int) -> str:
        graph, names, program = self.graph, self.names, self.program
        inputs = ", ".join(i.name for i in graph.inputs)
        out = names.values[graph.output]
        wrt = ", ".join(graph.inputs[k].name for k in self.backward.wrt)
        cached = [names.values[v] for v in self.backward.cache]
        parts = [
            f"{out}({inputs}) and its gradient, staged by stagegen.",
            "",
            *(
                []
                if len(self.backward.wrt) == len(graph.inputs)
                else [f"Gradients with respect to {wrt} only.", ""]
            ),
            f"Generated by: {self.options.command(program.filename)}",
            *textwrap.wrap(
                f"Cost: {len(graph.stages)} forward stages, {n_lines} backward lines "
                f"({n_lines / max(1, len(graph.stages)):.2f} per stage); the cache holds "
                f"{len(cached)} value{'s' if len(cached) != 1 else ''}"
                + (f": {', '.join(cached)}." if cached else "."),
                LINE_LENGTH - 4,
            ),
        ]
        if graph.rewrites:
            parts += [
                "",
                "Rewrites (each circuit became one grouped gate; --gates fine keeps them as written):",
            ]
            for gate, span in graph.rewrites:
                written = f"{span.line}:{span.col} {_spanned(span)}" if span else "a circuit"
                parts += textwrap.wrap(
                    f"{written} -> {REGISTRY[gate].source}: {REGISTRY[gate].why}",
                    LINE_LENGTH - 4,
                    initial_indent="    ",
                    subsequent_indent="        ",
                )
        if graph.dropped:
            parts += [
                "",
                *textwrap.wrap(
                    f"Not emitted, the output does not depend on them: {', '.join(graph.dropped)}.",
                    LINE_LENGTH - 4,
                ),
            ]
        parts += ["", f"Source ({program.filename}):", ""]
        parts += ["    " + line if line else "" for line in _source_lines(program, graph, names)]
        return "\n".join(_escape(p) for p in parts)

    def render(self, instrument: bool) -> str:
        graph, names, backward = self.graph, self.names, self.backward
        inputs = [i.name for i in graph.inputs]
        cached = [names.values[v] for v in backward.cache]
        grads = [names.adjoints[k] for k in backward.wrt]
        out = names.values[graph.output]
        forward = self.forward()
        back = self.backward_lines(unit_dout=False)
        if backward.style == "seed":
            fused = [f"{names.dout} = 1.0", *back]
        else:
            fused = self.backward_lines(unit_dout=True)
        n_lines = sum(1 for line in back if not line.startswith("#"))
        uses_math = self.printer.code.uses_module
        imports = (
            ("import math" if names.module == "math" else f"import math as {names.module}")
            if uses_math
            else ""
        )
        unpack = ""
        if cached:
            unpack = _bracketed(
                "(",
                cached,
                f") = {names.cache}",
                4,
                one_line=f"{_tuple(cached) if len(cached) == 1 else ', '.join(cached)} = " f"{names.cache}",
            )
        return _ENV.get_template("module.py.j2").render(
            docstring=self.docstring(n_lines),
            imports=imports,
            inputs=_bracketed("INPUTS = (", [f'"{n}"' for n in inputs], ")", 0, tuple_=True),
            wrt=_bracketed(
                "WRT = (", [f'"{graph.inputs[k].name}"' for k in backward.wrt], ")", 0, tuple_=True
            ),
            output=f'"{out}"',
            forward_def=_bracketed("def forward(", inputs, "):", 0),
            forward=forward,
            forward_return=(
                _bracketed(f"return {out}, (", cached, ")", 4, tuple_=True)
                if cached
                else f"    return {out}, ()"
            ),
            backward_def=_bracketed("def backward(", [names.dout, names.cache], "):", 0),
            cache_unpack=unpack,
            backward=back,
            backward_return=_bracketed("return (", grads, ")", 4, tuple_=True),
            fused_def=_bracketed("def value_and_grad(", inputs, "):", 0),
            fused=fused,
            fused_return=_bracketed(f"return {out}, (", grads, ")", 4, tuple_=True),
            instrument=instrument,
        )


def _bracketed(
    head: str, items: list[str], tail: str, indent: int, tuple_: bool = False, one_line: str | None = None
) -> str:
    """``head items tail`` as black writes it: on one line if that fits, else one
    item per line with a trailing comma (when even the items alone would not fit
    on one line; the case in between is left to black)."""
    pad = " " * indent
    body = ", ".join(items) + ("," if tuple_ and len(items) == 1 else "")
    line = pad + (one_line if one_line is not None else head + body + tail)
    if len(line) <= LINE_LENGTH or len(pad) + 4 + len(body) <= LINE_LENGTH:
        return line
    return "\n".join([pad + head, *(f"{pad}    {item}," for item in items), pad + tail])


def _source_lines(program: Program, graph: Graph, names: Names) -> list[str]:
    if program.text is not None:
        return [line.rstrip() for line in program.text.strip("\n").splitlines()]
    printer = SourcePrinter()
    try:
        lines = [f"{s.name} = {printer.doprint(s.expr)}" for s in program.statements]
    except RecursionError:
        lines = []
    if not lines or sum(map(len, lines)) > 20_000:
        return [f"(a SymPy expression of {len(graph.stages)} stages, too large to show here)"]
    return lines


def _spanned(span) -> str:
    """The source text a span covers (one line)."""
    return span.text[span.col - 1 : span.end_col - 1] if span.text else ""


def _escape(text: str) -> str:
    """Docstring-safe text that reads back as `text` (backslashes, quotes, control characters)."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if c >= " " or c == "\n" else f"\\x{ord(c):02x}" for c in text)


def emit(
    program: Program,
    graph: Graph,
    backward: Backward,
    names: Names,
    options: Options,
    instrument: bool = False,
) -> str:
    """The generated module's source text, black-formatted.

    `instrument`: the same statements, but value_and_grad returns ``locals()``,
    every forward value and adjoint by name (for `verify` and traces only).
    """
    text = _Module(program, graph, backward, names, options).render(instrument)
    try:
        compile(text, "<stagegen output>", "exec")
    except SyntaxError as exc:  # a stagegen bug: show the numbered text
        numbered = "\n".join(f"{k + 1:5d}  {line}" for k, line in enumerate(text.splitlines()))
        raise AssertionError(f"generated code does not compile: {exc}\n{numbered}") from exc
    return _format_long_lines(text)


def _format_long_lines(text: str) -> str:
    """Let black format the few statements longer than its limit, one at a time.

    Every other line is already in black's style, so formatting statements one
    by one gives black's output for the module at a cost that grows with the
    number of long lines, not the size of the module.
    """
    lines = text.split("\n")
    body = text.index('"""', 3) + 3  # black leaves the docstring alone
    start = text.count("\n", 0, body) + 1
    if all(len(line) <= LINE_LENGTH for line in lines[start:]):
        return text
    import black

    mode = black.Mode(line_length=LINE_LENGTH)
    memo: dict[str, str] = {}
    out = lines[:start]
    for line in lines[start:]:
        if len(line) <= LINE_LENGTH or line.lstrip().startswith("#"):
            out.append(line)  # black leaves a long comment as it is
        elif line.startswith("def "):
            formatted = format_statement(line + "\n    pass\n", mode, memo)
            out.extend(formatted.split("\n")[:-3])
        elif line.startswith("    "):
            depth = (len(line) - len(line.lstrip(" "))) // 4
            header = ["def _():"] + ["    " * d + "if 1:" for d in range(1, depth)]
            formatted = format_statement("\n".join(header + [line]) + "\n", mode, memo)
            out.extend(formatted.split("\n")[len(header) : -1])
        else:
            out.extend(format_statement(line + "\n", mode, memo).split("\n")[:-1])
    return "\n".join(out)

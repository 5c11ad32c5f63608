"""Program -> the text of a generated module.

Builds the template context from the stage DAG, the reverse pass and the
names: every expression comes from `printer.StagePrinter`, the layout from
``templates/module.py.j2`` (which only loops over finished lines). The text is
written in black's style directly, and black runs only when a line is longer
than black's limit, so that black stays a test oracle rather than the cost of
every generation. `compile()` checks the finished text: a module that does not
compile is a stagegen bug (`InternalError`), never returned or written.
"""

from __future__ import annotations

import importlib.resources
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .blackline import format_statement
from .differentiate import Backward, Line, reads
from .differentiate import local as local_rule
from .errors import InternalError
from .gates import REGISTRY
from .ir import Graph
from .names import Names
from .options import Options
from .parse import Program
from .printer import MUL, SourcePrinter, StagePrinter
from .shapes import elementwise

LINE_LENGTH = 88  # black's default
SOURCE_LIMIT = 20_000  # characters of a SymPy object's source shown in the docstring
SOURCE_DEPTH = 40  # deeper SymPy expressions are shown as their stages


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


@dataclass(frozen=True)
class _Statement:
    """One line of a function body, with the names it binds and reads (from the
    IR, not its text); a comment binds and reads nothing."""

    text: str
    binds: str = ""
    reads: tuple[str, ...] = ()
    alias: str = ""  # binds this name's array (or a view of it), not a new one
    array: bool = True  # binds an array, or what may be one (not a number of shape ())
    block: tuple = ()  # the forward stage, or the stage a backprop block is about


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
        self.numpy = options.backend == "numpy"
        # compact math: the rules' integer constants as floats (CPython's float fast path)
        self.floats = not self.numpy and backward.style == "compact"
        # numpy: adjoints that may take += in place (a fresh array of their own shape)
        self.in_place: dict[int, bool] = {}
        if self.numpy:
            # per adjoint: its number of contributions, and whether every one has a known shape
            self.contributions: dict[int, int] = {}
            self.known: dict[int, bool] = {}
            for line in backward.lines:
                self.contributions[line.target] = self.contributions.get(line.target, 0) + 1
                known = self.shape(graph.stages[line.stage].out) is not None
                self.known[line.target] = self.known.get(line.target, True) and known
            # a program of elementwise stages on inputs of unknown shape
            self.unknown_elementwise = elementwise(graph) and None in graph.shapes[: len(graph.inputs)]

    def shape(self, value: int):
        return self.graph.shapes[value] if self.graph.shapes else ()

    def unit_dout(self) -> bool:
        """Whether value_and_grad may fold dout = 1.0 into the lines: a scalar
        output, or an elementwise one of unknown shape (whose gradients
        `_unbroadcast` brings to their inputs' shapes)."""
        return self.backward.style == "compact" and self.shape(self.graph.output) in ((), None)

    def operands(self, stage, source: bool = False) -> list[str]:
        return [
            self.names.values[op] if isinstance(op, int) else self.printer.constant(op.value, source)
            for op in stage.operands
        ]

    def forward(self) -> list[_Statement]:
        values = self.names.values
        statements = []
        for k, s in enumerate(self.graph.stages):
            text = self.printer.forward(s, self.operands(s))
            statements.append(
                _Statement(
                    f"{values[s.out]} = {text}  # ({k + 1})",
                    values[s.out],
                    tuple(values[op] for op in s.values()),
                    alias=_viewed(text),
                    array=self.shape(s.out) != (),
                    block=("forward", k),
                )
            )
        return statements

    def display(self, k: int) -> str:
        stage = self.graph.stages[k]
        return f"{self.names.values[stage.out]} = {self.printer.display(stage, self.operands(stage, True))}"

    def line(self, line: Line, unit_dout: bool) -> _Statement:
        """One adjoint line; `unit_dout`: the output's adjoint is the literal 1.0."""
        graph, names = self.graph, self.names
        stage = graph.stages[line.stage]
        gate = REGISTRY[stage.gate]
        upstream = self.backward.upstream(graph, line)
        up = names.adjoints[upstream]
        unit = unit_dout and upstream == graph.output
        rule = local_rule(graph, stage, line.operand)
        local, prec = self.printer.local(
            stage, line.operand, self.operands(stage), names.values[stage.out], up, unit, self.floats
        )
        target = names.adjoints[line.target]
        sign = "+"
        if gate.structural:  # the rule is the whole contribution
            text = local
        elif self.backward.style == "seed":
            text = f"({local}) * {up}"
        elif unit:
            # dout is the literal 1.0 here; the gradient must still be a float
            if self.printer.floating(stage, line.operand, self.floats):
                text = local
            elif rule.is_Integer:
                text = f"{local}.0"
            else:
                text = f"({local}) * 1.0" if prec < MUL else f"{local} * 1.0"
        elif rule == 1:
            text = up
        elif rule == -1 and line.accumulate:
            sign, text = "-", up
        elif rule == -1:
            text = f"-{up}"
        else:
            text = f"({local}) * {up}" if prec < MUL else f"{local} * {up}"
        if line.reduce is None:
            text = f"_unbroadcast({text}, {names.values[line.target]})"
        elif line.reduce:
            text = self.printer.reduce(text, line.reduce)
        comment = f"  # ({line.stage + 1}){'; ' + gate.convention if gate.convention else ''}"
        read = [names.values[v] for v in reads(stage, rule)]
        read += [] if unit else [up]
        read += [names.values[line.target]] if line.reduce is None else []
        kind = {"array": self.shape(line.target) != (), "block": ("backprop", line.stage)}
        if not line.accumulate:
            fresh = not _is_view(text)
            if self.numpy and not fresh and self._returned_alone(line.target):
                # a returned gradient owns its array: never dout's, another gradient's, or a view
                text, fresh = f"{names.module}.copy({text})", True
            # a name or view of another array is never updated in place
            self.in_place[line.target] = fresh
            return _Statement(f"{target} = {text}{comment}", target, tuple(read), alias=_viewed(text), **kind)
        read.append(target)
        if self.numpy and not (self.in_place[line.target] and self._exact(line.target, unit_dout)):
            return _Statement(f"{target} = {target} {sign} {text}{comment}", target, tuple(read), **kind)
        return _Statement(f"{target} {sign}= {text}{comment}", target, tuple(read), alias=target, **kind)

    def _returned_alone(self, value: int) -> bool:
        """An input's gradient (an array, possibly) made by one line."""
        return value < len(self.graph.inputs) and self.shape(value) != () and self.contributions[value] == 1

    def _exact(self, value: int, unit_dout: bool) -> bool:
        """Every contribution to value's adjoint has the shape of the first one.

        Known shapes: the reductions bring each to value's shape. A program of
        elementwise stages on inputs of unknown shape sums only at the end, so
        every adjoint there has the shape of dout (unless dout is folded away)."""
        if not unit_dout and self.unknown_elementwise:
            return True
        return self.shape(value) is not None and self.known[value]

    def backward_lines(self, unit_dout: bool) -> list[_Statement]:
        graph, names, backward = self.graph, self.names, self.backward
        lines, current = [], None
        for line in backward.lines:
            if line.stage != current:
                current = line.stage
                lines.append(_Statement(f"# backprop {self.display(current)}", block=("backprop", current)))
            lines.append(self.line(line, unit_dout))
        for k in backward.unbroadcast:
            if k in backward.wrt and k not in backward.zero:
                name, grad = graph.inputs[k].name, names.adjoints[k]
                text = f"{grad} = _unbroadcast({grad}, {name})  # to {name}'s shape"
                lines.append(_Statement(text, grad, (grad, name)))
        for k in backward.zero:
            name, grad = graph.inputs[k].name, names.adjoints[k]
            zero = "0.0" if self.shape(k) == () else f"{names.module}.zeros_like({name})"
            text = f"{grad} = {zero}  # {name} does not reach {names.values[graph.output]}"
            lines.append(_Statement(text, grad, (name,)))
        return lines

    def shapes_note(self) -> str:
        """The numpy backend's contract on shapes, for this module."""
        from .shapes import text

        graph, names = self.graph, self.names
        out = names.values[graph.output]
        if self.shape(graph.output) is None and all(self.shape(k) is None for k in range(len(graph.inputs))):
            return (
                "NumPy, elementwise: the inputs may be arrays of any shapes that broadcast "
                f"together (or floats); dout has {out}'s shape; each gradient comes back with "
                "its input's shape (summed over the axes broadcasting added)."
            )
        shapes = ", ".join(
            f"{i.name} {'any' if self.shape(k) is None else text(self.shape(k))}"
            for k, i in enumerate(graph.inputs)
        )
        result = "any" if self.shape(graph.output) is None else text(self.shape(graph.output))
        return (
            f"NumPy, shapes: {shapes} -> {out} {result}. dout has {out}'s shape; each "
            "gradient comes back with its input's shape."
        )

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
        if self.numpy:
            parts += ["", *textwrap.wrap(self.shapes_note(), LINE_LENGTH - 4)]
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
        parts += ["    " + line if line else "" for line in self.source_lines()]
        return "\n".join(_escape(p) for p in parts)

    def source_lines(self) -> list[str]:
        """The source for the docstring: a file's text verbatim; a SymPy object
        printed per statement while that stays small and shallow, else its
        stages, one per line (a shared subexpression printed as a tree repeats
        at every use, which grows exponentially with the nesting of the
        sharing; the printer recurses once per level of nesting)."""
        program, graph = self.program, self.graph
        if program.text is not None:
            return [line.rstrip() for line in program.text.strip("\n").splitlines()]
        declarations = [f"{i.name}: scalar" for i in graph.inputs]  # the argument order
        exprs = [s.expr for s in program.statements]
        size, depth = _tree_shape(exprs)
        if size <= SOURCE_LIMIT // 4 and depth <= SOURCE_DEPTH:
            printer = SourcePrinter()
            lines = declarations + [f"{s.name} = {printer.doprint(s.expr)}" for s in program.statements]
            if sum(map(len, lines)) <= SOURCE_LIMIT:
                return lines
        staged = declarations + [self.display(k) for k in range(len(graph.stages))]
        if sum(map(len, staged)) <= SOURCE_LIMIT:
            return staged
        return [f"(a SymPy expression of {len(graph.stages)} stages, too large to show here)"]

    def render(self) -> str:
        graph, names, backward = self.graph, self.names, self.backward
        inputs = [i.name for i in graph.inputs]
        cached = [names.values[v] for v in backward.cache]
        grads = [names.adjoints[k] for k in backward.wrt]
        out = names.values[graph.output]
        forward = self.forward()
        back = self.backward_lines(unit_dout=False)
        if self.unit_dout():
            fused = self.backward_lines(unit_dout=True)
        else:
            seed = "1.0" if self.shape(graph.output) == () else f"{names.module}.ones_like({out})"
            dout = _Statement(
                f"{names.dout} = {seed}", names.dout, (out,), array=self.shape(graph.output) != ()
            )
            fused = [dout, *back]
        n_lines = sum(1 for line in back if line.binds)
        if self.numpy:
            bodies = (
                _released(forward, {*cached, out}),
                _released(back, set(grads)),
                _released(forward + fused, {*grads, out}),
            )
        else:
            bodies = tuple([st.text for st in part] for part in (forward, back, forward + fused))
        text = "\n".join(bodies[2])
        helpers = [h for h in ("_unbroadcast", "_erf") if h + "(" in text]
        imports = []
        if self.numpy or self.printer.code.uses_module:
            module = "numpy" if self.numpy else "math"
            imports.append(f"import {module}" + ("" if names.module == module else f" as {names.module}"))
        if "_erf" in helpers:
            imports.insert(0, "import math")  # NumPy has no erf
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
            forward=bodies[0],
            forward_return=(
                _bracketed(f"return {out}, (", cached, ")", 4, tuple_=True)
                if cached
                else f"    return {out}, ()"
            ),
            backward_def=_bracketed("def backward(", [names.dout, names.cache], "):", 0),
            cache_unpack=unpack,
            backward=bodies[1],
            backward_return=_bracketed("return (", grads, ")", 4, tuple_=True),
            fused_def=_bracketed("def value_and_grad(", inputs, "):", 0),
            fused=bodies[2],
            fused_return=_bracketed(f"return {out}, (", grads, ")", 4, tuple_=True),
            locate=not self.numpy,
            helpers=helpers,
            np=names.module,
        )


def _is_view(text: str) -> bool:
    """Whether an adjoint's right-hand side names another array (or a view of
    one, ``dD.T``) rather than making a new one."""
    return text.removesuffix(".T").isidentifier()


def _viewed(text: str) -> str:
    """The name whose array a right-hand side names or views; "" for a new array."""
    return text.removesuffix(".T") if _is_view(text) else ""


def _released(statements: list[_Statement], keep: set[str]) -> list[str]:
    """The statements' text, each array the function made released (`del` of
    every name bound to it) at the end of the stage block that last reads it,
    so a call holds only the arrays still to be read: on large elementwise
    work, fresh pages for new arrays cost as much as the arithmetic. Arrays a
    returned name (`keep`) holds, the arguments and the cache's arrays stay;
    nothing is released after the last block."""
    last: dict[int, int] = {}  # array (the statement that made it) -> the statement that last uses it
    holds: dict[str, int | None] = {}  # name -> its array (None: one the function did not make)
    for i, statement in enumerate(statements):
        for name in statement.reads:
            if holds.get(name) is not None:
                last[holds[name]] = i
        if statement.binds:
            holds[statement.binds] = array = _held(statement, holds, i)
            if array is not None:
                last[array] = i
    dying: dict[int, list[int]] = {}
    for array, i in last.items():
        dying.setdefault(i, []).append(array)
    holders: dict[int, dict[str, None]] = {}  # array -> the names bound to it now, in binding order
    holds.clear()
    lines, pending = [], []
    for i, statement in enumerate(statements):
        if pending and statement.block != statements[i - 1].block:
            lines.append("del " + ", ".join(pending))
            pending = []
        lines.append(statement.text)
        name = statement.binds
        if name:
            if holds.get(name) is not None:
                del holders[holds[name]][name]
            holds[name] = array = _held(statement, holds, i)
            if array is not None:
                holders.setdefault(array, {})[name] = None
        for array in sorted(dying.get(i, ())):
            group = list(holders.pop(array, {}))
            if not keep.intersection(group):
                pending += group
    return lines


def _held(statement: _Statement, holds: dict[str, int | None], i: int) -> int | None:
    """The array `statement` (number i) binds: a new one, the one it aliases, or
    None for a number or an array the function did not make."""
    if not statement.array:
        return None
    return holds.get(statement.alias) if statement.alias else i


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


def _tree_shape(exprs) -> tuple[int, int]:
    """Nodes of SymPy expressions counted as trees (a shared subexpression once
    per use), and the deepest nesting, in time linear in the number of distinct
    nodes. Nodes are told apart by identity: SymPy's == compares equal but
    distinct objects as trees."""
    shapes: dict[int, tuple[int, int]] = {}
    stack = list(exprs)
    while stack:
        e = stack[-1]
        if id(e) in shapes:
            stack.pop()
            continue
        pending = [a for a in e.args if id(a) not in shapes]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        kids = [shapes[id(a)] for a in e.args]
        shapes[id(e)] = (1 + sum(k[0] for k in kids), 1 + max((k[1] for k in kids), default=0))
    return sum(shapes[id(e)][0] for e in exprs), max((shapes[id(e)][1] for e in exprs), default=0)


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
) -> str:
    """The generated module's source text, black-formatted."""
    text = _format_long_lines(_Module(program, graph, backward, names, options).render())
    try:
        compile(text, "<stagegen output>", "exec")
    except SyntaxError as exc:  # a stagegen bug: show the numbered text
        numbered = "\n".join(f"{k + 1:5d}  {line}" for k, line in enumerate(text.splitlines()))
        raise InternalError(f"the generated module does not compile: {exc}\n{numbered}") from exc
    return text


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
            out.extend(formatted.split("\n")[:-2])  # without "    pass" and the final newline
        elif line.startswith("    "):
            depth = (len(line) - len(line.lstrip(" "))) // 4
            header = ["def _():"] + ["    " * d + "if 1:" for d in range(1, depth)]
            formatted = format_statement("\n".join(header + [line]) + "\n", mode, memo)
            out.extend(formatted.split("\n")[len(header) : -1])
        else:
            out.extend(format_statement(line + "\n", mode, memo).split("\n")[:-1])
    return "\n".join(out)

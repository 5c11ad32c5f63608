"""Input text or a SymPy object -> a `Program`: SymPy expressions per named stage.

The text is read with Python's `ast` and converted node by node, against a
whitelist, into SymPy trees built from the gate registry's function classes
(`Gate.function`), which keep the written order of operands (SymPy's own Add,
Mul and Max sort theirs). Nothing is evaluated or executed: no `eval`, no
`sympify` of text. Constant subexpressions are folded here, after their size
is checked. Every traversal uses an explicit stack.

Errors are `ParseError`/`UnsupportedError` located at ``FILE:LINE:COL``.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import sys
import tokenize
import warnings
from dataclasses import dataclass, field

import sympy as sp

from . import subscripts, sympy_source
from .errors import ParseError, Span, UnsupportedError, python_lines
from .expr import Const
from .gates import (
    BY_KEYWORDS,
    BY_OPERATOR,
    BY_SINGLE,
    BY_SOURCE,
    CONSTANTS,
    GATHER,
    REGISTRY,
    SELECTION,
    SIZE,
    SUBSCRIPT,
    sympy_number,
)
from .identifiers import Namespace, name_list, problem, shown
from .ir import Domain, Input
from .shapes import linear, sized
from .tokens import keyword_as_name, longest_number

MAX_EXPONENT = 10**6  # |n| in x**n; beyond it x**n over- or underflows for |x - 1| > 1e-5
# A larger input is refused before it is parsed: Python's parser needs some
# 150 bytes of memory per byte of source (4 GB for 24 MB), and 10 MB is already
# several hundred thousand stages.
MAX_SOURCE_CHARS = 10_000_000


class NodeMap:
    """A map keyed by object identity that keeps its keys alive.

    Spans and roles are attached to SymPy tree nodes by identity (SymPy's ==
    would merge equal subtrees written in different places). Holding the key
    means no later object can take a freed key's id and, with it, a span it
    never had; the output then cannot depend on what was built before."""

    def __init__(self, other: NodeMap | None = None):
        self._items: dict[int, tuple] = dict(other._items) if other is not None else {}

    def get(self, node, default=None):
        found = self._items.get(id(node))
        return default if found is None else found[1]

    def setdefault(self, node, value) -> None:
        self._items.setdefault(id(node), (node, value))

    def __setitem__(self, node, value) -> None:
        self._items[id(node)] = (node, value)

    def __contains__(self, node) -> bool:
        return id(node) in self._items


@dataclass(frozen=True)
class Statement:
    name: str
    expr: sp.Expr  # gate-function tree over input and stage Symbols and constants
    span: Span | None  # the expression's place in the file


@dataclass(frozen=True)
class Program:
    filename: str
    text: str | None  # the source text; None for a SymPy object
    inputs: tuple[Input, ...]
    statements: tuple[Statement, ...]
    spans: NodeMap = field(default_factory=lambda: NodeMap(), compare=False)  # tree node -> Span
    # a SymPy object's statements in the input language, for the docstring (None:
    # too large or too deep to show as written; the stages are shown instead)
    shown: tuple[str, ...] | None = None
    # the outputs' names, in order: a stage's, or an identity stage's (f = x,
    # delta = N1); () means the last statement alone
    outputs: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.outputs:
            object.__setattr__(self, "outputs", (self.statements[-1].name,))

    def symbol(self, name: str) -> sp.Symbol:
        return sp.Symbol(name, real=True)


_CONSTRUCTS = {
    ast.Lambda: "a lambda expression",
    ast.IfExp: "a conditional expression",
    ast.BoolOp: "a boolean operation ('and', 'or')",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment expression ':='",
    ast.Starred: "a starred expression",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield from'",
    ast.Slice: "a slice",
}
_OPERATORS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
}
_COMPARISONS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
# what a construct Python has but the input language writes otherwise
_INSTEAD = {
    ast.IfExp: "write where(cond, a, b): e.g. where(x > 0, x, 0)",
    ast.BoolOp: "join masks with & and |: (x > 0) & (y < 1)",
}
_HINT_STAGING = "split it into named stages, one per line (t1 = ..., t2 = ...)"


class _Source:
    """The text of one file, and conversion of `ast` positions to character spans."""

    def __init__(self, text: str, filename: str):
        self.filename = filename
        self.lines = python_lines(text)

    def line(self, lineno: int) -> str:
        return self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""

    def col(self, lineno: int, byte_offset: int) -> int:
        # ast counts columns in UTF-8 bytes; users count characters.
        if self.line(lineno).isascii():
            return byte_offset + 1
        return len(self.line(lineno).encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1

    def span(self, node: ast.AST) -> Span:
        line = node.lineno
        col = self.col(line, node.col_offset)
        text = self.line(line)
        if getattr(node, "end_lineno", line) == line and node.end_col_offset is not None:
            end = self.col(line, node.end_col_offset)
        else:
            end = len(text) + 1
        return Span(self.filename, line, col, max(end, col + 1), text)

    def at(self, lineno: int, col: int) -> Span:
        return Span(self.filename, lineno, col, col + 1, self.line(lineno))


def _known_functions() -> str:
    return ", ".join(sorted(BY_SOURCE))


def _close(name: str, choices) -> str:
    match = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(m) for m in match)}?)" if match else ""


def _check_name(name: str, span: Span) -> None:
    why = problem(name)
    if why:
        raise ParseError(why, span, "choose another name, such as x or w1")


def parse(text: str, filename: str = "<input>") -> Program:
    """Parse stagegen's input language (README, "Input language") into a `Program`."""
    if len(text) > MAX_SOURCE_CHARS:
        raise ParseError(
            f"the input has {len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,}", file=filename
        )
    if "\0" in text:
        raise ParseError("the input contains NUL bytes; it is not a text file", file=filename)
    source = _Source(text, filename)
    module = _ast_parse(text, source)
    if not module.body:
        raise ParseError(
            "the input is empty: there is nothing to differentiate",
            file=filename,
            hint="write an expression, e.g. f = (x + y) * z",
        )
    return _Converter(source, text).program(module.body)


def _ast_parse(text: str, source: _Source) -> ast.Module:
    try:
        with warnings.catch_warnings():
            # the tokenizer warns about e.g. "1if" on stderr; the input is refused or read anyway
            warnings.simplefilter("ignore")
            return ast.parse(text, source.filename)
    except SyntaxError as exc:
        lineno = exc.lineno or 1
        # SyntaxError.offset is a 1-based character column.
        span = source.at(lineno, max(1, exc.offset or 1))
        msg = exc.msg
        hint = _HINT_STAGING if "too many" in msg or "too complex" in msg else ""
        found = keyword_as_name(source.line(lineno))
        if found:
            word, col = found
            span = Span(source.filename, lineno, col, col + len(word), source.line(lineno))
            raise ParseError(
                f"'{word}' is a Python keyword; it cannot name an input or a stage",
                span,
                f"rename it, e.g. {word}_ or {word.lower()}1",
            ) from None
        number = longest_number(source.line(lineno)) if "Exceeds the limit" in msg else None
        if number:
            col, end, digits = number
            raise ParseError(
                f"this integer has {digits:,} digits",
                Span(source.filename, lineno, col, end, source.line(lineno)),
                "numbers must fit in a float (about 1.8e308)",
            ) from None
        raise ParseError(
            msg if msg.startswith("invalid syntax") else f"invalid syntax: {msg}", span, hint
        ) from None
    except (RecursionError, MemoryError):
        lineno = _deepest_statement(text)
        raise ParseError(
            "this statement is nested too deeply for Python's parser", source.at(lineno, 1), _HINT_STAGING
        ) from None


def _deepest_statement(text: str) -> int:
    """The first line of the first statement Python cannot parse on its own."""
    start = 1
    lines = python_lines(text, keepends=True)
    for lineno, line in enumerate(lines, 1):  # one statement a line, the common case: no tokenizer
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(line)
        except (RecursionError, MemoryError):
            return lineno
        except SyntaxError:
            break  # a statement over several lines
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NEWLINE:
                chunk = "".join(lines[start - 1 : tok.end[0]])
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ast.parse(chunk)
                except (RecursionError, MemoryError, SyntaxError):
                    return start
                start = tok.end[0] + 1
    except (tokenize.TokenError, SyntaxError):
        pass
    return start


class _Converter:
    """Converts one module's statements; holds the names seen so far."""

    def __init__(self, source: _Source, text: str):
        self.source = source
        self.text = text
        self.declared: dict[str, Span] = {}  # declared inputs, in order
        self.inputs: dict[str, Span] = {}  # all inputs, in argument order once finished
        self.stages: dict[str, Span] = {}
        self.shapes: dict[str, tuple] = {}  # declared inputs' shapes; undeclared ones are unknown
        self.domains: dict[str, Domain | None] = {}  # declared inputs' ranges for verify
        self.later: dict[str, int] = {}  # stage name -> line that defines it
        self.spans = NodeMap()
        self.symbols: dict[str, sp.Symbol] = {}
        self.indexes: set[str] = set()  # inputs declared index(...): integer arrays
        # subscripts seen: id(ast node) -> (spec, the nodes of its index arrays); the
        # index arrays' name nodes (an index input is read nowhere else)
        self.subscripts: dict[int, tuple] = {}
        self.index_nodes: set[int] = set()
        self.masks: set[sp.Expr] = set()  # masks: comparisons, & | ~ of them, stages naming one

    def error(self, node: ast.AST, message: str, hint: str = "", cls=ParseError):
        return cls(message, self.source.span(node), hint)

    # -- statements -------------------------------------------------------
    def program(self, body: list[ast.stmt]) -> Program:
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
                for t in target.elts if isinstance(target, ast.Tuple) else (target,):
                    if isinstance(t, ast.Name):
                        self.later.setdefault(t.id, stmt.lineno)
        statements: list[Statement] = []
        aliases: dict[str, tuple] = {}  # a stage that only renames a value -> (its node, the value's name)
        outputs: tuple[str, ...] = ()
        first_use: dict[str, Span] = {}
        for k, stmt in enumerate(body):
            last = k == len(body) - 1
            if isinstance(stmt, ast.AnnAssign):
                self.declaration(stmt, first_use)
            elif isinstance(stmt, ast.Assign) and last and isinstance(stmt.targets[-1], ast.Tuple):
                outputs = self.named_outputs(stmt, statements, aliases, first_use)
            elif isinstance(stmt, ast.Assign):
                name = self.target(stmt)
                self.stage(statements, aliases, name, stmt.value, first_use)
                self.stages[name] = self.source.span(stmt.targets[0])
            elif isinstance(stmt, ast.Expr):
                if not last:
                    raise self.error(
                        stmt,
                        "a bare expression must be the last statement",
                        "name it (t = ...) or move it to the end",
                    )
                outputs = self.bare_outputs(stmt.value, statements, aliases, first_use)
            elif isinstance(stmt, ast.AugAssign):
                raise self.error(
                    stmt, "augmented assignment is not allowed", "every stage gets a new name: t2 = t1 + x"
                )
            else:
                raise self.error(
                    stmt,
                    f"{_describe_statement(stmt)} is not allowed",
                    "a file holds declarations (x: scalar), stages (name = expression) "
                    "and a final expression",
                )
        if not statements and not outputs:
            raise ParseError(
                "the input declares inputs but computes nothing",
                file=self.source.filename,
                hint="add an expression, e.g. f = x * y",
            )
        last = body[-1]
        if isinstance(last, ast.AnnAssign):
            raise self.error(last, "the last statement must compute the output, not declare an input")
        if not outputs:
            outputs = (statements[-1].name,)
            self.check_outputs(last, list(outputs))
        for name, (node, renamed) in aliases.items():
            if name not in outputs:
                raise self.error(
                    node,
                    f"'{name}' only renames '{renamed}'; a second name for a value is "
                    "allowed only for an output",
                    f"use '{renamed}' where '{name}' is used, or make '{name}' an output: "
                    f"end the file with a tuple of outputs, e.g. {outputs[-1]}, {name}",
                )
        inputs = dict(self.declared)
        inputs.update((n, s) for n, s in first_use.items() if n not in inputs)
        return Program(
            self.source.filename,
            self.text,
            tuple(
                Input(name, span, self.shapes.get(name), self.domains.get(name), name in self.indexes)
                for name, span in inputs.items()
            ),
            tuple(statements),
            self.spans,
            outputs=outputs,
        )

    def stage(self, statements, aliases, name: str, node: ast.expr, first_use) -> None:
        """The statement ``name = node``; a bare name there renames a value (an identity stage)."""
        expr = self.expression(node, first_use, defining=name)
        if isinstance(expr, sp.Symbol):
            aliases[name] = (node, expr.name)
        if expr in self.masks:
            self.masks.add(self.symbol(name))
        statements.append(Statement(name, expr, self.source.span(node)))

    def bare_outputs(self, node: ast.expr, statements, aliases, first_use) -> tuple[str, ...]:
        """The outputs of a last line that is an expression, or a tuple of them
        (``ex, ey``): a stage's name is that stage; anything else, an input's
        name included, is a new stage named f (f1, f2, ... by place in a tuple)."""
        items = node.elts if isinstance(node, ast.Tuple) else [node]
        if not items:
            raise self.error(
                node, "an empty tuple has no outputs", "end the file with f, g or one expression"
            )
        found: list[tuple[str | None, ast.expr]] = []
        for item in items:
            if isinstance(item, ast.Name) and item.id in self.stages:
                found.append((item.id, item))
            else:
                found.append((None, item))
        exprs = [None if name else self.expression(item, first_use, defining=None) for name, item in found]
        outputs = []
        for place, ((name, item), expr) in enumerate(zip(found, exprs, strict=True), 1):
            if name is None:  # named once every item is read: a name may give way to an input read later
                name = "f" if len(items) == 1 else f"f{place}"
                taken = {n for n, _ in found if n} | set(outputs)
                while name in self.inputs or name in self.stages or name in first_use or name in taken:
                    name += "_"
                statements.append(Statement(name, expr, self.source.span(item)))
                self.stages[name] = self.source.span(item)
            outputs.append(name)
        self.check_outputs(node, outputs)
        return tuple(outputs)

    def named_outputs(self, stmt: ast.Assign, statements, aliases, first_use) -> tuple[str, ...]:
        """``a, b = e1, e2``: the outputs, named."""
        example = "a, b = e1, e2"
        if len(stmt.targets) != 1:
            raise self.error(stmt, "assign the outputs once", f"write {example}")
        targets = stmt.targets[0].elts
        if not all(isinstance(t, ast.Name) for t in targets) or not targets:
            raise self.error(stmt.targets[0], "outputs are named by plain names", f"write {example}")
        if not isinstance(stmt.value, ast.Tuple) or len(stmt.value.elts) != len(targets):
            raise self.error(
                stmt.value,
                f"{len(targets)} names need {len(targets)} expressions",
                f"write as many expressions as names: {example}",
            )
        outputs = []
        for target, item in zip(targets, stmt.value.elts, strict=True):
            name = self.target(ast.Assign(targets=[target], value=item), target)
            self.stage(statements, aliases, name, item, first_use)
            aliases.pop(name, None)  # an output: its own name is its point
            self.stages[name] = self.source.span(target)
            outputs.append(name)
        self.check_outputs(stmt, outputs)
        return tuple(outputs)

    def check_outputs(self, node: ast.expr, outputs: list[str]) -> None:
        seen = set()
        for name in outputs:
            if self.symbol(name) in self.masks:
                raise self.error(
                    node,
                    f"the output '{name}' is a mask (a comparison): it has no gradient",
                    "use it in where(mask, a, b), or as a number: 1.0 * mask",
                )
            if name in seen:
                raise self.error(node, f"'{name}' is listed twice among the outputs", "list each output once")
            seen.add(name)

    def declaration(self, stmt: ast.AnnAssign, first_use: dict[str, Span]) -> None:
        if not isinstance(stmt.target, ast.Name):
            raise self.error(stmt.target, "declare one input name, e.g. x: scalar")
        name = stmt.target.id
        span = self.source.span(stmt.target)
        _check_name(name, span)
        if stmt.value is not None:
            raise self.error(
                stmt.value,
                f"a declaration cannot give '{name}' a value",
                f"inputs are arguments of the generated functions; write {name}: scalar",
            )
        annotation, domain = stmt.annotation, None
        if isinstance(annotation, ast.Compare):  # x: scalar in [lo, hi]
            annotation, domain = self.domain(annotation)
        shape = self.kind(annotation)
        if isinstance(annotation, ast.Call) and getattr(annotation.func, "id", "") == "index":
            if domain is not None:
                raise self.error(stmt.annotation, "an index array takes no range: its values index an axis")
            self.indexes.add(name)
        if name in self.declared:
            raise self.error(stmt.target, f"input '{name}' is declared twice")
        if name in self.stages:
            raise self.error(stmt.target, f"'{name}' is a stage, not an input")
        if name in first_use:
            raise self.error(
                stmt.target,
                f"'{name}' is declared after its first use on line {first_use[name].line}",
                "put declarations at the top of the file",
            )
        self.declared[name] = span
        self.inputs[name] = span
        self.shapes[name] = shape
        self.domains[name] = domain

    def domain(self, node: ast.Compare) -> tuple[ast.expr, Domain]:
        """The kind and the range of ``kind in [lo, hi]`` (closed) or ``kind in (lo, hi)`` (open)."""
        example = "e.g. S: scalar in [50, 150], or T: scalar in (0, 2) for an open range"
        if len(node.ops) != 1 or not isinstance(node.ops[0], ast.In):
            raise self.error(node, "a declaration's range is written 'in [lo, hi]'", example)
        bounds = node.comparators[0]
        if not isinstance(bounds, (ast.List, ast.Tuple)) or len(bounds.elts) != 2:
            raise self.error(bounds, "a range is [lo, hi] or (lo, hi)", example)
        lo, hi = (self.bound(e) for e in bounds.elts)
        if not lo < hi:
            raise self.error(bounds, f"an empty range: {lo!r} is not below {hi!r}", example)
        return node.left, Domain(lo, hi, closed=isinstance(bounds, ast.List))

    def bound(self, node: ast.expr) -> float:
        negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
        value = node.operand if negative else node
        if not (isinstance(value, ast.Constant) and type(value.value) in (int, float)):
            raise self.error(node, "a range's ends are numbers", "e.g. [50, 150] or (-1.5, 2)")
        number = float(value.value) * (-1 if negative and isinstance(node.op, ast.USub) else 1)
        if not math.isfinite(number):
            raise self.error(node, "a range's ends are finite numbers", "e.g. [50, 150] or (-1.5, 2)")
        return number

    def kind(self, node: ast.expr) -> tuple:
        """The shape a declaration gives: scalar, vector(n), matrix(n, m), array(d1,
        ..., dk) of any rank; sizes are positive integers or names."""
        if isinstance(node, ast.Name) and node.id == "scalar":
            return ()
        arity = {"vector": 1, "matrix": 2, "array": None, "index": None}  # any number of sizes
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in arity):
            raise self.error(
                node,
                "unknown input kind",
                "declare x: scalar, v: vector(n), W: matrix(n, m), T: array(b, n, m) "
                "or y: index(n) (integers for subscripts)",
            )
        name = node.func.id
        if node.keywords or (len(node.args) != arity[name] if arity[name] else not node.args):
            example = {"vector": "vector(5)", "matrix": "matrix(5, 10) or matrix(n, d)", "index": "index(n)"}
            raise self.error(
                node,
                f"{name}() takes {arity[name] or 'one or more'} size{'s' if arity[name] != 1 else ''}",
                f"e.g. {example.get(name, 'array(b, n, d)')}",
            )
        sizes = []
        for arg in node.args:
            if isinstance(arg, ast.Constant) and type(arg.value) is int and 0 < arg.value < 2**31:
                sizes.append(arg.value)
            elif isinstance(arg, ast.Name) and not arg.id.startswith("__"):
                sizes.append(arg.id)
            elif isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult) and _size_term(arg):
                sizes.append(sized(*_size_term(arg)))  # 4*H: an axis of four times H
            else:
                raise self.error(
                    arg,
                    "a size is a positive integer, a name or an integer times a name",
                    "e.g. matrix(5, 10), matrix(n, d) or matrix(d, 4*H)",
                )
        return tuple(sizes)

    def target(self, stmt: ast.Assign, target: ast.expr | None = None) -> str:
        if len(stmt.targets) != 1:
            raise self.error(
                stmt, "assign one stage at a time", "write a = ... and b = ... on separate lines"
            )
        target = target or stmt.targets[0]
        if isinstance(target, ast.Tuple):
            raise self.error(
                target,
                "a tuple assignment names the outputs; it must be the last statement",
                "assign one stage a line (a = ...), and end the file with a, b = e1, e2 or a, b",
            )
        if not isinstance(target, ast.Name):
            raise self.error(
                target,
                "a stage is named by a plain name",
                "write name = expression; attributes, subscripts and tuples are not allowed",
            )
        name = target.id
        _check_name(name, self.source.span(target))
        if name in self.inputs:
            raise self.error(
                target,
                f"assignment to input '{name}'",
                f"'{name}' is an input (a free name); give this stage another name",
            )
        if name in self.stages:
            raise self.error(
                target,
                f"duplicate stage name '{name}'",
                f"'{name}' is already defined on line {self.stages[name].line}; "
                "each stage needs its own name",
            )
        return name

    # -- expressions -------------------------------------------------------
    def expression(self, root: ast.expr, first_use: dict[str, Span], defining: str | None) -> sp.Expr:
        """The SymPy tree of `root` (a bare name is a Symbol: an identity stage)."""
        done: dict[int, tuple[sp.Expr, bool]] = {}  # id(ast node) -> (SymPy tree, is constant)
        stack: list[tuple[ast.expr, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if not ready:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(self.children(node)))
                continue
            args = [done[id(c)] for c in self.children(node)]
            value = self.build(node, args, first_use)
            done[id(node)] = value
            if not value[1] and not isinstance(value[0], sp.Symbol) and value[0] not in self.spans:
                self.spans[value[0]] = self.source.span(node)
        expr, constant = done[id(root)]
        if constant:
            raise self.error(
                root,
                "this stage is a constant; it does not depend on any input",
                "write the number where it is used",
            )
        return expr

    def children(self, node: ast.expr) -> list[ast.expr]:
        if isinstance(node, ast.BinOp):
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            return [node.operand]
        if isinstance(node, ast.Call):
            self.check_call(node)
            gate = self.gate_of(node)
            if gate.listed:  # concat([a, b]): the list's items are the operands
                return list(node.args[0].elts)
            return [a for k, a in enumerate(node.args) if self.positional(gate, k) not in gate.tuples]
        if isinstance(node, (ast.Name, ast.Constant)):
            return []
        if isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
            return [node.value]
        if isinstance(node, ast.Subscript):
            spec, arrays = self.subscript(node)
            self.subscripts[id(node)] = spec
            return [node.value, *arrays]
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise self.error(
                    node, "a chained comparison is not allowed", "join two masks: (a < b) & (b < c)"
                )
            if type(node.ops[0]) not in _COMPARISONS:
                raise self.error(node, "this comparison is not allowed", "compare with < <= > >= == !=")
            return [node.left, node.comparators[0]]
        raise self.unsupported(node)

    def subscript(self, node: ast.Subscript) -> tuple[tuple, list[ast.expr]]:
        """A subscript's spec (`subscripts.py`) and the nodes of its index arrays."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        spec, arrays = [], []
        hint = (
            "a subscript holds integers, slices (1:3), None, ..., index arrays "
            "(declared y: index(n)) and arange(N): x[0], x[:, 1:3], W[idx], S[arange(N), y]"
        )
        for item in items:
            if isinstance(item, ast.Slice):
                parts = [
                    None if p is None else self.slice_bound(p, hint) for p in (item.lower, item.upper)
                ] + [None if item.step is None else self.index_integer(item.step, hint)]
                if parts[2] == 0:
                    raise self.error(item, "a slice's step cannot be zero")
                spec.append(("slice", *parts))
            elif isinstance(item, ast.Constant) and item.value is None:
                spec.append(("new",))
            elif isinstance(item, ast.Constant) and item.value is Ellipsis:
                spec.append(("rest",))
            elif isinstance(item, ast.Name) and item.id in self.indexes:
                arrays.append(item)
                self.index_nodes.add(id(item))
                spec.append(("take", len(arrays)))
            elif _arange(item) or (_column_of(item) and _arange(item.value)):
                call, column = (item, ()) if _arange(item) else (item.value, (_column_of(item),))
                size = call.args[0]
                if isinstance(size, ast.Name):
                    spec.append(("arange", size.id, *column))
                else:
                    spec.append(
                        (
                            "arange",
                            self.index_integer(size, "arange(N) takes a size: a name or an integer"),
                            *column,
                        )
                    )
            elif isinstance(item, ast.Name) and item.id not in self.stages:
                raise self.error(
                    item,
                    f"'{item.id}' is not an index array",
                    f"declare it {item.id}: index(n) (an array of integers) to index with it",
                )
            else:
                spec.append(("at", self.index_integer(item, hint)))
        return tuple(spec), arrays

    def slice_bound(self, node: ast.expr, hint: str) -> int | str:
        """A slice's start or stop: an integer, or a size linear in a size name
        (H, 2*H, N-1, 3*H+2), written as `shapes.linear` reads it."""
        term = _size_term(node)
        if term is None:
            return self.index_integer(node, f"{subscripts.BOUNDS}: x[:, H:2*H], x[:N-1]")
        if term[1] not in self.size_names():
            raise self.error(
                node,
                f"'{term[1]}' is not a size name",
                "a slice's bound may be a size a declaration names, e.g. x: matrix(N, 4*H), then x[:, H:2*H]",
            )
        return sized(*term)

    def index_integer(self, node: ast.expr, hint: str) -> int:
        """An integer constant inside a subscript (negative counts from the end)."""
        value = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) else node
        if not (isinstance(value, ast.Constant) and type(value.value) is int and abs(value.value) < 2**31):
            raise self.error(node, "this subscript is not allowed", hint)
        return -value.value if value is not node else value.value

    def unsupported(self, node: ast.expr):
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in ("math", "np", "numpy", "sympy", "sp"):
                return self.error(
                    node,
                    f"attribute access is not allowed: '{node.value.id}.{node.attr}'",
                    f"write the function by itself, e.g. {node.attr}(x)",
                )
            return self.error(
                node,
                "attribute access is not allowed",
                "only plain names, numbers and calls " "of known functions are allowed",
            )
        return self.error(
            node,
            f"{_CONSTRUCTS.get(type(node), type(node).__name__)} is not allowed",
            _INSTEAD.get(
                type(node), "an expression is made of names, numbers, + - * / ** and known functions"
            ),
        )

    def check_call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            raise (
                self.unsupported(node.func)
                if isinstance(node.func, ast.Attribute)
                else self.error(node.func, "only known functions can be called")
            )
        name = node.func.id
        gate = self.gate_of(node)
        if gate is None:
            raise self.error(
                node.func,
                f"unknown function '{name}'",
                f"known: {_known_functions()}{_close(name, BY_SOURCE)}",
                cls=UnsupportedError,
            )
        for kw in node.keywords:
            if kw.arg not in gate.keywords:
                raise self.error(
                    kw.value,
                    f"{name}() takes no keyword argument {kw.arg or '**'}",
                    f"{name}(a, axis=k) reduces along axis k" if (name, ("axis",)) in BY_KEYWORDS else "",
                )
            value = kw.value
            if isinstance(gate.defaults.get(kw.arg), bool):  # a flag: keepdims=True
                if not (isinstance(value, ast.Constant) and type(value.value) is bool):
                    raise self.error(kw.value, f"{kw.arg}= takes True or False")
                continue
            if kw.arg == "axis" and isinstance(value, ast.Tuple) and gate.axes:  # axis=(0, 2)
                for item in value.elts or [value]:
                    if not value.elts or _keyword_int(item) is None:
                        raise self.error(item, "axis= takes integers, e.g. axis=(0, 2)")
                continue
            if not isinstance(_keyword_int(value), int):
                several = f" (one axis: {name}() takes no tuple)" if isinstance(value, ast.Tuple) else ""
                raise self.error(kw.value, f"{kw.arg}= takes an integer, e.g. {kw.arg}=0{several}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "starred arguments are not allowed")
        n = len(node.args)
        if gate.listed:
            items = node.args[0] if n == 1 else None
            if not isinstance(items, (ast.List, ast.Tuple)) or len(items.elts) < 2:
                raise self.error(
                    node, f"{name}() takes a list of 2 or more arrays", f"e.g. {name}([a, b], axis=1)"
                )
            for item in items.elts:
                if isinstance(item, ast.Starred):
                    raise self.error(item, "starred arguments are not allowed")
            return
        if gate.variadic and n < 2:
            raise self.error(node, f"{name}() needs at least 2 arguments, got {n}")
        # parameters that are not keywords follow the operands (swapaxes(x, 1, 2))
        positional = [p for p in gate.params if p not in gate.keywords]
        wanted = len(gate.operands) + len(positional)
        if not gate.variadic and n != wanted:
            raise self.error(
                node,
                f"{name}() takes {wanted} argument{'s' if wanted != 1 else ''}, got {n}",
                f"{name}({', '.join(gate.operands + tuple(positional))})" if positional else "",
            )
        for arg, param in zip(node.args[len(gate.operands) :], positional, strict=False):
            if param in gate.tuples:
                self.tuple_param(arg, gate, param)
                continue
            value = arg.operand if isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub) else arg
            if not (isinstance(value, ast.Constant) and type(value.value) is int and value.value < 32):
                raise self.error(arg, f"{name}()'s {param} is an integer, e.g. {name}(x, 1, 2)")

    @staticmethod
    def positional(gate, k: int) -> str | None:
        """The parameter the call's k-th positional argument gives (None: an operand)."""
        positional = [p for p in gate.params if p not in gate.keywords]
        k -= len(gate.operands)
        return positional[k] if 0 <= k < len(positional) else None

    def tuple_param(self, node: ast.expr, gate, param: str) -> tuple:
        """A parameter written as a tuple: integers (axes), and for a shape also
        size names and one -1: reshape(x, (N, 4, 2)), transpose(x, (1, 0, 2))."""
        sizes = param == "shape"
        example = f"{gate.source}(x, (N, 4, 2))" if sizes else f"{gate.source}(x, (1, 0, 2))"
        if not isinstance(node, ast.Tuple) or not node.elts:
            raise self.error(node, f"{gate.source}()'s {param} is a tuple", f"e.g. {example}")
        out = []
        for item in node.elts:
            value = item.operand if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub) else item
            if isinstance(value, ast.Constant) and type(value.value) is int and value.value < 2**31:
                number = -value.value if value is not item else value.value
                if sizes and number < 1 and number != -1:
                    raise self.error(
                        item, "a size is a positive integer, a size name or -1", f"e.g. {example}"
                    )
                out.append(number)
            elif sizes and isinstance(item, ast.Name) and item.id in self.size_names():
                out.append(item.id)
            else:
                what = "integers, size names and one -1" if sizes else "integers"
                raise self.error(item, f"{gate.source}()'s {param} holds {what}", f"e.g. {example}")
        return tuple(out)

    def size_names(self) -> set[str]:
        """The size names the declarations so far use (matrix(n, d): n, d;
        matrix(d, 4*H): d, H)."""
        return {linear(d)[1] for shape in self.shapes.values() if shape for d in shape if isinstance(d, str)}

    def build(self, node: ast.expr, args: list[tuple[sp.Expr, bool]], first_use) -> tuple[sp.Expr, bool]:
        if isinstance(node, ast.Constant):
            return self.constant(node), True
        if isinstance(node, ast.Name):
            return self.name(node, first_use)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return args[0]
            if isinstance(node.op, ast.Invert):
                return self.apply(node, BY_OPERATOR["~"], args)
            if not isinstance(node.op, ast.USub):
                raise self.error(node, "the operator 'not' is not allowed", "negate a mask with ~: ~(x > 0)")
            return self.apply(node, BY_OPERATOR["u-"], args)
        if isinstance(node, ast.Compare):
            return self.apply(node, BY_OPERATOR[_COMPARISONS[type(node.ops[0])]], args)
        if isinstance(node, ast.BinOp):
            symbol = _OPERATORS.get(type(node.op), "?")
            gate = BY_OPERATOR.get(symbol)
            if gate is None:
                if symbol == "@":
                    raise self.error(node, "matrix product '@' needs the array backend", cls=UnsupportedError)
                raise self.error(
                    node, f"the operator '{symbol}' is not allowed", "operators are + - * / ** and unary -"
                )
            return self.apply(node, gate, args)
        if isinstance(node, ast.Attribute):  # .T, .mT
            return self.apply(node, BY_OPERATOR["." + node.attr], args)
        if isinstance(node, ast.Subscript):
            spec = self.subscripts[id(node)]
            gate = GATHER if subscripts.gathers(spec) else SUBSCRIPT
            return self.apply(node, gate, args + [(sympy_number(Const(spec)), True)])
        gate = self.gate_of(node)
        written = {
            k.arg: (
                k.value.value
                if isinstance(k.value, ast.Constant) and type(k.value.value) is bool
                else _keyword_int(k.value)
            )
            for k in node.keywords
        }
        # the parameters in the gate's order, a keyword left out at its default
        values = [written.get(k, gate.defaults.get(k)) for k in gate.keywords]
        params = [
            (sympy_number(Const(v)) if isinstance(v, tuple) else sp.Integer(int(v)), True) for v in values
        ]
        tuples = [
            (sympy_number(Const(self.tuple_param(a, gate, self.positional(gate, k)))), True)
            for k, a in enumerate(node.args)
            if self.positional(gate, k) in gate.tuples
        ]
        return self.apply(node, gate, args + tuples + params)

    @staticmethod
    def gate_of(node: ast.Call):
        """The gate a call names: by function name, and by the keywords it writes
        (sum(a, axis=0) is sum_axis, keepdims= optional; sum(a) is sum)."""
        name, keywords = node.func.id, {k.arg for k in node.keywords if k.arg}
        for (source, required), gate in BY_KEYWORDS.items():
            if source == name and set(required) <= keywords <= set(gate.keywords):
                return gate
        if len(node.args) == 1 and not keywords and name in BY_SINGLE:  # max(A): every element
            return BY_SINGLE[name]
        return BY_SOURCE.get(name)

    def apply(self, node: ast.expr, gate, args: list[tuple[sp.Expr, bool]]) -> tuple[sp.Expr, bool]:
        args = self.masked(node, gate, args)
        exprs = [a for a, _ in args]
        if all(constant for _, constant in args):
            if gate.mask:
                raise self.error(
                    node,
                    "this mask is a constant: it compares numbers only",
                    "compare a value that depends on an input, or write the branch it takes",
                )
            return self.fold(node, gate, exprs), True
        if gate is BY_OPERATOR["**"] and args[1][1] and abs(float(exprs[1])) > MAX_EXPONENT:
            raise self.error(
                node,
                f"the exponent {_number_text(exprs[1])} is too large",
                f"constant exponents are limited to ±{MAX_EXPONENT:,}; beyond that "
                "x**n is 0 or inf for almost every x",
            )
        if gate is BY_OPERATOR["/"] and args[1][1] and float(exprs[1]) == 0.0:
            raise self.error(node, "division by zero")
        value = gate.function(*exprs)
        if gate.mask:
            self.masks.add(value)
        return value, False

    def masked(self, node: ast.expr, gate, args: list[tuple[sp.Expr, bool]]) -> list[tuple[sp.Expr, bool]]:
        """Operands as the gate takes them: a condition must be a mask; a mask
        used as a number is where(mask, 1.0, 0.0); where's numbers are floats."""
        out = []
        for i, (expr, constant) in enumerate(args):
            is_mask = expr in self.masks
            if i in gate.conditions and not is_mask:
                what = (
                    "where's condition"
                    if gate.source
                    else f"the operand{'s' * (len(gate.operands) > 1)} of {gate.operator}"
                )
                raise self.error(
                    node,
                    f"{what} must be a mask, not a number",
                    "a mask is a comparison (x > 0) or masks joined with & | ~",
                )
            if i not in gate.conditions and is_mask:
                expr = SELECTION.function(expr, sp.Float(1.0), sp.Float(0.0))
            elif gate.conditions and i not in gate.conditions and constant:
                expr = sp.Float(expr)  # where(x > 0, x, 0): 0.0 in every element, as in NumPy
            out.append((expr, constant))
        return out

    def fold(self, node: ast.expr, gate, args: list[sp.Expr]) -> sp.Expr:
        """A gate applied to constants, evaluated exactly, once its size is known to be sane."""
        if gate is BY_OPERATOR["**"]:
            base, exp = (float(sp.N(a, 20)) for a in args)
            # log10 of the result's magnitude
            size = exp * math.log10(abs(base)) if base not in (0.0, 1.0, -1.0) else 0.0
            if abs(exp) > MAX_EXPONENT or size > 308:
                raise self.error(
                    node,
                    "this constant is too large to compute",
                    "constants must fit in a float (about 1.8e308)",
                )
            if size < -324:
                raise self.error(
                    node,
                    "this constant is too small for a float (it would be 0.0)",
                    "the smallest positive float is about 4.9e-324",
                )
        try:
            value = gate.forward(*args)
        except ZeroDivisionError:  # SymPy's division of a float by 0.0 (1e-400 reads as 0.0)
            value = sp.nan
        approx = sp.N(value, 20)
        if approx.is_real and approx.is_finite and abs(approx) > sys.float_info.max:
            raise self.error(
                node,
                "this constant is too large for a float",
                "constants must fit in a float (about 1.8e308)",
            )
        if not (approx.is_real and approx.is_finite):
            raise self.error(
                node,
                "this constant is not a finite real number",
                "the operation has no real value here (e.g. log(0), sqrt(-1), 1/0)",
            )
        return value

    def constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = {str: "a string", bytes: "bytes", complex: "a complex number"}.get(
                type(value), repr(value)
            )
            raise self.error(node, f"{what} is not allowed here", "only real numbers are allowed")
        if isinstance(value, int):
            if value.bit_length() > 1023:
                raise self.error(
                    node, "this integer is too large", "numbers must fit in a float (about 1.8e308)"
                )
            return sp.Integer(value)
        if not math.isfinite(value):
            raise self.error(
                node, "this number overflows to infinity", "numbers must fit in a float (about 1.8e308)"
            )
        return sp.Float(value)

    def name(self, node: ast.Name, first_use: dict[str, Span]) -> sp.Expr:
        name = node.id
        if name in self.indexes and id(node) not in self.index_nodes:
            raise self.error(
                node,
                f"'{name}' is an index array: it is used inside a subscript",
                f"pick elements with it: W[{name}], S[arange(N), {name}]",
            )
        if name in self.stages or name in self.inputs:  # checked where it was first seen
            return self.symbol(name), False
        if name in CONSTANTS:
            return CONSTANTS[name], True
        if name in self.size_names():  # a size as a number: the size of a declared input's axis
            of, shape = next(((n, s) for n, s in self.shapes.items() if s and name in s), (None, None))
            if of is None:
                raise self.error(
                    node,
                    f"the size {name} is declared only in products (such as 4*{name})",
                    f"declare an input with an axis of size {name} to use {name} as a number",
                )
            size = sympy_number(Const((name, shape.index(name))))
            return SIZE.function(self.symbol(of), size), False
        if name in BY_SOURCE and not BY_SOURCE[name].free_name:
            raise self.error(node, f"'{name}' is a function", f"call it: {name}(...)")
        span = self.source.span(node)
        _check_name(name, span)
        if name in self.later:
            raise self.error(
                node,
                f"'{name}' is used before it is defined (line {self.later[name]})",
                "stages must be defined before they are used",
            )
        if name not in first_use:
            first_use[name] = span
        self.inputs.setdefault(name, span)
        return self.symbol(name), False

    def symbol(self, name: str) -> sp.Symbol:
        if name not in self.symbols:  # one Symbol per name: SymPy's own cache is smaller than a big file
            self.symbols[name] = sp.Symbol(name, real=True)
        return self.symbols[name]


def _size_term(node: ast.expr) -> tuple[int, str, int] | None:
    """A size written as c*name + k (``H``, ``4*H``, ``H*4``, ``N-1``, ``2*H+1``)
    as (c, name, k), c a positive integer; None for anything else."""
    k = 0
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        right = node.right
        if not (isinstance(right, ast.Constant) and type(right.value) is int and right.value < 2**31):
            return None
        k = right.value if isinstance(node.op, ast.Add) else -right.value
        node = node.left
    if isinstance(node, ast.Name) and not node.id.startswith("__"):
        return 1, node.id, k
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        pair = (node.left, node.right)
        for c, name in (pair, pair[::-1]):
            if (
                isinstance(c, ast.Constant)
                and type(c.value) is int
                and 0 < c.value < 2**31
                and isinstance(name, ast.Name)
                and not name.id.startswith("__")
            ):
                return c.value, name.id, k
    return None


def _keyword_int(node: ast.expr) -> int | tuple | None:
    """A keyword's integer (or tuple of integers: axis=(0, 2)) as written; None
    where it is not one."""
    if isinstance(node, ast.Tuple):
        return tuple(_keyword_int(item) for item in node.elts)
    value = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) else node
    if not (isinstance(value, ast.Constant) and type(value.value) is int and value.value < 32):
        return None
    return -value.value if value is not node else value.value


def _number_text(value: sp.Expr) -> str:
    if isinstance(value, sp.Integer) and abs(value) < 10**15:
        return str(int(value))
    return f"{float(value):.6g}"


def _describe_statement(stmt: ast.stmt) -> str:
    kinds = {
        ast.Import: "an import",
        ast.ImportFrom: "an import",
        ast.FunctionDef: "a function definition",
        ast.AsyncFunctionDef: "a function definition",
        ast.ClassDef: "a class definition",
        ast.For: "a loop",
        ast.While: "a loop",
        ast.If: "an if statement",
        ast.With: "a with statement",
        ast.Return: "return",
        ast.Delete: "del",
        ast.Global: "global",
        ast.Nonlocal: "nonlocal",
        ast.Pass: "pass",
        ast.Raise: "raise",
        ast.Try: "try",
        ast.Assert: "assert",
    }
    return kinds.get(type(stmt), f"a {type(stmt).__name__} statement")


# -- SymPy objects ---------------------------------------------------------------


def is_sympy(source) -> bool:
    """A SymPy expression, or a tuple or list of them (several outputs)."""
    if isinstance(source, (tuple, list, sp.Tuple)):
        return bool(source) and all(isinstance(e, sp.Basic) for e in source)
    return isinstance(source, sp.Basic)


def from_sympy(expr, inputs=None, filename: str = "<sympy>") -> Program:
    """A `Program` with one statement f = expr, for a SymPy expression, or for a
    tuple or list of them the statements f1, f2, ... and those outputs; `inputs`
    (as `identifiers.name_list` reads them) fixes the argument order."""
    inputs = name_list(inputs, "inputs=")
    exprs = list(expr) if isinstance(expr, (tuple, list, sp.Tuple)) else [expr]
    for e in exprs:
        if not isinstance(e, sp.Expr):
            raise UnsupportedError(
                f"expected a SymPy expression or source text, got {type(e).__name__}", file=filename
            )
    found = _symbols_in_order(sp.Tuple(*exprs) if len(exprs) > 1 else exprs[0])
    for s in found:
        why = problem(s.name)
        if why:
            raise UnsupportedError(
                f"the symbol {shown(s.name)} cannot be an argument name of a Python function: {why}",
                file=filename,
                hint="use SymPy symbols named like Python identifiers",
            )
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise UnsupportedError("two different symbols share a name (different assumptions?)", file=filename)
    if inputs is not None:
        missing = [n for n in names if n not in inputs]
        if missing:
            raise UnsupportedError(
                f"inputs= misses {', '.join(missing)}",
                file=filename,
                hint="list every free symbol of the expression",
            )
        names = list(inputs)
    if not found:
        raise UnsupportedError("the expression is a constant; it does not depend on any input", file=filename)
    space = Namespace(names)
    if len(exprs) == 1:
        statements = (Statement(space.free("f"), exprs[0], None),)
    else:
        statements = tuple(Statement(space.free(f"f{k + 1}"), e, None) for k, e in enumerate(exprs))
    outputs = tuple(s.name for s in statements)
    printed = sympy_source.shown(statements)
    if printed is not None and len(outputs) > 1:
        printed += (", ".join(outputs),)
    inputs = tuple(Input(n, None, None) for n in names)
    return Program(filename, None, inputs, statements, shown=printed, outputs=outputs)


def _symbols_in_order(expr: sp.Basic) -> list[sp.Symbol]:
    """Free symbols in order of first appearance (pre-order), without recursion."""
    seen: dict = {}
    stack = [expr]
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, sp.Symbol):
            seen.setdefault(node, None)
        elif isinstance(node, sp.Basic):
            stack.extend(reversed(node.args))
    return list(seen)


__all__ = ["parse", "from_sympy", "is_sympy", "Program", "Statement", "REGISTRY"]


def _arange(node) -> bool:
    """Whether `node` is ``arange(N)`` (one argument, no keywords)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "arange"
        and len(node.args) == 1
        and not node.keywords
    )


def _column_of(node):
    """``arange(N)[:, None]`` (with one or more None): the number of new axes, its
    arange the node's value; None for any other node."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Tuple):
        return None
    first, *rest = node.slice.elts
    whole = (
        isinstance(first, ast.Slice) and first.lower is None and first.upper is None and first.step is None
    )
    nones = rest and all(isinstance(r, ast.Constant) and r.value is None for r in rest)
    return len(rest) if whole and nones else None

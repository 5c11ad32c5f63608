"""Generated modules as live Python modules: loading their text, and the
instrumented rendering that `verify` and `trace` read every number from.

The instrumented module is a module's own text, parsed with `ast` and changed
in two ways only: ``value_and_grad``, ``backward`` and copies of ``forward``,
``jvp`` and ``hvp`` named ``__forward__``, ``__jvp__``, ``__hvp__`` return
their ``locals()`` (every value, adjoint and tangent by name) instead of their
results, and drop their ``del`` statements
(the numpy backend's releases), so that every name stays readable; the value each numbered assignment computes
(a stage, or one contribution to an adjoint) is kept in the local dict
``__lines__``, and what its target holds once it has run in ``__after__``,
both by the assignment's first line (copies of arrays, which later lines may
update in place).
Line numbers are kept and the text is registered with `linecache`, so a
failing stage is located, as in the module itself. Whatever the text says,
edited or not, is what runs, as Python runs it: the decorators that compile a
function (numba's) are dropped (`as_python`).
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import re
import types
from dataclasses import dataclass

from .errors import python_lines

_NUMBER = re.compile(r"  # \((\d+)\)")  # the stage number a generated line carries
INSTRUMENTED = ("backward", "value_and_grad")  # the functions that return their locals
# copies of these functions (where the module has them), returning their locals
COPIES = {"forward": "__forward__", "jvp": "__jvp__", "hvp": "__hvp__"}
FORWARD = COPIES["forward"]  # forward's: every stage's value, by name
PLACED, INDEX = "__placed__", "__index__"  # a subscript's adjoint line, as an array
LINES = "__lines__"  # their local dict of what each numbered assignment computed, by line
AFTER = "__after__"  # ... and of what its target holds once it has run
RECORD = "__record__"  # the function that keeps them


def module_from_text(text: str, filename: str, tree: ast.Module | None = None) -> types.ModuleType:
    """Import `text` (or `tree`, a syntax tree made from it) as a new module;
    `filename` names it in tracebacks."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    module = types.ModuleType(f"stagegen_generated_{digest}")
    module.__file__ = f"<stagegen {filename} {digest}>"
    linecache.cache[module.__file__] = (len(text), None, python_lines(text, True), module.__file__)
    exec(compile(text if tree is None else tree, module.__file__, "exec"), module.__dict__)
    return module


def as_python(text: str) -> ast.Module:
    """The module's syntax tree with its functions as Python runs them: without
    the decorators that compile them (numba's ``@numba.njit``), so that a check
    runs the listing as written and a failure raises at its line."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            node.decorator_list = []
    return tree


def python_module(text: str, filename: str) -> types.ModuleType:
    """The module of `text`, its functions as Python runs them (`as_python`)."""
    return module_from_text(text, filename, as_python(text))


def instrument(text: str) -> ast.Module:
    """The module's syntax tree with ``value_and_grad`` and ``backward``
    returning ``locals()``, and without their ``del``s; and copies of
    ``forward``, ``jvp`` and ``hvp`` that do the same (`COPIES`); every
    function as Python runs it (`as_python`)."""
    tree = as_python(text)
    lines = python_lines(text)
    fresh = as_python(text).body
    for function in _functions(tree, tuple(COPIES)):
        copy = fresh[tree.body.index(function)]
        copy.name = COPIES[function.name]
        tree.body.append(copy)
    for function in _functions(tree, (*INSTRUMENTED, *COPIES.values())):
        for block in _blocks(function):
            kept = []
            for statement in block:
                if isinstance(statement, ast.Delete):
                    continue
                numbered = _NUMBER.search(lines[statement.end_lineno - 1])
                scattered = _scatter(statement) if numbered else None
                if scattered is not None:  # what the line adds, as an array of the target's shape
                    kept.append(_recorded(statement, *scattered))
                kept.append(statement)
                if numbered:
                    kept += _record(statement, scattered is not None)
            block[:] = kept
        function.body[:0] = ast.parse(f"{LINES} = {{}}\n{AFTER} = {{}}").body
        function.body[-1] = _return_locals(function.body[-1])
    tree.body[1:1] = ast.parse(_RECORD).body  # after the docstring
    return ast.fix_missing_locations(tree)


# Keeps a value as it is now: a copy of an array, which a later ``+=`` (or one on
# a view of it) may update in place. What a subscript's adjoint line adds, as an
# array of its target's shape; an index as the line writes it, in brackets.
_RECORD = f"""
def {RECORD}(lines, number, value):
    lines[number] = value.copy() if hasattr(value, "copy") else value
    return value


def {PLACED}(like, index, value):
    import numpy

    out = numpy.zeros(numpy.shape(like))
    numpy.add.at(out, index, numpy.asarray(value))
    return out


class _Index:
    def __getitem__(self, index):
        return index


{INDEX} = _Index()
"""


def _scatter(statement: ast.stmt) -> tuple[str, ast.expr, ast.expr] | None:
    """A subscript's adjoint line: (its target, the index, the value added), from
    ``v[index] += e``, ``np.add.at(v, index, e)`` or ``v = _add_at(v, index, e)``."""
    if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Subscript):
        target = statement.target
        if isinstance(target.value, ast.Name):
            index = ast.Subscript(ast.Name(INDEX, ast.Load()), target.slice, ast.Load())
            return target.value.id, index, statement.value
        return None
    call = statement.value if isinstance(statement, (ast.Expr, ast.Assign)) else None
    if not (isinstance(call, ast.Call) and len(call.args) == 3 and isinstance(call.args[0], ast.Name)):
        return None
    name = ast.unparse(call.func)
    if (isinstance(statement, ast.Expr) and name.endswith(".add.at")) or name == "_add_at":
        return call.args[0].id, call.args[1], call.args[2]
    return None


def _recorded(statement: ast.stmt, target: str, index: ast.expr, value: ast.expr) -> ast.stmt:
    """``__record__(__lines__, line, __placed__(target, index, value))``: what a
    subscript's adjoint line adds, zeros elsewhere (NumPy's add.at)."""
    call = ast.parse(f"{RECORD}({LINES}, {statement.lineno}, {PLACED}({target}, None, None))").body[0]
    call.value.args[2].args[1:] = [index, value]
    return ast.copy_location(call, statement)


def _record(statement: ast.stmt, scattered: bool = False) -> list[ast.stmt]:
    """``v = e  # (k)`` becomes ``v = __record__(__lines__, line, e)``, keeping
    what the line computes by its first line (of ``v += e`` and ``v = v + e``,
    e), and is followed by ``__record__(__after__, line, v)``, keeping what v
    holds once the line has run. A subscript's adjoint line (`scattered`, its
    contribution recorded before it) is followed by that of its target."""
    if scattered:
        target = _scatter(statement)[0]
        after = ast.parse(f"{RECORD}({AFTER}, {statement.lineno}, {target})").body[0]
        return [ast.increment_lineno(after, statement.end_lineno - 1)]
    if not isinstance(statement, (ast.Assign, ast.AugAssign)):
        return []
    target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
    holder, field = statement, "value"
    value = statement.value
    if (
        isinstance(value, ast.BinOp)
        and isinstance(value.op, ast.Add)
        and isinstance(value.left, ast.Name)
        and isinstance(target, ast.Name)
        and value.left.id == target.id
    ):
        holder, field = value, "right"  # v = v + e: e is the line's contribution
    call = ast.parse(f"{RECORD}({LINES}, {statement.lineno}, None)", mode="eval").body
    call.args[2] = getattr(holder, field)
    setattr(holder, field, ast.copy_location(call, getattr(holder, field)))
    if not isinstance(target, ast.Name):
        return []
    after = ast.parse(f"{RECORD}({AFTER}, {statement.lineno}, {target.id})").body[0]
    return [ast.increment_lineno(after, statement.end_lineno - 1)]


def _return_locals(replaced: ast.stmt) -> ast.Return:
    """``return locals()`` in the place of the statement it replaces."""
    line, col = replaced.lineno, replaced.col_offset

    def at(start: int, end: int) -> dict:
        return {"lineno": line, "end_lineno": line, "col_offset": col + start, "end_col_offset": col + end}

    call = ast.Call(ast.Name("locals", ast.Load(), **at(7, 13)), [], [], **at(7, 15))
    return ast.Return(call, **at(0, 15))


@dataclass(frozen=True)
class Line:
    """A statement of a module: where it is and what it says."""

    function: str
    number: int  # its first line in the file
    text: str  # as written, one line (a statement black split is joined)


def assignments(text: str, functions: tuple[str, ...] = INSTRUMENTED) -> dict[tuple[str, int], list[Line]]:
    """The statements of the `functions` (``backward`` and ``value_and_grad``)
    that bind or add to a name on a line marked ``# (k)``, by (name, k): the
    lines that make each adjoint (or tangent), stage by stage, in source order."""
    lines = python_lines(text)
    found: dict[tuple[str, int], list[Line]] = {}
    for function in _functions(ast.parse(text), functions):
        for block in _blocks(function):
            for node in block:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                mark = _NUMBER.search(lines[node.end_lineno - 1])
                if not mark:
                    continue
                scattered = _scatter(node)
                if scattered is not None:  # adds to its target in place: da[...] += dv, add.at
                    targets = [ast.Name(scattered[0], ast.Load())]
                written = " ".join(line.strip() for line in lines[node.lineno - 1 : node.end_lineno])
                for target in targets:
                    if isinstance(target, ast.Name):
                        key = (target.id, int(mark[1]))
                        found.setdefault(key, []).append(Line(function.name, node.lineno, written))
    return found


def instrumented(text: str, filename: str) -> types.ModuleType:
    """The module of `text` with ``value_and_grad`` returning every value and adjoint by name."""
    return module_from_text(text, filename, instrument(text))


def stage_names(text: str) -> dict[int, str]:
    """The name each stage binds in ``forward``, by stage number: the
    assignment whose line carries ``# (k)``."""
    lines = python_lines(text)
    names: dict[int, str] = {}
    for block in _blocks(_forward(ast.parse(text))):
        for node in block:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                found = _NUMBER.search(lines[node.end_lineno - 1])
                if found:
                    names.setdefault(int(found[1]), node.targets[0].id)
    return names


def _forward(tree: ast.Module) -> ast.FunctionDef:
    found = _functions(tree, ("forward",))
    if not found:
        raise ValueError("the module has no function forward")
    return found[0]


def _functions(tree: ast.Module, names: tuple[str, ...]) -> list[ast.FunctionDef]:
    """The module's top-level functions of these names, in source order."""
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]


def _blocks(function: ast.FunctionDef) -> list[list[ast.stmt]]:
    """The function's statement lists, in source order: its body and those of
    the blocks in it (a generated function's stages sit in one try)."""
    found, stack = [], [function.body]
    while stack:
        block = stack.pop(0)
        found.append(block)
        for statement in block:
            stack.extend(
                getattr(statement, field)
                for field in ("body", "orelse", "finalbody")
                if isinstance(getattr(statement, field, None), list)
            )
            stack.extend(handler.body for handler in getattr(statement, "handlers", ()))
    return found

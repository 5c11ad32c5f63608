"""Generated modules as live Python modules: loading their text, and the
instrumented rendering that `verify` and `trace` read every number from.

The instrumented module is a module's own text, parsed with `ast` and changed
in two ways only: ``value_and_grad`` returns its ``locals()`` (every forward
value and adjoint by name) instead of its results, and drops its ``del``
statements (the numpy backend's releases), so that every name stays readable.
Line numbers are kept and the text is registered with `linecache`, so a
failing stage is located, as in the module itself. Whatever the text says,
edited or not, is what runs.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import re
import types

from .errors import python_lines

_NUMBER = re.compile(r"  # \((\d+)\)")  # the stage number a generated line carries


def module_from_text(text: str, filename: str, tree: ast.Module | None = None) -> types.ModuleType:
    """Import `text` (or `tree`, a syntax tree made from it) as a new module;
    `filename` names it in tracebacks."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    module = types.ModuleType(f"stagegen_generated_{digest}")
    module.__file__ = f"<stagegen {filename} {digest}>"
    linecache.cache[module.__file__] = (len(text), None, python_lines(text, True), module.__file__)
    exec(compile(text if tree is None else tree, module.__file__, "exec"), module.__dict__)
    return module


def instrument(text: str) -> ast.Module:
    """The module's syntax tree with ``value_and_grad`` returning ``locals()`` and without its ``del``s."""
    tree = ast.parse(text)
    function = _value_and_grad(tree)
    for block in _blocks(function):
        block[:] = [statement for statement in block if not isinstance(statement, ast.Delete)]
    line, col = function.body[-1].lineno, function.body[-1].col_offset

    def at(start: int, end: int) -> dict:  # `return locals()` in the place of the return it replaces
        return {"lineno": line, "end_lineno": line, "col_offset": col + start, "end_col_offset": col + end}

    call = ast.Call(ast.Name("locals", ast.Load(), **at(7, 13)), [], [], **at(7, 15))
    function.body[-1] = ast.Return(call, **at(0, 15))
    return tree


def instrumented(text: str, filename: str) -> types.ModuleType:
    """The module of `text` with ``value_and_grad`` returning every value and adjoint by name."""
    return module_from_text(text, filename, instrument(text))


def stage_names(text: str) -> dict[int, str]:
    """The name each forward stage binds in ``value_and_grad``, by stage number:
    the first assignment whose line carries ``# (k)`` (the forward lines come first)."""
    lines = python_lines(text)
    names: dict[int, str] = {}
    for block in _blocks(_value_and_grad(ast.parse(text))):
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


def _value_and_grad(tree: ast.Module) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "value_and_grad":
            return node
    raise ValueError("the module has no function value_and_grad")


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

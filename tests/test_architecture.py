"""The structure docs/ARCHITECTURE.md describes, held: who imports what, where a
backend or a gate may be named, and that output depends on input alone."""

from __future__ import annotations

import ast
import re

import pytest
import sympy as sp

import stagegen
from helpers import ROOT
from stagegen.backends import BACKENDS
from stagegen.expr import DOUT, OUT, Num, Slot, diff
from stagegen.gates import DERIVATIVES, REGISTRY
from stagegen.printer import Forms

PACKAGE = ROOT / "stagegen"
# modules that print code or plan it: stagegen's own expressions only, never SymPy
PRINTING = (
    "expr",
    "printer",
    "backends",
    "plan",
    "render",
    "names",
    "differentiate",
    "trace",
    "diagram",
    "ir",
)


def _imports(module: str) -> set[str]:
    """The stagegen modules and top-level packages `module` imports (at any depth in the file)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: a module of this package
                found.update([node.module] if node.module else [alias.name for alias in node.names])
            else:
                found.add((node.module or "").split(".")[0])
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__main__")


@pytest.mark.parametrize("module", PRINTING)
def test_modules_that_print_code_import_no_sympy(module):
    assert "sympy" not in _imports(module)


def test_no_import_cycles():
    """The package's modules import each other without a cycle (deferred imports included)."""
    graph = {m: {i for i in _imports(m) if i in MODULES} for m in MODULES if m != "__init__"}
    state: dict[str, int] = {}

    def visit(start: str) -> None:
        stack = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                path = [n for n, _ in stack]
                pytest.fail("import cycle: " + " -> ".join(path[path.index(child) :] + [child]))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_branches_on_a_backend_name(module):
    """A backend is a record: code reads its fields, never compares its name."""
    text = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    names = "|".join(BACKENDS)
    assert not re.search(rf"(==|!=)\s*\"({names})\"|\"({names})\"\s*(==|!=)", text), module


@pytest.mark.parametrize("module", [m for m in MODULES if m not in ("gates", "__init__")])
def test_no_module_names_a_gate(module):
    """Passes read the gate records; only the registry says which gate is which."""
    text = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    assert not re.search(r"REGISTRY\[\"\w+\"\]|_G\[\"\w+\"\]|\.gate == \"", text), module


def test_the_rules_are_in_the_language_they_are_printed_in():
    """What a reader sees in gates.py is the generated line: (1 - out) * out."""
    sigmoid = REGISTRY["sigmoid"].instance(1)
    text = Forms(BACKENDS["math"].syntax, "math").fill(sigmoid.local[0], ["y"], "sigy")
    assert text == "(1 - sigy) * sigy"


@pytest.mark.parametrize(
    "rule, var, expected",
    [
        ((1 - OUT) * OUT, OUT, "1 - {out} - {out}"),
        (Slot(0) * Slot(1), Slot(1), "{0}"),
        (Slot(0) ** Num(3), Slot(0), "3 * {0}**2"),
        (Slot(0) ** Num(2) * DOUT, DOUT, "{0}**2"),
        (Num(2) * Slot(0), Slot(1), "0"),
    ],
)
def test_rules_differentiate_with_the_registry_derivatives(rule, var, expected):
    printer = Forms(BACKENDS["math"].syntax, "math")
    assert printer.fill(diff(rule, var, DERIVATIVES), ["{0}", "{1}"], "{out}", "{dout}") == expected


def test_output_depends_on_the_input_alone():
    """A program generates the same bytes whatever was built before it in the
    process. SymPy's cache hands out equal objects made earlier: here exp(a)
    of an asinh node `a` that is no longer cached itself, so that expanding
    expm1 (--gates fine) would reach a subtree that carries none of this
    program's source places."""
    program = "s0 = erf(x) / (x - 0.25)\nf = atanh(max(-2.5, s0, s0)) / expm1(asinh(s0 * x))\n"
    before = [stagegen.build(program, gates=g).graph.dump() for g in ("grouped", "fine")]
    asinh = REGISTRY["asinh"].function
    x, s0 = sp.symbols("x s0", real=True)
    earlier = sp.exp(asinh(sp.Mul(s0, x, evaluate=False)))
    for k in range(5000):  # push the asinh node out of the cache; keep its exp in
        asinh(sp.Symbol(f"other{k}", real=True))
        sp.exp(earlier.args[0])
    after = [stagegen.build(program, gates=g).graph.dump() for g in ("grouped", "fine")]
    assert after == before

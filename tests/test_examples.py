"""Every shipped example generates, imports, and passes two independent checks:
stagegen.verify (the code behind --check) and the tests' own finite differences."""

import random
import runpy

import pytest

import stagegen
from gradcheck import FD_RTOL, central_difference, close
from helpers import EXAMPLES

FILES = sorted(p.name for p in EXAMPLES.glob("*.txt"))


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("gates", ["grouped", "fine"])
@pytest.mark.parametrize("name", FILES)
def test_example_matches_sympy(name, style, gates):
    report = stagegen.verify((EXAMPLES / name).read_text(), points=10, style=style, gates=gates)
    assert report.ok, report.table()


@pytest.mark.parametrize("name", FILES)
def test_example_matches_finite_differences(name):
    """Each output's gradient (backward with dout 1 on it, 0 on the others)
    against central differences, at points in the declared ranges (else [-2, 2])."""
    text = (EXAMPLES / name).read_text()
    build, module = stagegen.build(text), stagegen.load(text)
    ranges = [(i.domain.lo, i.domain.hi) if i.domain else (-2.0, 2.0) for i in build.graph.inputs]
    several = len(module.OUTPUTS) > 1
    rng = random.Random(name)
    checked = 0
    for _ in range(20):
        point = [rng.uniform(lo, hi) for lo, hi in ranges]
        for k in range(len(module.OUTPUTS)):

            def value(*p, k=k):
                values = module.forward(*p)[0]
                return values[k] if several else values

            dout = tuple(1.0 if j == k else 0.0 for j in range(len(module.OUTPUTS)))
            grads = module.backward(dout if several else 1.0, module.forward(*point)[1])
            for i, g in enumerate(grads):
                fd = central_difference(value, point, i)
                fd_half = central_difference(value, point, i, step=5e-4)
                if not close(fd, fd_half, FD_RTOL, scale=1.0):
                    continue  # a kink within the stencil
                assert close(g, fd, FD_RTOL, scale=1.0), (name, point, k, i, g, fd)
                checked += 1
    assert checked >= 10 * len(module.INPUTS) * len(module.OUTPUTS)


ARRAYS = sorted(p.name for p in (EXAMPLES / "arrays").glob("*.txt"))


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("gates", ["grouped", "fine"])
@pytest.mark.parametrize("name", ARRAYS)
def test_array_example_matches_finite_differences(name, style, gates):
    source = (EXAMPLES / "arrays" / name).read_text()
    report = stagegen.verify(source, points=5, backend="numpy", style=style, gates=gates)
    assert report.ok, report.table()


def test_notes_on_a_million_elements():
    # runs the example script; it checks 1,000 of its elements against the scalar module itself
    runpy.run_path(str(EXAMPLES / "arrays" / "notes_million.py"), run_name="__main__")


def test_every_example_has_a_golden_file():
    from test_golden import CASES

    examples = {example for example, _ in CASES.values() if example is not None}  # None: a SymPy object
    assert examples == set(FILES) | {f"arrays/{name}" for name in ARRAYS}


def _functions(build) -> str:
    """Every function a program can have: hvp (and, on the math backend, hessian)
    need one scalar output; jacobian_diag an elementwise program; the Jacobian
    entries of rank 4 at most (a layer's 4-D output against its 4-D input has
    none)."""
    graph = build.graph
    ranks = [
        len(graph.shape(o) or ()) + len(graph.shape(k) or ())
        for o in graph.outputs
        for k in build.backward.wrt
    ]
    functions = (["jacobian"] if max(ranks) <= 4 else []) + ["jvp"]
    functions += ["jacobian_diag"] if graph.elementwise else []
    if len(graph.outputs) == 1 and graph.shape(graph.output) == ():
        functions += ["hvp"] + ([] if build.options.backend == "numpy" else ["hessian"])
    return ",".join(functions)


@pytest.mark.parametrize("name", FILES + [f"arrays/{name}" for name in ARRAYS])
def test_every_example_checks_with_every_function_it_can_have(name):
    """`stagegen FILE --with ... --check` passes on every example."""
    backend = "numpy" if name.startswith("arrays/") else "math"
    source = (EXAMPLES / name).read_text()
    functions = _functions(stagegen.build(source, backend=backend))
    report = stagegen.verify(source, points=4, backend=backend, with_=functions)
    assert report.ok, (functions, report.table())
    for function in functions.split(","):
        row = {"jacobian": "value_and_jacobian", "jacobian_diag": "value_and_jacobian_diag"}.get(
            function, function
        )
        assert any(r.quantity == row and r.points > 0 for r in report.rows), (function, report.table())

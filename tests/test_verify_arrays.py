"""verify's SymPy reference for array programs: the program instantiated at
small sizes, one scalar node per element, NumPy's semantics on object arrays.

It passes every shipped array example and the matrix programs of
tests/test_arrays.py, catches wrong lines that finite differences cannot
(an error of 1e-7 relative is below their tolerance), names the line, and
reads no gradient rule."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import sympy as sp
from test_arrays import PROGRAMS

import stagegen
from helpers import EXAMPLES
from stagegen import elements
from stagegen.gates import REGISTRY, slot

ARRAY_EXAMPLES = sorted(p.name for p in (EXAMPLES / "arrays").glob("*.txt"))


def rows_by(report, reference: str) -> dict:
    return {row.quantity: row for row in report.rows if row.reference == reference}


@pytest.mark.parametrize("name", ARRAY_EXAMPLES)
def test_examples_pass_against_sympy(name):
    report = stagegen.verify((EXAMPLES / "arrays" / name).read_text(), backend="numpy", points=6)
    assert report.ok and report.points == 6, report.table()
    sympy_rows = rows_by(report, "sympy/mpmath")
    assert len(sympy_rows) >= 2 and all(row.points == 6 for row in sympy_rows.values())
    assert rows_by(report, "mpmath, per stage"), "every intermediate adjoint array is compared"
    assert not any("too large" in note for note in report.notes)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_matrix_programs_pass_against_sympy(name):
    report = stagegen.verify(PROGRAMS[name], backend="numpy", points=4)
    assert report.ok, report.table()
    assert all(row.points == 4 for row in rows_by(report, "sympy/mpmath").values())


@pytest.mark.parametrize("style", ["seed", "compact"])
def test_a_tiny_error_in_a_line_is_caught_by_sympy_not_by_finite_differences(tmp_path, style):
    text = stagegen.generate(PROGRAMS["softmax-ce"], backend="numpy", style=style)
    line = next(s for s in text.splitlines() if s.strip().startswith("db = ") and "# (" in s)
    first = text.index(line)  # the one in backward
    wrong = line.replace("np.sum(", "1.0000001 * np.sum(", 1)
    path = tmp_path / "softmax_grad.py"
    path.write_text(text[:first] + wrong + text[first + len(line) :])
    report = stagegen.verify(str(path), points=4)
    assert not report.ok
    assert not rows_by(report, "sympy/mpmath")["db"].ok
    assert rows_by(report, "finite differences")["db"].ok  # 1e-7 is below their tolerance
    [note] = [note for note in report.notes if "is wrong" in note]
    number = path.read_text().splitlines().index(wrong) + 1
    assert note.startswith("db is wrong")
    assert f"line {number} (backward) is off by 1.0e-07 relative" in note and wrong.strip() in note


def test_a_wrong_forward_line_is_caught_by_the_value(tmp_path):
    text = stagegen.generate(PROGRAMS["linreg"], backend="numpy")
    assert text.count("WX = W @ X  # (1)") == 2
    path = tmp_path / "linreg_grad.py"
    path.write_text(text.replace("WX = W @ X  # (1)", "WX = 1.0000001 * (W @ X)  # (1)"))
    report = stagegen.verify(str(path), points=3)
    assert not rows_by(report, "sympy/mpmath")["L"].ok


def test_a_wrong_rule_is_caught_and_pinned():
    """The matmul gate with a wrong vjp for b: every module made with it is wrong,
    and the check names the stage whose backward line makes the wrong adjoint."""
    gate = REGISTRY["matmul"]
    right = gate.vjp
    object.__setattr__(gate, "vjp", lambda a, b, out, dout: (dout @ b.T, 1.5 * (a.T @ dout)))
    gate.instance.cache_clear()
    try:
        report = stagegen.verify(PROGRAMS["notes-matmul"], backend="numpy", points=3)
    finally:
        object.__setattr__(gate, "vjp", right)
        gate.instance.cache_clear()
    assert not report.ok
    assert not rows_by(report, "sympy/mpmath")["dX"].ok and rows_by(report, "sympy/mpmath")["dW"].ok
    [note] = [note for note in report.notes if "is wrong" in note]
    assert note.startswith("dX is wrong") and "dX = 1.5 * (W.T @ dD)  # (1)" in note


@contextlib.contextmanager
def rules_that_raise():
    saved = {g.name: (g.local, g.vjp) for g in REGISTRY.values()}

    def touched(*args, **kwargs):
        raise AssertionError("verify read a gradient rule")

    for gate in REGISTRY.values():
        object.__setattr__(gate, "local", touched if gate.local is not None else None)
        object.__setattr__(gate, "vjp", touched if gate.vjp is not None else None)
        gate.instance.cache_clear()
    try:
        yield
    finally:
        for gate in REGISTRY.values():
            object.__setattr__(gate, "local", saved[gate.name][0])
            object.__setattr__(gate, "vjp", saved[gate.name][1])
            gate.instance.cache_clear()


def test_the_reference_reads_no_gradient_rule():
    build = stagegen.build(PROGRAMS["two-layer"], backend="numpy")
    with rules_that_raise():
        report = stagegen.verify(build, points=3)
    assert report.ok, report.table()


def test_size_names_take_several_sizes(monkeypatch):
    seen = set()
    module = stagegen.load((EXAMPLES / "arrays" / "softmax.txt").read_text(), backend="numpy")
    original = module.value_and_grad

    def spy(W, b, X, Y):
        seen.add((W.shape, X.shape))
        return original(W, b, X, Y)

    monkeypatch.setattr(module, "value_and_grad", spy)
    assert stagegen.verify(module, points=8).ok
    # k, d, m all 2; 2, 3, 4; 4, 3, 2; all 3
    assert seen == {((2, 2), (2, 2)), ((2, 3), (3, 4)), ((4, 3), (3, 2)), ((3, 3), (3, 3))}


def test_too_large_to_instantiate_falls_back_to_finite_differences():
    report = stagegen.verify("A: matrix(120, 120)\nL = sum(A @ A)\n", backend="numpy", points=2)
    assert report.ok and report.points == 2
    assert any("too large to instantiate" in note for note in report.notes)
    assert all(row.points == 0 for row in rows_by(report, "sympy/mpmath").values())
    assert all(row.points == 2 for row in rows_by(report, "finite differences").values())


def test_points_given_as_arrays_get_the_sympy_reference():
    W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    report = stagegen.verify("W: matrix(n, m)\nL = sum(tanh(W) * W)\n", backend="numpy", at=[{"W": W}])
    assert report.ok and report.points == 1
    assert rows_by(report, "sympy/mpmath")["dW"].points == 1


def test_a_given_point_outside_the_domain_fails_by_name():
    W = np.array([[0.5, -1.0]])
    report = stagegen.verify("W: matrix(n, m)\nL = sum(log(W))\n", backend="numpy", at=[{"W": W}])
    assert not report.ok and "not finite and real at the point given" in report.table()


# -- the instantiation itself ------------------------------------------------------------------


def test_broadcasting_and_transposes_follow_numpy():
    build = stagegen.build("A: matrix(n, m)\nc: matrix(n, 1)\nL = sum(A.T * c.T)\n", backend="numpy")
    inst = elements.of_graph(build.graph, [(2, 3), (2, 1)])
    A, c = inst.arrays[0], inst.arrays[1]
    assert A.tolist() == [[0, 1, 2], [3, 4, 5]] and c.tolist() == [[6], [7]]

    def node(i):
        return inst.nodes[i - inst.n_inputs]

    AT, cT = (inst.arrays[s.out] for s in build.graph.stages if s.gate == "transpose")
    # a transpose's element: its own node, the identity of the element it moves
    assert AT.shape == (3, 2)
    assert all(node(AT[i, j]).operands == (A[j, i],) for i in range(3) for j in range(2))
    assert {node(i).expr for i in AT.flat} == {slot(0)}
    product = next(inst.arrays[s.out] for s in build.graph.stages if s.gate == "mul")
    assert product.shape == (3, 2)
    assert node(product[2, 1]).gate == "mul" and node(product[2, 1]).operands == (AT[2, 1], cT[0, 1])
    assert node(cT[0, 1]).operands == (c[1, 0],)


def test_a_reduction_element_is_an_expression_of_what_it_reads():
    build = stagegen.build("A: matrix(2, 3)\nL = sum(mean(A, axis=0))\n", backend="numpy")
    inst = elements.of_graph(build.graph, [(2, 3)])
    means = inst.arrays[build.graph.stages[0].out]
    assert means.shape == (3,)
    node = inst.nodes[means[1] - inst.n_inputs]
    assert node.operands == (1, 4)
    assert sp.simplify(node.expr - (slot(0) + slot(1)) / 2) == 0


@pytest.mark.parametrize("name", [g.name for g in REGISTRY.values() if g.elements is not None])
def test_array_meanings_agree_with_numpy_on_floats(name):
    """Each structural gate's `elements` on object arrays of numbers equals NumPy's float result."""
    gate = REGISTRY[name]
    rng = np.random.default_rng(3)
    shapes = {
        "matmul": [(2, 3), (3, 4)],
        "matvec": [(2, 3), (3,)],
        "vecmat": [(3,), (3, 4)],
        "vecdot": [(3,), (3,)],
        "dot": [(3,), (3,)],
        "outer": [(3,), (4,)],
        "matmul_batched": [(2, 2, 3), (2, 3, 4)],
        "matmul_broadcast": [(2, 3), (2, 3, 4)],
        "matrix_transpose": [(2, 3, 4)],
        "swapaxes": [(2, 3, 4)],
        "reversed_axes": [(2, 3, 4)],
        "reshape": [(2, 3, 4)],
        "permute_dims": [(2, 3, 4)],
        "concat": [(3, 4), (3, 2), (3, 1)],
        "stack": [(3, 4), (3, 4)],
    }.get(name, [(3, 4)])
    floats = [rng.uniform(-2, 2, s) for s in shapes]
    objects = [np.array([sp.Float(x, 30) for x in a.ravel()], dtype=object).reshape(a.shape) for a in floats]
    picks = np.array([2, 0, -1, 2, 2])  # a gather's index array (repeats and a negative one)
    if name == "gather":
        floats.append(picks)
        objects.append(np.array([sp.Integer(int(i)) for i in picks], dtype=object))
    # along axis 1, keeping it (keepdims=True) where the gate can; a subscript's items
    index = {
        "subscript": (("at", 1), ("slice", 1, None, None), ("new",)),
        "gather": (("rest",), ("take", 1), ("new",)),
    }.get(name)
    params = {
        **{"axis": 1, "keepdims": 1, "ddof": 1, "axis1": 0, "axis2": 2, "index": index},
        "shape": (("of", 2, "c"), -1, 2),
        "size": ("m", 1),  # a size of the operand's axis 2, -1, and an integer
        "axes": (2, 0, 1),
    }
    params = {k: params[k] for k in gate.params}
    got = np.asarray(gate.elements(np, *objects, **params), dtype=object)
    kept = {"keepdims": True} if params.get("keepdims") else {}
    expected = {
        "matmul": lambda a, b: a @ b,
        "matvec": lambda a, b: a @ b,
        "vecmat": lambda a, b: a @ b,
        "vecdot": lambda a, b: a @ b,
        "dot": lambda a, b: a @ b,
        "outer": lambda a, b: a[:, None] * b[None, :],
        "matmul_batched": lambda a, b: a @ b,
        "matmul_broadcast": lambda a, b: a @ b,
        "matrix_transpose": lambda a: np.swapaxes(a, 1, 2),
        "reversed_axes": lambda a: a.transpose(2, 1, 0),
        "swapaxes": lambda a, axis1, axis2: np.transpose(a, (2, 1, 0)),
        "transpose": lambda a: a.T,
        "sum": np.sum,
        "sum_axis": lambda a, axis, keepdims: np.sum(a, axis=axis, **kept),
        "mean": np.mean,
        "mean_axis": lambda a, axis, keepdims: np.mean(a, axis=axis, **kept),
        "logsumexp": lambda a: np.log(np.sum(np.exp(a))),
        "logsumexp_axis": lambda a, axis, keepdims: np.log(np.sum(np.exp(a), axis=axis, **kept)),
        "var": lambda a, ddof: np.var(a, ddof=ddof),
        "var_axis": lambda a, axis, keepdims, ddof: np.var(a, axis=axis, ddof=ddof, **kept),
        "std": lambda a, ddof: np.std(a, ddof=ddof),
        "std_axis": lambda a, axis, keepdims, ddof: np.std(a, axis=axis, ddof=ddof, **kept),
        "max_axis": lambda a, axis, keepdims: np.max(a, axis=axis, **kept),
        "min_axis": lambda a, axis, keepdims: np.min(a, axis=axis, **kept),
        "softmax": lambda a, axis: np.exp(a) / np.sum(np.exp(a), axis=axis, keepdims=True),
        "log_softmax": lambda a, axis: a - np.log(np.sum(np.exp(a), axis=axis, keepdims=True)),
        "prod": np.prod,
        "prod_axis": lambda a, axis, keepdims: np.prod(a, axis=axis, **kept),
        "subscript": lambda a, index: a[1, 1:, None],
        "gather": lambda a, i, index: a[..., i, None],
        "reshape": lambda a, shape: np.reshape(a, (4, -1, 2)),
        "axis_size": lambda a, size: np.asarray(4.0),
        "max_all": np.max,
        "min_all": np.min,
        "permute_dims": lambda a, axes: np.transpose(a, (2, 0, 1)),
        "concat": lambda *xs, axis: np.concatenate(xs, axis=1),
        "stack": lambda *xs, axis: np.stack(xs, axis=1),
    }[name](*floats, **params)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.astype(float), expected, rtol=1e-13)


def test_backward_reference_is_computed_at_50_digits():
    """log_softmax of a dominant logit is about -exp(-gap), below 1e-13 here: at 15
    digits backward's reference would be 0.0 and the module's right value a mismatch."""
    text = "S: matrix(2, 2) in [30, 90]\nY: matrix(2, 2)\nL = sum(Y * log_softmax(S, axis=1))\n"
    report = stagegen.verify(text, backend="numpy", wrt="Y")
    assert report.ok, report.table()

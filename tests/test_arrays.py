"""The numpy backend: every elementwise gate on arrays of several shapes
(broadcasting against scalars, rows and columns), and matrix programs
(matmul, transpose, reductions, logsumexp) against finite differences.

References are independent of stagegen: elementwise gradients come from
SymPy's derivative of the gate's meaning, evaluated element by element with
mpmath at 50 digits and summed over the broadcast axes by index bookkeeping;
matrix gradients from central finite differences along random directions.
"""

from __future__ import annotations

import functools
import re
import zlib

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, note
from hypothesis import strategies as st
from test_gates import CASES, application

import stagegen
from gradcheck import DPS, RTOL, close
from helpers import EXAMPLES, instrumented, release_errors, run_cli
from stagegen.errors import ShapeError

# Declared shapes per arity: (rows, columns) broadcasting, a scalar weight
# against a matrix, a vector against a matrix; None: undeclared inputs, whose
# arrays (of the runtime shapes) broadcast and are summed back at run time.
SHAPES = {
    1: [((3, 4),), ((5,),), None],
    2: [((3, 4), ()), ((3, 1), (4,)), ((4,), (3, 4)), None],
    3: [((3, 1), (4,), ()), None],
}
RUNTIME = {1: [(2, 3)], 2: [(3, 1), (1, 4)], 3: [(2, 1), (3,), ()]}


def declaration(name: str, shape: tuple) -> str:
    if shape == ():
        return f"{name}: scalar"
    if len(shape) == 1:
        return f"{name}: vector({shape[0]})"
    return f"{name}: matrix({shape[0]}, {shape[1]})"


def _shape_id(shapes) -> str:
    return "undeclared" if shapes is None else "+".join("x".join(map(str, s)) or "scalar" for s in shapes)


def _cases():
    out = []
    for case in CASES:
        app = application(case)
        for shapes in SHAPES[len(app.inputs)]:
            out.append(pytest.param(case, shapes, id=f"{case.id}-{_shape_id(shapes)}"))
    return out


@functools.lru_cache(maxsize=None)
def _reference_fns(case):
    """mpmath functions of the inputs: the gate's meaning and its partials."""
    app = application(case)
    symbols = app.symbols()
    meaning = app.meaning(case)
    # sign's derivative is 2*DiracDelta(x): 0 at the (random, nonzero) points sampled
    modules = [{"DiracDelta": lambda *v: mpmath.mpf(0)}, "mpmath"]
    value = sp.lambdify(symbols, meaning, modules)
    partials = [sp.lambdify(symbols, sp.diff(meaning, s), modules) for s in symbols]
    return value, partials


def _sample(case, shape, rng: np.random.Generator):
    lo, hi = case.gate.domain
    return rng.uniform(lo, hi, size=shape) if shape != () else float(rng.uniform(lo, hi))


@pytest.mark.parametrize("case, shapes", _cases())
def test_elementwise_gate_on_arrays(case, shapes):
    app = application(case)
    n = len(app.inputs)
    declared = shapes is not None
    shapes = shapes if declared else tuple(RUNTIME[n])
    decls = [declaration(name, s) for name, s in zip(app.inputs, shapes, strict=True)] if declared else []
    module = stagegen.load("\n".join([*decls, app.text, ""]), backend="numpy")
    rng = np.random.default_rng(zlib.crc32(f"{case.id}-{shapes}".encode()))
    args = [_sample(case, s, rng) for s in shapes]
    full = np.broadcast_shapes(*shapes)
    dout = rng.uniform(-2.0, 2.0, size=full)

    value, cache = module.forward(*args)
    grads = module.backward(dout, cache)

    # Reference: per element of the output, the partials at its operands, each
    # times dout there, summed into the input element it was broadcast from.
    fn, partials = _reference_fns(case)
    sources = [np.broadcast_to(np.arange(max(1, np.size(a))).reshape(np.shape(a)), full) for a in args]
    flat = [np.ravel(a) for a in args]
    expected = [np.zeros(max(1, np.size(a))) for a in args]
    scale = [np.zeros(max(1, np.size(a))) for a in args]
    with mpmath.workdps(DPS):
        for index in np.ndindex(full):
            point = [mpmath.mpf(float(f[src[index]])) for f, src in zip(flat, sources, strict=True)]
            assert close(float(np.broadcast_to(value, full)[index]), float(fn(*point)), RTOL, scale=1e-300)
            for i, partial in enumerate(partials):
                term = float(partial(*point)) * float(dout[index])
                expected[i][sources[i][index]] += term
                scale[i][sources[i][index]] += abs(term)
    for i, (grad, arg) in enumerate(zip(grads, args, strict=True)):
        assert np.shape(grad) == np.shape(arg), (app.inputs[i], np.shape(grad), np.shape(arg))
        for got, exp, s in zip(np.ravel(grad), expected[i], scale[i], strict=True):
            assert close(float(got), float(exp), RTOL, scale=s), (app.inputs[i], got, exp)


# -- matrix programs ---------------------------------------------------------------------------

NOTES_MATRIX = "W: matrix(5, 10)\nX: matrix(10, 3)\nD = W @ X\nL = sum(D * D)\n"

PROGRAMS = {
    "notes-matmul": NOTES_MATRIX,
    "linreg": "W: matrix(4, 6)\nX: matrix(6, 5)\nY: matrix(4, 5)\nL = sum((W @ X - Y)**2)\n",
    "two-layer": (
        "W1: matrix(5, 3)\nb1: matrix(5, 1)\nW2: matrix(2, 5)\nb2: matrix(2, 1)\nX: matrix(3, 7)\n"
        "H = relu(W1 @ X + b1)\nS = W2 @ H + b2\nL = mean(S**2)\n"
    ),
    "softmax-ce": (
        "W: matrix(4, 3)\nb: matrix(4, 1)\nX: matrix(3, 6)\nY: matrix(4, 6)\n"
        "S = W @ X + b\nL = sum(logsumexp(S, axis=0)) - sum(Y * S)\n"
    ),
    "transpose-axis": (
        "A: matrix(3, 4)\nv: vector(3)\nB = A.T @ A\nc = sum(B * B, axis=1)\n"
        "L = sum(tanh(c / 100)) + sum(A.T * v)\n"
    ),
    "mean-axis-scalar": (
        "w: scalar\nA: matrix(3, 4)\nm = mean(A, axis=0)\nL = sum(exp(w * m)) + w * mean(A)\n"
    ),
    "lse-all": "A: matrix(2, 3)\nr: vector(3)\nL = logsumexp(A + r) * sum(logsumexp(A, axis=1))\n",
    # per-row statistics broadcast back (keepdims): a standardisation, then softmax's loss
    "keepdims": (
        "X: matrix(3, 5)\nmu = mean(X, axis=1, keepdims=True)\nC = X - mu\n"
        "Z = C / sqrt(mean(C**2, axis=1, keepdims=True) + 0.1)\n"
        "L = sum(Z - logsumexp(Z, axis=0, keepdims=True)) + sum(sum(X, axis=1, keepdims=True) ** 2)\n"
    ),
    # variances and standard deviations, whole and per row, NumPy's ddof
    # (3 x 4: the reference's second partials of var over every element grow as its square)
    "var-std": (
        "A: matrix(3, 4)\nZ = (A - mean(A, axis=1, keepdims=True)) / std(A, axis=1, keepdims=True, ddof=1)\n"
        "L = sum(Z * A) + var(A) + std(A * A, ddof=1) + sum(var(A, axis=0))\n"
    ),
    # max pooling over rows and a min over columns
    "max-min-axis": (
        "A: matrix(4, 5)\nB: matrix(4, 5)\nP = max(A * B, axis=1, keepdims=True)\n"
        "L = sum(P * A) + sum(min(A - B, axis=0) ** 2)\n"
    ),
    # products, of every element and along each axis (kept too)
    "prod": (
        "A: matrix(3, 4)\nv: vector(4)\n"
        "L = sum(prod(A, axis=1) * sum(A, axis=1)) + sum(prod(A, axis=0, keepdims=True) * A) + prod(v)\n"
    ),
    # vectors in @: matvec, vecmat and vecdot (NumPy's matmul drops the vector's axis)
    "vectors-matmul": (
        "A: matrix(4, 3)\nv: vector(3)\nw: vector(4)\nB: matrix(4, 5)\n"
        "L = sum(tanh(A @ v) * w) + w @ (B @ (w @ B)) + (A @ v) @ w\n"
    ),
    "outer-dot": (
        "u: vector(3)\nv: vector(4)\nW: matrix(3, 4)\n"
        "M = outer(u, v) * W\nL = dot(M @ v, u) + sum(outer(v, M @ v) ** 2)\n"
    ),
    # stacks of matrices: a matrix times a stack (its gradient summed over the batch),
    # .mT and .T of 3-D arrays, swapaxes
    "stacks": (
        "W: matrix(3, 4)\nX: array(2, 4, 5)\nT: array(2, 3, 5)\nY = W @ X\nZ = X.mT @ W.T\n"
        "L = sum(Y * T) + sum(sin(Z) * T.mT) + sum(T.T * swapaxes(T, 0, 2)) + sum(X @ X.mT)\n"
    ),
    # batch axes of size 1 and missing ones broadcast: each gradient summed back
    "batch-broadcast": "A: array(1, 3, 4)\nB: array(2, 1, 4, 5)\nL = sum(sin(A @ B))\n",
    "attention": (
        "Q: array(2, 3, 4)\nK: array(2, 3, 4)\nV: array(2, 3, 4)\n"
        "A = softmax(Q @ swapaxes(K, 1, 2) / sqrt(4), axis=-1)\nL = sum((A @ V) ** 2)\n"
    ),
    # the exact gradient is 0: every row mean is counted four times, every element once
    "zero-gradient": "A: matrix(3, 4)\nL = sum(mean(A, axis=1) - A.T)\n",
}


def _fd_check(module, args, rng, directions=3, source="", **options):
    """The gradient against central differences along random directions.

    The differences carry the rounding of the function's value divided by h: a
    first-order bound is eps times the magnitudes of every value the program
    computes at the point (from `source`), which matters where the exact
    directional derivative is 0 and the difference is rounding alone."""
    every = instrumented(source, backend="numpy", **options).value_and_grad(*args)
    magnitude = sum(float(np.sum(np.abs(v))) for v in every.values() if isinstance(v, (float, np.ndarray)))
    value, grads = module.value_and_grad(*args)
    assert np.shape(value) == ()
    for grad, arg in zip(grads, args, strict=True):
        assert np.shape(grad) == np.shape(arg)
    for _ in range(directions):
        vs = [rng.standard_normal(np.shape(a)) for a in args]
        slope = sum(float(np.sum(g * v)) for g, v in zip(grads, vs, strict=True))
        estimates = []
        for h in (1e-4, 5e-5):
            plus = module.forward(*[a + h * v for a, v in zip(args, vs, strict=True)])[0]
            minus = module.forward(*[a - h * v for a, v in zip(args, vs, strict=True)])[0]
            estimates.append((plus - minus) / (2 * h))
        # Richardson: the h**2 error term cancels
        fd = (4 * estimates[1] - estimates[0]) / 3
        scale = sum(float(np.sum(np.abs(g * v))) for g, v in zip(grads, vs, strict=True))
        rounding = 4 * np.finfo(float).eps * magnitude / 5e-5  # both differences, Richardson's weights
        assert abs(slope - fd) <= 1e-6 * (abs(fd) + scale) + rounding, (slope, fd, rounding)


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_matrix_program_against_finite_differences(name, style):
    source = PROGRAMS[name]
    build = stagegen.build(source, backend="numpy", style=style)
    assert release_errors(build.text) == []
    module = stagegen.module_from_text(build.text, name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    args = [
        rng.standard_normal(tuple(int(d) for d in i.shape)) if i.shape else float(rng.standard_normal())
        for i in build.graph.inputs
    ]
    if name == "softmax-ce":  # one-hot labels
        labels = rng.integers(0, 4, size=6)
        args[3] = np.eye(4)[labels].T
    _fd_check(module, args, rng, source=source, style=style)


def test_notes_matrix_example_backprops_by_dimension_analysis():
    text = stagegen.generate(NOTES_MATRIX, backend="numpy")
    assert "    dW = dD @ X.T  # (1)\n" in text
    assert "    dX = W.T @ dD  # (1)\n" in text
    assert "import math" not in text and "import numpy as np" in text


def test_vectors_in_matmul_backprop_by_dimension_analysis():
    text = stagegen.generate(
        "A: matrix(n, k)\nv: vector(k)\nw: vector(n)\nL = w @ (A @ v)\n", backend="numpy"
    )
    assert "    dA = np.outer(dAv, v)  # (1)\n" in text
    assert "    dv = A.T @ dAv  # (1)\n" in text
    assert "    dw = dout * Av  # (2)\n" in text
    assert "    dAv = w * dout  # (2)\n" in text


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_vectors_in_matmul_forward_and_second_order_verify(backend):
    source = (EXAMPLES / "arrays" / "matvec.txt").read_text()
    report = stagegen.verify(source, backend=backend, with_="jvp,hvp", points=4)
    assert report.ok, report.table()


def test_bias_broadcast_is_summed_at_generation_time():
    text = stagegen.generate(PROGRAMS["two-layer"], backend="numpy")
    assert "db1 = np.sum(" in text and "keepdims=True" in text
    assert "_unbroadcast" not in text


def test_scalar_program_on_arrays_of_a_million_elements():
    module = stagegen.load((EXAMPLES / "notes.txt").read_text(), backend="numpy")
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-4, 4, 10**6), rng.uniform(-4, 4, 10**6)
    f, (dx, dy) = module.value_and_grad(x, y)
    scalar = stagegen.load((EXAMPLES / "notes.txt").read_text())
    for k in rng.integers(0, 10**6, 20):
        fk, (dxk, dyk) = scalar.value_and_grad(float(x[k]), float(y[k]))
        assert close(f[k], fk, 1e-12) and close(dx[k], dxk, 1e-12, 1e-16) and close(dy[k], dyk, 1e-12, 1e-16)


@pytest.mark.parametrize(
    "source, message",
    [
        ("W: matrix(2, 3)\nX: matrix(2, 3)\nL = sum(W @ X)\n", "shapes (2, 3) @ (2, 3) do not fit"),
        ("W: matrix(2, 3)\nv: vector(2)\nL = sum(W + v)\n", "shapes (2, 3) and (2,) do not broadcast"),
        ("W: matrix(n, d)\nX: matrix(k, m)\nL = sum(W @ X)\n", "(n, d) @ (k, m) do not fit"),
        ("W: matrix(2, 3)\nL = sum(W, axis=2)\n", "axis 2 is out of range for shape (2, 3)"),
        (
            "A: matrix(2, 3)\nv: vector(2)\nL = sum(A @ v)\n",
            "shapes (2, 3) @ (2,) do not fit: 3 columns against 2 elements",
        ),
        (
            "v: vector(3)\nB: matrix(2, 3)\nL = sum(v @ B)\n",
            "shapes (3,) @ (2, 3) do not fit: 3 elements against 2 rows",
        ),
        (
            "v: vector(3)\nw: vector(n)\nL = v @ w\n",
            "shapes (3,) @ (n,) do not fit: 3 elements against n elements",
        ),
        ("u: vector(3)\nv: vector(2)\nL = dot(u, v)\n", "dot of shapes (3,) and (2,): 3 elements against 2"),
        (
            "A: matrix(2, 3)\nB: matrix(3, 2)\nL = dot(A, B)\n",
            "dot takes vectors; got shapes (2, 3) and (3, 2) (for matrices write A @ B)",
        ),
        (
            "A: matrix(2, 3)\nv: vector(2)\nL = sum(outer(A, v))\n",
            "outer takes vectors; got shapes (2, 3) and (2,)",
        ),
        ("w: scalar\nv: vector(3)\nL = sum(w @ v)\n", "got shapes () and (3,) (a number multiplies with *)"),
    ],
)
def test_shape_mismatch_is_a_located_error_naming_both_shapes(source, message):
    with pytest.raises(ShapeError, match=None) as info:
        stagegen.generate(source, backend="numpy")
    assert message in str(info.value)
    assert info.value.span is not None


def test_size_names_are_free_at_run_time():
    source = "W: matrix(n, d)\nX: matrix(d, m)\nL = sum((W @ X)**2)\n"
    module = stagegen.load(source, backend="numpy")
    rng = np.random.default_rng(3)
    for n, d, m in [(2, 3, 4), (5, 1, 2)]:
        args = [rng.standard_normal((n, d)), rng.standard_normal((d, m))]
        _fd_check(module, args, rng, directions=1, source=source)


def test_cli_numpy_backend(tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_text(NOTES_MATRIX)
    status, out, err = run_cli([str(path), "--backend", "numpy"], capsys)
    assert status == 0, err
    assert "dW = dD @ X.T" in out


def test_dout_is_never_updated_in_place():
    module = stagegen.load(
        "x: vector(3)\ny: vector(3)\nq = x + y\nf = q * x\n", backend="numpy", style="compact"
    )
    x, y = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 2.0])
    dout = np.array([1.0, 1.0, 1.0])
    value, cache = module.forward(x, y)
    module.backward(dout, cache)
    assert dout.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "source, right, wrong",
    [
        (NOTES_MATRIX, "dW = dD @ X.T", "dW = dD @ X.T * 1.0001"),
        (PROGRAMS["softmax-ce"], "db = np.sum(", "db = 0.5 * np.sum("),
        (
            (EXAMPLES / "notes.txt").read_text(),
            "dxpy = (2 * xpy) * dxpysqr",
            "dxpy = (2.0001 * xpy) * dxpysqr",
        ),
    ],
    ids=["matmul", "bias", "elementwise"],
)
def test_verify_numpy_module_passes_and_catches_a_wrong_line(source, right, wrong):
    text = stagegen.generate(source, backend="numpy")
    assert stagegen.verify(stagegen.module_from_text(text, "good.py"), points=4).ok
    assert text.count(right) == 2  # backward and value_and_grad
    report = stagegen.verify(stagegen.module_from_text(text.replace(right, wrong), "bad.py"), points=4)
    assert not report.ok, report.table()


def test_check_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_text(PROGRAMS["two-layer"])
    status, out, err = run_cli([str(path), "--backend", "numpy", "--check", "--points", "3"], capsys)
    assert status == 0, out + err
    assert "dW1" in out and "finite differences" in out


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize(
    "shapes",
    [((4,), ()), ((), (4,)), ((3, 1), (1, 4)), ((1, 4), (3, 1)), ((2, 3), (3,)), ((), ())],
    ids=lambda s: "+".join("x".join(map(str, d)) or "scalar" for d in s),
)
def test_gradient_shapes_follow_the_inputs_in_a_scalar_program(shapes, style):
    # f is linear in x and in y, so a folded dout leaves gradients that broadcasting never reached
    module = stagegen.load("f = 3 * x + x * y + y\n", backend="numpy", style=style)
    rng = np.random.default_rng(7)
    x, y = (rng.standard_normal(s) if s else 0.5 for s in shapes)
    f, (dx, dy) = module.value_and_grad(x, y)
    full = np.broadcast_shapes(*shapes)
    assert np.shape(dx) == np.shape(x) and np.shape(dy) == np.shape(y)
    ones = np.ones(full)
    # d/dx sum(3x + xy + y) = sum over the broadcast axes of (3 + y); d/dy of (x + 1)
    expected_dx = np.sum(3 + y * ones, axis=tuple(range(len(full) - len(shapes[0]))))
    expected_dy = np.sum(x * ones + 1, axis=tuple(range(len(full) - len(shapes[1]))))
    for got, exp, shape in ((dx, expected_dx, shapes[0]), (dy, expected_dy, shapes[1])):
        for axis, size in enumerate(shape):
            if size == 1:
                exp = np.sum(exp, axis=axis, keepdims=True)
        np.testing.assert_allclose(got, np.reshape(exp, shape), rtol=1e-13)


def test_trace_of_an_array_program_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "m.txt"
    path.write_text(NOTES_MATRIX)
    status, out, err = run_cli([str(path), "--backend", "numpy", "--trace", "W=1,X=2"], capsys)
    assert status == 2 and "Traceback" not in err
    assert "works on arrays" in err


# -- random matrix programs (hypothesis) --------------------------------------------------------

MATRIX_INPUTS = {"A": (3, 4), "B": (4, 2), "C": (3, 2), "r": (2,), "c": (3, 1), "s": ()}
UNARY = ("tanh({})", "sin({})", "sigmoid({})", "softplus({})", "({})**2", "exp(tanh({}))", "relu({})")


def _expression(data, depth: int) -> tuple[str, tuple]:
    """A random well-shaped expression over MATRIX_INPUTS: (text, shape)."""
    if depth == 0 or data.draw(st.integers(0, 3)) == 0:
        name = data.draw(st.sampled_from(sorted(MATRIX_INPUTS)))
        return name, MATRIX_INPUTS[name]
    kind = data.draw(st.sampled_from(["unary", "binary", "matmul", "transpose", "reduce"]))
    a, sa = _expression(data, depth - 1)
    if kind == "unary":
        return data.draw(st.sampled_from(UNARY)).format(a), sa
    if kind == "transpose" and len(sa) == 2:
        return f"({a}).T", sa[::-1]
    if kind == "reduce" and len(sa) == 2:
        axis = data.draw(st.integers(0, 1))
        fn = data.draw(st.sampled_from(["sum", "mean", "logsumexp", "max", "min", "var", "std"]))
        if data.draw(st.booleans()):  # the axis kept, with size 1
            return f"{fn}({a}, axis={axis}, keepdims=True)", sa[:axis] + (1,) + sa[axis + 1 :]
        return f"{fn}({a}, axis={axis})", sa[:axis] + sa[axis + 1 :]
    b, sb = _expression(data, depth - 1)
    if kind == "matmul" and len(sa) == 2 and len(sb) == 2 and sa[1] == sb[0]:
        return f"({a}) @ ({b})", (sa[0], sb[1])
    try:
        shape = np.broadcast_shapes(sa, sb)
    except ValueError:
        return a, sa
    op = data.draw(st.sampled_from(["+", "-", "*"]))
    return f"({a}) {op} ({b})", shape


@given(data=st.data(), style=st.sampled_from(["seed", "compact"]), gates=st.sampled_from(["grouped", "fine"]))
def test_random_matrix_programs_against_finite_differences(data, style, gates):
    text, shape = _expression(data, 4)
    decls = [declaration(n, s) for n, s in MATRIX_INPUTS.items()]
    source = "\n".join([*decls, f"L = sum({text})" if shape else f"L = {text} + 0.5 * s", ""])
    note(source)
    generated = stagegen.generate(source, backend="numpy", style=style, gates=gates)
    assert release_errors(generated) == []
    module = stagegen.module_from_text(generated, "<random matrix program>")
    rng = np.random.default_rng(0)
    args = [rng.uniform(-1.5, 1.5, s) if s else float(rng.uniform(-1.5, 1.5)) for s in MATRIX_INPUTS.values()]
    _fd_check(module, args, rng, directions=2, source=source, style=style, gates=gates)


def test_assert_matches_sympy_on_numpy_modules(tmp_path):
    from stagegen.testing import assert_matches_sympy

    for name in ("matmul.txt", "softmax.txt"):
        path = tmp_path / f"{name[:-4]}_grad.py"
        path.write_text(stagegen.generate((EXAMPLES / "arrays" / name).read_text(), backend="numpy"))
        assert assert_matches_sympy(path, points=3).ok
    notes = stagegen.load((EXAMPLES / "notes.txt").read_text(), backend="numpy")
    assert assert_matches_sympy(notes, points=3).ok


@pytest.mark.parametrize("style", ["seed", "compact"])
@pytest.mark.parametrize(
    "source",
    ["f = x + y\n", "x: vector(3)\ny: vector(3)\nf = sum(x - y)\n", "A: matrix(2, 3)\nL = sum(A.T * 2)\n"],
)
def test_returned_gradients_own_their_arrays(source, style):
    module = stagegen.load(source, backend="numpy", style=style)
    args = [np.arange(1.0, 4.0) if "A" not in source else np.ones((2, 3)) for _ in module.INPUTS]
    value, cache = module.forward(*args)
    dout = np.ones_like(value)
    grads = module.backward(dout, cache)
    arrays = [*grads, dout, *args]
    for i, g in enumerate(grads):
        assert all(not np.shares_memory(g, other) for other in arrays[i + 1 :]), (i, source)


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_max_and_min_along_an_axis_route_ties_to_the_first(backend):
    """A tie along the axis: the whole gradient goes to the first element that
    attains the extreme (as max(a, b) gives it to a), nothing to the others."""
    module = stagegen.load(
        "A: matrix(2, 4)\nL = sum(max(A, axis=1)) + 10 * sum(min(A, axis=0, keepdims=True))\n",
        backend=backend,
    )
    A = np.array([[1.0, 3.0, 3.0, -2.0], [3.0, 3.0, 0.5, -2.0]])
    _, (dA,) = module.value_and_grad(A)
    # max along rows: row 0's first 3 is column 1, row 1's is column 0;
    # min along columns: the first of each column's minimum (ties in columns 1 and 3)
    want = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]) + 10 * np.array(
        [[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]
    )
    np.testing.assert_array_equal(dA, want)


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_declared_shapes_are_checked_at_entry(backend):
    """A function that takes the inputs checks each declared one first: one
    ValueError naming the input, its declaration and what was passed, never
    NumPy's broadcasting error from inside a stage; a named size agrees
    wherever it appears; undeclared inputs are not checked."""
    source = "W: matrix(k, d)\nb: matrix(k, 1)\nX: matrix(d, m)\nc: scalar\nL = sum((W @ X + b) * c) + z\n"
    module = stagegen.load(source, backend=backend, with_="jvp")
    rng = np.random.default_rng(0)
    W, b, X = rng.normal(size=(2, 3)), rng.normal(size=(2, 1)), rng.normal(size=(3, 4))
    good = (W, b, X, 0.5, np.ones(7))  # z, undeclared, may be anything that broadcasts
    module.forward(*good)
    cases = [
        ((W, b[:, 0], X, 0.5, 1.0), "b is declared matrix(k, 1) but was given shape (2,) (1 axis, not 2)"),
        (
            (W, b, X.T, 0.5, 1.0),
            "X is declared matrix(d, m) but was given shape (4, 3): axis 0 has size 4, "
            "not 3 (d = 3 from W)",
        ),
        (
            (W, np.ones((3, 1)), X, 0.5, 1.0),
            "b is declared matrix(k, 1) but was given shape (3, 1): axis 0 "
            "has size 3, not 2 (k = 2 from W)",
        ),
        ((W, np.ones((2, 2)), X, 0.5, 1.0), "axis 1 has size 2, not 1"),
        ((W, b, X, np.ones(3), 1.0), "c is declared scalar but was given shape (3,) (1 axis, not 0)"),
    ]
    for args, message in cases:
        for call in (module.forward, module.value_and_grad, lambda *a: module.jvp(*a, *a)):
            with pytest.raises(ValueError, match=re.escape(message)):
                call(*args)


def test_entry_checks_on_lazy_arrays_skip_unknown_sizes():
    """Dask arrays of unknown chunk sizes: their shape has NaN sizes, which the
    check leaves alone (the rank is still checked)."""
    da = pytest.importorskip("dask.array")
    module = stagegen.load("x: vector(n)\nL = sum(x * x)\n", backend="array")
    x = da.from_array(np.arange(6.0), chunks=3)
    lazy = x[x > 1.5]  # shape (nan,)
    value, (dx,) = module.value_and_grad(lazy)
    np.testing.assert_allclose(dx.compute(), 2 * np.arange(2.0, 6.0))
    with pytest.raises(ValueError, match=re.escape("x is declared vector(n) but was given shape")):
        module.value_and_grad(da.ones((2, 3), chunks=1))


# -- prod: its gradient is the product of the other elements, never out / x --------

PROD_SOURCE = (
    "A: matrix(3, 4)\nv: vector(5)\nw: vector(3)\n"
    "L = sum(prod(A, axis=1) * w) + sum(prod(A, axis=0, keepdims=True) * prod(A, axis=0)) + prod(v)\n"
)


def _others(a: np.ndarray, axis: int) -> np.ndarray:
    """Each element's product of the others along `axis`, by deleting it (an
    independent reference: no cumulative products, no division)."""
    out = np.empty_like(a)
    for index in np.ndindex(a.shape):
        line = list(index)
        line[axis] = slice(None)
        row = a[tuple(line)]
        out[index] = np.prod(np.delete(row, index[axis]))
    return out


def _with_zeros(rng, zeros: int) -> list:
    A = rng.uniform(-2.0, 2.0, size=(3, 4))
    v = rng.uniform(-2.0, 2.0, size=5)
    w = rng.uniform(-2.0, 2.0, size=3)
    if zeros >= 1:  # one zero in a row, a column and the vector
        A[1, 2] = v[3] = 0.0
    if zeros >= 2:  # a second zero in the same row and in the vector
        A[1, 0] = v[0] = 0.0
        A[2, 2] = 0.0  # and in the same column
    return [A, v, w]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_gradient_with_zeros(zeros, backend):
    """prod of every element and along each axis, with no zero, one zero and two
    zeros in a row, a column and the vector: the gradient against the product
    of the other elements (np.delete, element by element), finite differences
    (prod is multilinear: central differences are exact up to rounding), and
    stagegen.verify at the same point (SymPy's products)."""
    module = stagegen.load(PROD_SOURCE, backend=backend)
    rng = np.random.default_rng(7 + zeros)
    A, v, w = _with_zeros(rng, zeros)
    value, (dA, dv, dw) = module.value_and_grad(A, v, w)
    col = np.prod(A, axis=0)
    # L = sum_i w_i prod_j A_ij + sum_j col_j**2 + prod(v)
    want_A = w[:, None] * _others(A, 1) + 2 * col[None, :] * _others(A, 0)
    want_v = _others(v, 0)
    assert value == pytest.approx(float(np.sum(np.prod(A, axis=1) * w) + np.sum(col * col) + np.prod(v)))
    assert np.allclose(dA, want_A, rtol=1e-12, atol=1e-12) and np.allclose(dv, want_v, rtol=1e-12, atol=1e-12)
    assert np.allclose(dw, np.prod(A, axis=1), rtol=1e-12, atol=0)
    if zeros:
        assert np.all(np.isfinite(dA)) and np.count_nonzero(dv) == (1 if zeros == 1 else 0)
    h = 1e-6
    for arg, grad in ((A, dA), (v, dv)):
        for index in np.ndindex(arg.shape):
            old = arg[index]
            arg[index] = old + h
            up = module.forward(A, v, w)[0]
            arg[index] = old - h
            down = module.forward(A, v, w)[0]
            arg[index] = old
            assert abs((up - down) / (2 * h) - grad[index]) <= 1e-7 * (1 + abs(grad[index])), index
    point = {"A": A, "v": v, "w": w}
    report = stagegen.verify(PROD_SOURCE, backend=backend, at=[point], with_=("jvp",))
    assert report.ok, report.table()


def test_prod_second_order_is_a_clear_error():
    with pytest.raises(stagegen.UsageError, match="hvp needs the derivative of prod"):
        stagegen.generate("v: vector(3)\nL = prod(v)\n", backend="numpy", with_=("hvp",))

"""reshape, transpose(x, axes), concat and stack: values against NumPy's own
functions, gradients against gradients NumPy alone gives (for a function
linear in x, d f / d x[e] = f(x + e) - f(x)), against `verify` (SymPy/mpmath
at 50 digits and finite differences), the code as written, and the errors."""

import numpy as np
import pytest

import stagegen
from gradcheck import basis_gradient
from helpers import function_lines

PROGRAMS = [
    "x: matrix(N, 8)\nf = sum(max(reshape(x, (N, 4, 2)), axis=2) ** 2)",
    "x: array(a, b, c)\nw: matrix(b, c)\nf = sum(reshape(x, (a, -1)) * reshape(w, (-1,)))",
    "A: array(a, b, c)\nf = sum(sin(transpose(A, (2, 0, 1))) * transpose(A, (2, 0, 1))[0])",
    "a: matrix(n, m)\nb: matrix(n, 3)\nf = sum(tanh(concat([a, b * b, a], axis=1)) ** 2)",
    "a: matrix(n, m)\nb: matrix(k, m)\nf = sum(exp(concat([a, b])) * 0.5)",
    "a: vector(n)\nb: vector(n)\nf = sum(stack([a, a * b, b], axis=-1) ** 3)",
    "a: matrix(n, m)\nf = sum(stack([a, 2 * a]) * stack([a.T, a.T], axis=2).T)",
]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("source", PROGRAMS, ids=[p.split("\n")[-1] for p in PROGRAMS])
def test_verify_checks_reshape_programs(source, backend):
    report = stagegen.verify(source, backend=backend, points=6)
    assert report.ok, report.table()


@pytest.mark.parametrize(
    "source", PROGRAMS[:2] + PROGRAMS[3:6:2], ids=["reshape", "flatten", "concat", "stack"]
)
def test_forward_mode_and_second_order_check(source):
    report = stagegen.verify(source, backend="numpy", points=3, with_=("jvp", "hvp", "jacobian"))
    assert report.ok, report.table()


# (source, its inputs' shapes, the same function in NumPy)
LINEAR = [
    (
        "x: array(2, 3, 4)\nw: array(4, 6)\nf = sum(w * reshape(x, (4, 6)))",
        [(2, 3, 4), (4, 6)],
        lambda x, w: np.sum(w * np.reshape(x, (4, 6))),
    ),
    (
        "x: array(2, 3, 4)\nw: array(4, 2, 3)\nf = sum(w * transpose(x, (2, 0, 1)))",
        [(2, 3, 4), (4, 2, 3)],
        lambda x, w: np.sum(w * np.transpose(x, (2, 0, 1))),
    ),
    (
        "x: matrix(2, 3)\ny: matrix(2, 5)\nw: matrix(2, 11)\nf = sum(w * concat([x, y, x], axis=-1))",
        [(2, 3), (2, 5), (2, 11)],
        lambda x, y, w: np.sum(w * np.concatenate([x, y, x], axis=-1)),
    ),
    (
        "x: matrix(2, 3)\ny: matrix(2, 3)\nw: array(2, 2, 3)\nf = sum(w * stack([x, y], axis=1))",
        [(2, 3), (2, 3), (2, 2, 3)],
        lambda x, y, w: np.sum(w * np.stack([x, y], axis=1)),
    ),
]


@pytest.mark.parametrize("source, shapes, meaning", LINEAR, ids=["reshape", "transpose", "concat", "stack"])
def test_gradients_against_numpy_alone(source, shapes, meaning):
    module = stagegen.load(source, backend="numpy")
    rng = np.random.default_rng(5)
    args = [rng.standard_normal(s) for s in shapes]
    value, grads = module.value_and_grad(*args)
    assert np.isclose(value, meaning(*args))
    for k, grad in enumerate(grads):

        def along(v, k=k):
            return meaning(*args[:k], v, *args[k + 1 :])

        np.testing.assert_allclose(grad, basis_gradient(along, args[k]), rtol=1e-12, atol=1e-12)


def test_the_code_reads_as_written():
    text = stagegen.generate(PROGRAMS[0], backend="numpy")
    assert "np.reshape(x, (-1, 4, 2))" in text  # the one size that is not an integer: -1
    lines = [line.strip() for line in function_lines(text, "backward")]
    assert "dx = np.reshape(dxr, x.shape)  # (1)" in lines
    text = stagegen.generate(PROGRAMS[3], backend="numpy")
    lines = [line.strip() for line in function_lines(text, "backward")]
    assert "da = dabba[:, : a.shape[1]]  # (2)" in lines
    assert "dbb = dabba[:, a.shape[1] : a.shape[1] + bb.shape[1]]  # (2)" in lines
    assert "da = da + dabba[:, a.shape[1] + bb.shape[1] :]  # (2)" in lines
    text = stagegen.generate("A: array(a, b, c)\nf = sum(transpose(A, (2, 0, 1)) ** 2)", backend="numpy")
    assert "np.transpose(A, (2, 0, 1))" in text and "np.transpose(dAT, (1, 2, 0))" in text
    assert "# backprop AT = transpose(A, (2, 0, 1))" in text


def test_a_gradient_that_is_a_part_of_dout_never_changes_dout():
    """stack's adjoint of each operand is a view of dout: a later += must not
    write into the caller's array."""
    module = stagegen.load(
        "a: vector(n)\nb: vector(n)\ns = stack([a, b])\ng = s * 1.0\nh = a * 3.0\ns, h", backend="numpy"
    )
    a, b = np.ones(3), np.arange(3.0)
    _, cache = module.forward(a, b)
    dout = (np.arange(6.0).reshape(2, 3), np.ones(3))
    kept = [d.copy() for d in dout]
    module.backward(dout, cache)
    for d, k in zip(dout, kept, strict=True):
        np.testing.assert_array_equal(d, k)


@pytest.mark.parametrize(
    "source, message",
    [
        ("x: matrix(N, 8)\nf = sum(reshape(x, (N, 3, 2)))", "not as many elements"),
        ("x: matrix(N, 8)\nf = sum(reshape(x, (-1, -1)))", "at most one -1"),
        (
            "x: matrix(N, 8)\nf = sum(reshape(x, (M, -1)))",
            "reshape()'s shape holds integers, size names and one -1",
        ),
        ("x: matrix(N, D)\ny: vector(M)\nf = sum(reshape(x, (M, -1)))", "its size M is none of the array's"),
        ("x: matrix(N, D)\nf = sum(reshape(x, N))", "reshape()'s shape is a tuple"),
        (
            "x: matrix(N, D)\nf = sum(reshape(x, (0, N, D)))",
            "a size is a positive integer, a size name or -1",
        ),
        ("x: array(a, b, c)\nf = sum(transpose(x, (0, 1)))", "not a permutation of the 3 axes"),
        ("x: array(a, b, c)\nf = sum(transpose(x, (0, 1, 1)))", "not a permutation"),
        ("x: array(a, b, c)\nf = sum(transpose(x))", "transpose() takes 2 arguments, got 1"),
        ("a: matrix(n, m)\nb: vector(n)\nf = sum(concat([a, b]))", "not one rank"),
        ("a: matrix(n, m)\nb: matrix(k, m)\nf = sum(concat([a, b], axis=1))", "the other axes differ"),
        ("a: matrix(n, m)\nf = sum(concat([a]))", "concat() takes a list of 2 or more arrays"),
        (
            "a: matrix(n, m)\nb: matrix(n, m)\nf = sum(concat(a, b))",
            "concat() takes a list of 2 or more arrays",
        ),
        ("a: matrix(n, m)\nb: matrix(m, n)\nf = sum(stack([a, b]))", "not one shape"),
        ("a: matrix(n, m)\nb: matrix(n, m)\nf = sum(stack([a, b], axis=3))", "axis 3 is out of range"),
    ],
)
def test_bad_shapes_are_clear_errors(source, message):
    with pytest.raises(stagegen.StagegenError) as err:
        stagegen.generate(source, backend="numpy")
    assert message in err.value.render()


# -- sizes as numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_a_size_name_is_a_number(backend):
    source = "x: vector(N)\nA: matrix(N, d)\nf = sum(x) / N + sum(A * A) / sqrt(d) + N * d"
    module = stagegen.load(source, backend=backend)
    assert module.INPUTS == ("x", "A")  # N and d are sizes, not inputs
    rng = np.random.default_rng(2)
    for n, d in [(3, 2), (5, 7)]:
        x, A = rng.standard_normal(n), rng.standard_normal((n, d))
        value, (dx, dA) = module.value_and_grad(x, A)
        assert np.isclose(float(value), np.mean(x) + np.sum(A * A) / np.sqrt(d) + n * d)
        np.testing.assert_allclose(np.asarray(dx), np.full(n, 1.0 / n))
        np.testing.assert_allclose(np.asarray(dA), 2 * A / np.sqrt(d))
    report = stagegen.verify(source, backend=backend, points=6, with_=("jvp", "hvp"))
    assert report.ok, report.table()


def test_a_size_stage_is_named_by_its_size():
    text = stagegen.generate("x: vector(N)\nf = sum(x) / N", backend="numpy")
    lines = [line.strip() for line in function_lines(text, "forward")]
    assert "N = x.shape[0]  # (2)" in lines and "invN = 1.0 / N  # (3)" in lines


# -- reductions over several axes ------------------------------------------------------------

AXES = [
    "x: array(N, C, H, W)\ng: array(1, C, 1, 1)\nmu = mean(x, axis=(0, 2, 3), keepdims=True)\n"
    "v = var(x, axis=(0, -1, 2), keepdims=True)\nf = sum(g * (x - mu) / sqrt(v + 0.00001) * sin(x))",
    "x: array(a, b, c)\nf = sum(sin(sum(x, axis=(0, 2)))) + sum(logsumexp(x, axis=(-1, 1)))",
    "x: array(a, b, c)\nf = sum(std(x, axis=(2, 0), ddof=1) * mean(x * x, axis=(0, 2)))",
]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("source", AXES, ids=["batchnorm", "sum-lse", "std-mean"])
def test_reductions_over_several_axes(source, backend):
    report = stagegen.verify(source, backend=backend, points=3, with_=("jvp", "hvp"))
    assert report.ok, report.table()


def test_several_axes_against_numpy_alone():
    module = stagegen.load(
        "x: array(2, 3, 4)\nw: vector(3)\nf = sum(w * mean(x, axis=(2, 0)))", backend="numpy"
    )
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal(3)
    value, (dx, dw) = module.value_and_grad(x, w)
    assert np.isclose(value, np.sum(w * np.mean(x, axis=(2, 0))))
    np.testing.assert_allclose(
        dx, basis_gradient(lambda v: np.sum(w * np.mean(v, axis=(0, 2))), x), atol=1e-12
    )


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "x: matrix(n, m)\nf = sum(softmax(x, axis=(0, 1)))",
            "axis= takes an integer, e.g. axis=0 (one axis: softmax() takes no tuple)",
        ),
        ("x: matrix(n, m)\nf = sum(x, axis=(0, 0))", "names an axis twice"),
        ("x: matrix(n, m)\nf = sum(x, axis=())", "axis= takes integers, e.g. axis=(0, 2)"),
        ("x: matrix(n, m)\nf = sum(x, axis=(0, 2))", "axis 2 is out of range"),
    ],
)
def test_bad_axes_are_clear_errors(source, message):
    with pytest.raises(stagegen.StagegenError) as err:
        stagegen.generate(source, backend="numpy")
    assert message in err.value.render()


# -- max and min of every element -------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_max_and_min_of_an_array(backend):
    source = "A: matrix(n, m)\nB: array(2, 2, 2)\nf = max(A) * min(sin(B)) + sum(max(A, 2.0 * A))"
    report = stagegen.verify(source, backend=backend, points=6, with_=("jvp",))
    assert report.ok, report.table()
    assert {"max_all", "min_all", "max"} <= {
        s.gate for s in stagegen.build(source, backend="numpy").graph.stages
    }


def test_a_tie_sends_the_whole_gradient_to_the_first_element():
    module = stagegen.load("A: matrix(2, 3)\nf = max(A) + min(A)", backend="numpy")
    A = np.array([[1.0, 5.0, -2.0], [5.0, -2.0, 0.0]])
    value, (dA,) = module.value_and_grad(A)
    assert value == 3.0
    np.testing.assert_array_equal(dA, [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])  # row-major firsts

"""Subscripts: integers, slices, None, ..., index arrays (W[idx], S[arange(N), y]).

Values and gradients are checked against NumPy's own indexing (the forward
meaning) and against gradients derived independently of stagegen: for a
program linear in x, d f / d x[e] is f(x + e) - f(x) for each basis element e,
computed with NumPy alone; and against `verify` (SymPy/mpmath at 50 digits and
finite differences). What the code says, the entry checks on index inputs and
the errors are checked as written."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stagegen
from gradcheck import basis_gradient
from helpers import function_lines

PROGRAMS = [
    # basic indexing, each slice's gradient into zeros then += at the slice
    "x: matrix(n, 5)\nw: matrix(n, 2)\nf = sum(w * sin(x[:, 1:3])) + sum(x[0] ** 2)",
    "x: array(a, b, c)\nf = sum(exp(x[..., -1]) * x[..., 0])",
    "x: matrix(n, m)\nv: vector(m)\nf = sum(x[:, None] * v)",
    # gathers: an embedding (rows picked, repeats allowed) and class-index picks
    "W: matrix(V, D)\nidx: index(K)\nf = sum(tanh(W[idx]) ** 2)",
    "S: matrix(N, C)\ny: index(N)\nf = -sum(log_softmax(S, axis=1)[arange(N), y])",
    "A: matrix(n, m)\ncols: index(k)\nf = sum(sin(A[:, cols]) * A[:, cols])",
    "T: array(a, b, c)\nj: index(k)\nf = sum(T[1:, j, ::2] ** 3)",
]


@pytest.mark.parametrize("backend", ["numpy", "array"])
@pytest.mark.parametrize("source", PROGRAMS, ids=[p.split("\n")[-1] for p in PROGRAMS])
def test_verify_checks_subscript_programs(source, backend):
    """SymPy/mpmath at 50 digits, element by element, and finite differences."""
    report = stagegen.verify(source, backend=backend, points=8)
    assert report.ok, report.table()


@pytest.mark.parametrize("source", PROGRAMS[3:5], ids=["embedding", "class-index"])
def test_second_order_and_forward_mode_check(source):
    report = stagegen.verify(source, backend="numpy", points=4, with_=("jvp", "hvp", "jacobian"))
    assert report.ok, report.table()


def test_repeated_indices_accumulate():
    """W[idx] with idx picking rows twice: each pick adds its share (np.add.at, not
    dW[idx] += g, which keeps one)."""
    module = stagegen.load(
        "W: matrix(V, D)\nG: matrix(K, D)\nidx: index(K)\nf = sum(G * W[idx])\n", backend="numpy"
    )
    rng = np.random.default_rng(0)
    W, G = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    idx = np.array([1, 1, 3, -4, 1, 0])
    value, (dW, dG) = module.value_and_grad(W, G, idx)
    assert np.isclose(value, np.sum(G * W[idx]))
    expected = basis_gradient(lambda w: np.sum(G * w[idx]), W)
    np.testing.assert_allclose(dW, expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(dW[1], G[0] + G[1] + G[4])  # three picks of row 1
    np.testing.assert_allclose(dG, W[idx])
    assert module.WRT == ("W", "G")  # an index array has no gradient


@pytest.mark.parametrize("convert", ["numpy", "torch", "jax"])
def test_array_backend_gathers_with_repeats(convert):
    source = "S: matrix(N, C)\nW: matrix(C, D)\ny: index(N)\nf = sum(S[arange(N), y] ** 2) + sum(W[y] * 2.0)"
    module = stagegen.load(source, backend="array")
    rng = np.random.default_rng(1)
    S, W = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    y = np.array([2, 0, 2, -1, 1])
    if convert == "torch":
        torch = pytest.importorskip("torch")
        args = [torch.tensor(S), torch.tensor(W), torch.tensor(y)]
    elif convert == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        args = [jax.numpy.asarray(a) for a in (S, W, y)]
    else:
        args = [S, W, y]
    value, (dS, dW) = module.value_and_grad(*args)
    assert np.isclose(float(value), np.sum(S[np.arange(5), y] ** 2) + np.sum(W[y] * 2.0))
    np.testing.assert_allclose(np.asarray(dS), _ds(S, y))
    np.testing.assert_allclose(np.asarray(dW), basis_gradient(lambda w: np.sum(w[y] * 2.0), W), atol=1e-12)


def _ds(S, y):
    """d sum(S[arange(N), y]**2) / dS, by hand: 2 S at the picked elements."""
    out = np.zeros_like(S)
    out[np.arange(len(y)), y] = 2 * S[np.arange(len(y)), y]
    return out


def test_array_backend_on_strict_and_dask():
    """array-api-strict adds an index array's picks on the host (DLPack); Dask
    lazily, by bincount at the flat positions they pick; both take slices and
    integers in place."""
    xp = pytest.importorskip("array_api_strict")
    da = pytest.importorskip("dask.array")
    module = stagegen.load("v: vector(n)\nidx: index(K)\nf = sum(v[idx] ** 2)", backend="array")
    v, idx = np.array([1.0, 2.0, 3.0]), np.array([0, 2, 2, -1])
    _, (dv,) = module.value_and_grad(xp.asarray(v), xp.asarray(idx))
    np.testing.assert_array_equal(np.asarray(dv), [2.0, 0.0, 18.0])  # 2 v[2] from each of three picks
    _, (dv,) = module.value_and_grad(da.from_array(v, chunks=2), da.from_array(idx, chunks=3))
    assert isinstance(dv, da.Array)  # lazy: nothing computed until asked
    np.testing.assert_array_equal(dv.compute(), [2.0, 0.0, 18.0])
    rows = stagegen.load("W: matrix(V, D)\nidx: index(K)\nf = sum(W[idx] * W[idx])", backend="array")
    W = np.arange(6.0).reshape(3, 2)
    _, (dW,) = rows.value_and_grad(da.from_array(W, chunks=(2, 1)), da.from_array(idx, chunks=3))
    expected = np.zeros_like(W)
    np.add.at(expected, idx, 2 * W[idx])  # d sum(W[idx]**2) / dW by hand: 2 W[i] per pick of row i
    np.testing.assert_allclose(dW.compute(), expected, atol=1e-12)
    module = stagegen.load("W: matrix(V, D)\nf = sum(W[1:, 0])", backend="array")
    for convert in (xp.asarray, lambda a: da.from_array(a, chunks=1)):
        _, (dW,) = module.value_and_grad(convert(np.ones((3, 2))))
        np.testing.assert_array_equal(np.asarray(dW), [[0, 0], [1, 0], [1, 0]])


def test_the_code_reads_like_hand_written_backprop():
    module = stagegen.generate(
        "x: matrix(n, 5)\nidx: index(k)\nW: matrix(V, D)\nf = sum(x[:, 1:3]) + sum(x[0]) + sum(W[idx])",
        backend="numpy",
    )
    body = [line.strip() for line in function_lines(module, "backward")]
    assert "dx = np.zeros_like(x, dtype=np.float64)  # (3)" in body
    assert "dx[0] += dx0  # (3)" in body
    assert "dx[:, 1:3] += " in "\n".join(body)
    assert "np.add.at(dW, idx, " in "\n".join(body)
    assert "didx" not in module  # no gradient for an index array


def test_array_backend_names_every_axis():
    module = stagegen.generate("x: matrix(n, n)\nf = sum(x[0] * x[:, 1])", backend="array")
    assert "x[0, ...]" in module and "x[:, 1]" in module and "x[:, 1, ...]" not in module
    assert "_add_at(dx, (0, ...), " in module


# -- the entry checks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier():
    source = (
        "S: matrix(N, C)\ny: index(N)\nW: matrix(V, D)\nidx: index(K)\nf = sum(S[arange(N), y]) + sum(W[idx])"
    )
    return stagegen.load(source, backend="numpy")


@pytest.mark.parametrize(
    "y, idx, message",
    [
        ([0, 1, 2], [0, 1], None),
        ([0, -3, -1], [-4, 3], None),  # negative values count from the end, as in NumPy
        (
            [0.0, 1.0, 2.0],
            [0, 1],
            "y is declared index(N), an array of integers, but was given float64 values",
        ),
        ([True, False, True], [0, 1], "was given bool values"),
        ([0, 3, 1], [0, 1], "y indexes an axis of size 3 (C, from S) but holds 3 (the range is -3 to 2)"),
        ([0, -4, 1], [0, 1], "y indexes an axis of size 3 (C, from S) but holds -4"),
        ([0, 1, 2], [0, 4], "idx indexes an axis of size 4 (V, from W) but holds 4"),
    ],
)
def test_index_inputs_are_checked_at_entry(classifier, y, idx, message):
    S, W = np.ones((3, 3)), np.ones((4, 2))
    args = (S, np.asarray(y), W, np.asarray(idx))
    if message is None:
        classifier.forward(*args)
        return
    for call in (classifier.forward, classifier.value_and_grad):
        with pytest.raises(ValueError) as err:
            call(*args)
        assert message in str(err.value)


def test_an_index_list_is_refused_clearly(classifier):
    with pytest.raises(ValueError, match="y is declared index.N., an array of integers, but was given list"):
        classifier.forward(np.ones((3, 3)), [0, 1, 2], np.ones((4, 2)), np.array([0]))


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, message",
    [
        ("y: index(n)\nx: vector(n)\nf = sum(x * y)", "'y' is an index array: it is used inside a subscript"),
        ("x: vector(n)\nf = sum(x[k])", "'k' is not an index array"),
        ("x: vector(n)\nf = sum(x[1:m])", "'m' is not a size name"),  # x[1:n] is a slice of n-1
        ("x: vector(n)\nf = sum(x[1:n*n])", "this subscript is not allowed"),
        ("x: vector(n)\nf = sum(x[::0])", "a slice's step cannot be zero"),
        ("x: vector(n)\nf = sum(x[..., ...])", "a subscript has at most one ..."),
        ("x: vector(n)\nf = sum(x[0, 0])", "2 indices for an array of 1 axes"),
        ("x: vector(3)\nf = x[3]", "index 3 is out of range for axis 0 of size 3"),
        ("S: matrix(N, C)\ny: index(N)\nf = sum(S[arange(C), y])", "arange(C) indexes axis 0 of size N"),
        ("f = x[0] * 2", "subscript) needs the numpy backend"),
        ("y: index(n) in [0, 3]\nx: vector(n)\nf = sum(x[y])", "an index array takes no range"),
        ("x: vector(n)\nf = sum(x[x > 0])", "this subscript is not allowed"),
    ],
)
def test_bad_subscripts_are_clear_errors(source, message):
    backend = "math" if source.startswith("f =") else "numpy"
    with pytest.raises(stagegen.StagegenError) as err:
        stagegen.generate(source, backend=backend)
    assert message in err.value.render()


def test_wrt_an_index_input_is_refused():
    with pytest.raises(stagegen.StagegenError, match="an index array is integers and has no gradient"):
        stagegen.generate("W: matrix(V, D)\nidx: index(K)\nf = sum(W[idx])", backend="numpy", wrt="W, idx")


# -- random subscripts against NumPy's own indexing ------------------------------------------

SHAPE = (3, 4, 5)


@st.composite
def _specs(draw):
    """A subscript of a (3, 4, 5) array: integers, slices, None, ... and at most
    two index arrays, as text and as NumPy's index."""
    rng_items = []
    taken = 0
    rest = False
    n = draw(st.integers(1, 4))
    arrays = 0
    for _ in range(n):
        kind = draw(st.sampled_from(["at", "slice", "new", "rest", "take"]))
        if kind in ("at", "slice", "take") and taken == 3:
            kind = "new"
        if kind == "rest" and rest:
            kind = "new"
        if kind == "take" and arrays == 2:
            kind = "slice"
        rng_items.append(kind)
        taken += kind in ("at", "slice", "take")
        rest |= kind == "rest"
        arrays += kind == "take"
    # the axes the items take, as NumPy assigns them (... takes what is left)
    before = rng_items.index("rest") if rest else len(rng_items)
    takes = [k for k in rng_items if k in ("at", "slice", "take")]
    sizes = list(SHAPE[: sum(1 for k in rng_items[:before] if k in ("at", "slice", "take"))])
    after = sum(1 for k in rng_items[before:] if k in ("at", "slice", "take"))
    sizes += list(SHAPE[len(SHAPE) - after :]) if after else []
    texts, index, picks = [], [], []
    sizes_iter = iter(sizes)
    for kind in rng_items:
        if kind == "new":
            texts.append("None")
            index.append(None)
        elif kind == "rest":
            texts.append("...")
            index.append(Ellipsis)
        else:
            size = next(sizes_iter)
            if kind == "at":
                k = draw(st.integers(-size, size - 1))
                texts.append(str(k))
                index.append(k)
            elif kind == "slice":
                start = draw(st.one_of(st.none(), st.integers(-size, size)))
                stop = draw(st.one_of(st.none(), st.integers(-size, size)))
                step = draw(st.sampled_from([None, 1, 2, -1, -2]))
                texts.append(
                    f"{'' if start is None else start}:{'' if stop is None else stop}"
                    + (f":{step}" if step else "")
                )
                index.append(slice(start, stop, step))
            else:
                values = draw(st.lists(st.integers(-size, size - 1), min_size=1, max_size=4))
                name = f"i{len(picks)}"
                texts.append(name)
                picks.append((name, size, values))
                index.append(None)  # filled with the values below
    assert len(takes) <= 3
    return texts, index, picks


@settings(max_examples=40, deadline=None)
@given(_specs())
def test_random_subscripts_follow_numpy(spec):
    """The value against NumPy's x[index]; the gradient of sum(w * x[index])
    against the basis gradient NumPy's indexing gives; repeats included."""
    texts, index, picks = spec
    # index arrays of one length broadcast together (NumPy's rule)
    length = len(picks[0][2]) if picks else 0
    arrays = {name: np.array((values * length)[:length]) for name, _, values in picks}
    full = list(index)
    positions = [i for i, t in enumerate(texts) if t in arrays]
    for position, name in zip(positions, arrays, strict=True):
        full[position] = arrays[name]
    full = tuple(full)
    x = np.random.default_rng(len(texts)).standard_normal(SHAPE)
    expected = x[full]
    if expected.size == 0:
        return
    w = np.random.default_rng(7).standard_normal(expected.shape)
    kind = f"array({', '.join(map(str, expected.shape))})" if expected.shape else "scalar"
    declarations = f"x: array(3, 4, 5)\nw: {kind}\n"
    declarations += "".join(f"{name}: index({length})\n" for name in arrays)
    source = declarations + f"f = sum(w * x[{', '.join(texts)}])\n"
    module = stagegen.load(source, backend="numpy")
    args = [x, w if expected.shape else float(w), *arrays.values()]
    value, grads = module.value_and_grad(*args)
    assert np.isclose(value, np.sum(w * expected))
    reference = basis_gradient(lambda v: np.sum(w * v[full]), x)
    np.testing.assert_allclose(grads[0], reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "array"])
def test_a_column_of_positions_picks_as_take_along_axis(backend):
    """S[arange(N)[:, None], k] of an index k of shape (N, K) is NumPy's
    take_along_axis(S, k, axis=1); its adjoint adds each pick (a label listed
    twice in a row counts twice), against a gradient NumPy alone gives."""
    source = "S: matrix(N, C)\nk: index(N, K)\nf = sum(S[arange(N)[:, None], k] ** 2)"
    module = stagegen.load(source, backend=backend)
    rng = np.random.default_rng(4)
    S = rng.standard_normal((4, 5))
    k = np.array([[0, 2, 2], [1, 1, 4], [3, 0, -1], [4, 4, 4]])
    picked = np.take_along_axis(S, k % 5, axis=1)
    value, (dS,) = module.value_and_grad(S, k)
    assert np.isclose(float(value), np.sum(picked**2))
    expected = np.zeros_like(S)
    for row, labels in enumerate(k % 5):  # d sum(picked**2) / dS by hand: 2 S per pick
        for label in labels:
            expected[row, label] += 2 * S[row, label]
    np.testing.assert_allclose(np.asarray(dS), expected, atol=1e-12)
    report = stagegen.verify(source, backend=backend, points=4, with_="jvp,hvp")
    assert report.ok, report.table()


def test_a_column_of_positions_is_written_as_numpy_writes_it():
    text = stagegen.generate(
        "S: matrix(N, C)\nk: index(N, K)\nf = sum(S[arange(N)[:, None], k])", backend="numpy"
    )
    assert "S[np.arange(S.shape[0])[:, None], k]" in text
    assert "np.add.at(dS, (np.arange(S.shape[0])[:, None], k), " in text
    with pytest.raises(stagegen.ParseError, match="this subscript is not allowed"):
        stagegen.generate("S: matrix(N, C)\nk: index(N, K)\nf = sum(S[arange(N)[1:], k])", backend="numpy")

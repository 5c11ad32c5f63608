"""The numba backend (docs/ARCHITECTURE.md, "The Backend record"): the same
staged listing as the math backend, compiled by numba.

Its compiled functions give the math backend's values bit for bit, checked on
one module that applies every scalar gate of the registry (compiled once), at
random points of each gate's domain and at each gate's special values; the
functions asked for with --with too. Where the math backend raises, compiled
code gives NaN or inf (its docstring says which), while the Python copies
(py_value_and_grad, ...) raise at the stage's line; a division by zero raises
in both. Modules on disk compile once per machine (numba's cache, checked in
two processes with NUMBA_CACHE_DIR in a temporary folder); without numba a
module fails at import with one line saying what to do. Over arrays, forward,
backward and value_and_grad run compiled loops: checked on one module (the
notes' function) against the listing element by element, bit for bit (its
squares x * x), against finite differences, and on broadcast, 0-d, empty,
non-contiguous, float32 and integer inputs; the functions asked for refuse
arrays with a TypeError.
"""

from __future__ import annotations

import math
import os
import random
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from test_gates import CASES, _num, application

import stagegen
from helpers import ROOT, example, run_cli
from stagegen.backends import BACKENDS, MATH, SOURCE
from stagegen.printer import Forms

N_POINTS = 30  # random points of the every-gate module


@pytest.fixture(scope="module", autouse=True)
def numba_cache(tmp_path_factory):
    """numba's cache in a temporary folder, for this module's processes and their children."""
    import numba.core.config

    folder = str(tmp_path_factory.mktemp("numba_cache"))
    before = os.environ.get("NUMBA_CACHE_DIR"), numba.core.config.CACHE_DIR
    os.environ["NUMBA_CACHE_DIR"] = numba.core.config.CACHE_DIR = folder
    yield folder
    if before[0] is None:
        del os.environ["NUMBA_CACHE_DIR"]
    else:
        os.environ["NUMBA_CACHE_DIR"] = before[0]
    numba.core.config.CACHE_DIR = before[1]


def _bits(value) -> list:
    """A result as the bytes of its floats, nested tuples and arrays (with their
    shapes) flattened; NaN is NaN."""
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, tuple):
            stack.extend(reversed(v))
        elif isinstance(v, np.ndarray):
            found.append(v.shape)
            stack.extend(reversed(v.ravel().tolist()))
        else:
            v = float(v)
            found.append("nan" if math.isnan(v) else struct.pack("<d", v))
    return found


def _rounded_otherwise(case) -> bool:
    """The gate's math form calls a function numba computes otherwise than CPython."""
    printed = Forms(MATH.syntax, "math")
    printed.fill(case.instance.code["math"], [f"x{i}" for i in range(case.arity)])
    return bool(set(BACKENDS["numba"].rounding) & printed.used)


def _every_gate() -> tuple[str, dict[str, tuple[float, float]], dict[str, tuple[float, ...]]]:
    """One program applying every scalar gate of the registry (each application
    of test_gates' cases, on inputs of its own), summed into f; with each
    input's sampling domain and its gate's special values."""
    lines, terms, domains, specials = [], [], {}, {}
    for k, case in enumerate(CASES):
        app = application(case)
        names = [f"x{k}_{i}" for i in range(len(app.inputs))]
        texts = [names[op] if isinstance(op, int) else _num(op) for op in app.operands]
        text = Forms(SOURCE).fill(case.instance.display, texts)
        if text.isidentifier():  # identity: a second name for a value is for outputs only
            continue
        if _rounded_otherwise(case):  # test_functions_numba_rounds_otherwise_are_close
            continue
        lines.append(f"g{k} = {text}")
        terms.append(f"g{k}")
        for name in names:
            domains[name] = case.gate.domain
            specials[name] = case.gate.special
    return "\n".join(lines + ["f = " + " + ".join(terms)]) + "\n", domains, specials


@pytest.fixture(scope="module")
def every_gate():
    source, domains, specials = _every_gate()
    return (
        stagegen.load(source, backend="numba"),
        stagegen.load(source),
        domains,
        specials,
    )


def _points(module, domains, specials) -> list[list[float]]:
    """Random points in every gate's domain, then per input each of its gate's
    special values, the other inputs random."""
    rng = random.Random(18)
    points = [[rng.uniform(*domains[n]) for n in module.INPUTS] for _ in range(N_POINTS)]
    for j, name in enumerate(module.INPUTS):
        for value in specials[name]:
            point = [rng.uniform(*domains[n]) for n in module.INPUTS]
            point[j] = value
            points.append(point)
    return points


def _outcome(function, *args):
    try:
        return _bits(function(*args))
    except (ArithmeticError, ValueError) as exc:
        return type(exc)


def test_every_gate_compiled_is_the_math_backend_bit_for_bit(every_gate):
    compiled, python, domains, specials = every_gate
    compared = 0
    for point in _points(compiled, domains, specials):
        expected = _outcome(python.value_and_grad, *point)
        if isinstance(expected, type):  # the math backend raises: compiled code gives NaN or inf
            continue
        assert _bits(compiled.value_and_grad(*point)) == expected, point
        value, cache = python.forward(*point)
        got_value, got_cache = compiled.forward(*point)
        assert _bits((got_value, got_cache)) == _bits((value, cache)), point
        assert _bits(compiled.backward(0.75, got_cache)) == _bits(python.backward(0.75, cache)), point
        assert _bits(compiled.py_value_and_grad(*point)) == expected
        compared += 1
    assert compared >= N_POINTS


def test_every_gate_module_applies_every_scalar_gate(every_gate):
    """The program the bit-for-bit test compiles has a stage of each gate (none
    was merged or rewritten away) but those numba computes its own way."""
    source, _, _ = _every_gate()
    gates = {stage.gate for stage in stagegen.build(source, backend="numba").graph.stages}
    rounded = {case.gate.name for case in CASES if _rounded_otherwise(case)}
    assert rounded == {"gamma", "lgamma", "hypot"}  # their own test, to the stated ulps
    assert {case.gate.name for case in CASES} - {"identity"} - rounded <= gates


@pytest.mark.parametrize("style", ["seed", "compact"])
def test_functions_asked_for_are_the_math_backends(style):
    """value_and_jacobian, jvp, hvp and hessian compiled, and in the compact style."""
    options = {"with_": "jacobian,jacobian_diag,jvp,hvp,hessian", "style": style}
    compiled = stagegen.load(example("notes.txt"), backend="numba", **options)
    python = stagegen.load(example("notes.txt"), **options)
    rng = random.Random(7)
    for _ in range(10):
        point = [rng.uniform(-3, 3) for _ in range(2)]
        tangent = [rng.uniform(-1, 1) for _ in range(2)]
        for name, args in [
            ("value_and_grad", point),
            ("value_and_jacobian", point),
            ("value_and_jacobian_diag", point),
            ("jvp", point + tangent),
            ("hvp", point + tangent),
            ("hessian", point),
        ]:
            got = getattr(compiled, name)(*args)
            assert _bits(got) == _bits(getattr(python, name)(*args)), (name, point)
            assert _bits(getattr(compiled, "py_" + name)(*args)) == _bits(got), (name, point)


DOMAINS = "a = log(x)\nb = sqrt(y)\nc = 1.0 / z\nf = a + b * c + exp(w)\n"


@pytest.fixture(scope="module")
def domains():
    return stagegen.load(DOMAINS, backend="numba")


def test_a_domain_error_is_nan_compiled_and_raises_at_its_stage_in_python(domains):
    value, (dx, dy, dz, dw) = domains.value_and_grad(-1.0, 4.0, 2.0, 0.0)
    assert math.isnan(value) and (dx, dy) == (-1.0, 0.125)  # log(-1) is NaN; its slope is not
    assert math.isnan(domains.value_and_grad(1.0, -4.0, 2.0, 0.0)[0])
    assert domains.forward(0.0, 4.0, 2.0, 0.0)[0] == -math.inf  # (its slope 1 / x raises)
    assert domains.value_and_grad(1.0, 4.0, 2.0, 1000.0)[0] == math.inf
    with pytest.raises(ValueError) as raised:
        domains.py_value_and_grad(-1.0, 4.0, 2.0, 0.0)
    line = raised.traceback[-1].statement.lines[0].strip()
    assert line == "a = math.log(x)  # (1)"
    with pytest.raises(OverflowError):
        domains.py_forward(1.0, 4.0, 2.0, 1000.0)


def test_a_division_by_zero_raises_compiled_and_in_python(domains):
    with pytest.raises(ZeroDivisionError):
        domains.value_and_grad(1.0, 4.0, 0.0, 0.0)
    with pytest.raises(ZeroDivisionError):
        domains.py_value_and_grad(1.0, 4.0, 0.0, 0.0)


def test_a_division_by_zero_in_the_loops_is_inf_or_nan_as_numpys(domains):
    """Over arrays a zero divisor gives what the numpy backend's module gives at
    that element (inf, -inf or NaN), in forward, backward and value_and_grad."""
    numpy_module = stagegen.load(DOMAINS, backend="numpy")
    z = np.array([0.0, -0.0, 2.0, 0.0])
    args = (np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 0.0, 0.0]), z, 0.0)
    with np.errstate(all="ignore"):
        expected = numpy_module.value_and_grad(*args)
        got = domains.value_and_grad(*args)
        value, cache = domains.forward(*args)
        grads = domains.backward(np.ones(4), cache)
    assert np.isinf(got[0][:2]).all() and np.isnan(got[0][3])  # (the points do divide by 0)
    for result in (got, (value, grads)):
        np.testing.assert_array_equal(result[0], expected[0])
        for g, e in zip(result[1], expected[1], strict=True):
            np.testing.assert_allclose(g, e, rtol=4e-16, atol=0)  # inf and NaN where NumPy's are
    assert "a division by zero gives inf or NaN at that element" in " ".join(domains.__doc__.split())


def test_the_docstring_says_what_each_function_called_gives_compiled(domains):
    doc = " ".join(domains.__doc__.split())
    for said in ("log: -inf at 0, NaN below", "sqrt: NaN below 0", "exp: inf above 709.78"):
        assert said in doc
    assert "asin" not in doc and "expm1" not in doc  # what the module does not call


def test_a_power_is_the_math_backends_pow_where_numbas_rounds_otherwise():
    """numba turns x**2 into x * x and x**0.5 into sqrt(x), each rounded otherwise
    than CPython's pow about once in a thousand; x = 0.011001469958513586 is one
    such square, 0.12315777117820682 such a root."""
    module = stagegen.load("f = x**2 + y**0.5 + z**-1 + x**3", backend="numba")
    python = stagegen.load("f = x**2 + y**0.5 + z**-1 + x**3")
    x, y = 0.011001469958513586, 0.12315777117820682
    assert x * x != x**2 and math.sqrt(y) != y**0.5  # the points do tell the two apart
    rng = random.Random(3)
    points = [(x, y, 0.00013189530126905946)] + [
        tuple(rng.uniform(0.01, 3) for _ in range(3)) for _ in range(200)
    ]
    for point in points:
        assert _bits(module.value_and_grad(*point)) == _bits(python.value_and_grad(*point)), point


def test_trace_and_check_read_the_python_listing(capsys):
    status, out, _ = run_cli(
        [str(ROOT / "examples" / "notes.txt"), "--backend", "numba", "--trace", "x=0.5,y=0.5"], capsys
    )
    assert status == 0
    status, expected, _ = run_cli([str(ROOT / "examples" / "notes.txt"), "--trace", "x=0.5,y=0.5"], capsys)
    assert out == expected
    status, out, _ = run_cli([str(ROOT / "examples" / "gates.txt"), "--backend", "numba", "--check"], capsys)
    assert status == 0, out


def _python(code: str, folder: Path, cache: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300, env=env
    )


def test_a_module_on_disk_compiles_once_per_machine(tmp_path, capsys):
    status, _, err = run_cli(
        [str(ROOT / "examples" / "notes.txt"), "--backend", "numba", "-o", str(tmp_path / "notes_nb.py")],
        capsys,
    )
    assert status == 0, err
    cache = str(tmp_path / "cache")
    code = (
        "import numpy, notes_nb as m; m.value_and_grad(numpy.ones(3), 0.5); "
        "m.value_and_grad(numpy.ones((2, 1)), numpy.ones(3)); "
        "v = m.value_and_grad(0.5, 0.5); s = m.value_and_grad.stats; "
        "print(m._CACHE, sum(s.cache_hits.values()), sum(s.cache_misses.values()), v)"
    )
    first = _python(code, tmp_path, cache)
    assert first.returncode == 0 and "Cannot cache" not in first.stderr, first.stderr
    second = _python(code, tmp_path, cache)
    assert second.returncode == 0 and "Cannot cache" not in second.stderr, second.stderr
    value = str(stagegen.load(example("notes.txt")).value_and_grad(0.5, 0.5))
    # floats, arrays and arrays that broadcast (the numpy listing, in object mode):
    # compiled and cached, then read from the cache
    assert first.stdout.split(" ", 3) == ["True", "0", "3", value + "\n"]
    assert second.stdout.split(" ", 3) == ["True", "3", "0", value + "\n"]
    assert stagegen.load(example("notes.txt"), backend="numba")._CACHE is False  # in memory


def test_without_numba_a_module_fails_at_import_with_one_line(tmp_path, capsys):
    path = tmp_path / "notes_nb.py"
    status, _, err = run_cli(
        [str(ROOT / "examples" / "notes.txt"), "--backend", "numba", "-o", str(path)], capsys
    )
    assert status == 0, err
    done = _python(
        f"import sys; sys.modules['numba'] = None; import runpy; runpy.run_path({str(path)!r})",
        tmp_path,
        str(tmp_path / "cache"),
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ImportError: this module is compiled by numba, which is not installed: pip install numba "
        "(or generate it with --backend math or --backend numpy)"
    )


# -- arrays: one fused loop ---------------------------------------------------------


@pytest.fixture(scope="module")
def notes():
    return (
        stagegen.load(example("notes.txt"), backend="numba"),
        stagegen.load(example("notes.txt")),
        stagegen.load(example("notes.txt"), backend="numpy"),
    )


def _elementwise(python, *arrays):
    """The math backend's value_and_grad element by element: (value, gradients) arrays."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    columns = [np.broadcast_to(a, shape).ravel() for a in arrays]
    results = [python.value_and_grad(*map(float, point)) for point in zip(*columns, strict=True)]
    value = np.array([r[0] for r in results]).reshape(shape)
    grads = [np.array([r[1][k] for r in results]).reshape(shape) for k in range(len(arrays))]
    return value, grads


LOOP_RTOL = 1e-13  # the loop's powers are numba's (x * x): an ulp or two from the scalar listing's


def test_arrays_of_one_shape_are_the_listing_element_by_element(notes):
    compiled, python, numpy_module = notes
    rng = np.random.default_rng(18)
    x, y = rng.uniform(-4, 4, (2, 37, 5))
    x[0, :3], y[0, :3] = [-1000.0, 800.0, 0.0], [-745.0, 40.0, 0.0]  # both branches of sigmoid
    value, (dx, dy) = compiled.value_and_grad(x, y)
    assert value.shape == dx.shape == dy.shape == (37, 5)
    expected, (ex, ey) = _elementwise(python, x, y)
    reference = numpy_module.value_and_grad(x, y)
    wanted = (reference[0], *reference[1])
    for got, element, want in zip((value, dx, dy), (expected, ex, ey), wanted, strict=True):
        np.testing.assert_allclose(got, element, rtol=LOOP_RTOL, atol=0)
        np.testing.assert_allclose(got, want, rtol=LOOP_RTOL, atol=0)


def test_a_number_beside_arrays_gets_the_sum_of_its_gradients(notes):
    """A fused sum changes the order of summation: compared within n * eps * sum |terms|."""
    compiled, python, numpy_module = notes
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, 100_003)  # more elements than blocks, not a multiple of them
    value, (dx, dy) = compiled.value_and_grad(x, 0.25)
    expected, (ex, ey) = _elementwise(python, x, 0.25)
    assert isinstance(dy, float) and dx.shape == x.shape
    np.testing.assert_allclose(value, expected, rtol=LOOP_RTOL, atol=0)
    np.testing.assert_allclose(dx, ex, rtol=LOOP_RTOL, atol=0)
    bound = x.size * np.finfo(float).eps * np.sum(np.abs(ey))
    assert abs(dy - math.fsum(ey)) <= bound
    assert abs(dy - numpy_module.value_and_grad(x, 0.25)[1][1]) <= bound


def test_arrays_in_any_layout_and_dtype_and_numbers_alone(notes):
    compiled, python, _ = notes
    rng = np.random.default_rng(9)
    x, y = rng.uniform(-3, 3, (2, 8, 6))
    contiguous = compiled.value_and_grad(np.ascontiguousarray(x[:, ::2].T), y[:, ::2].T.copy())
    assert _bits(compiled.value_and_grad(x[:, ::2].T, y[:, ::2].T)) == _bits(contiguous)
    ints = np.arange(-3, 3).reshape(2, 3)
    assert _bits(compiled.value_and_grad(ints, 0.5)) == _bits(compiled.value_and_grad(ints * 1.0, 0.5))
    assert _bits(compiled.py_value_and_grad(x, y)) == _bits(compiled.value_and_grad(x, y))
    value, (dx, dy) = compiled.value_and_grad(np.zeros((0, 3)), 1.0)
    assert value.shape == dx.shape == (0, 3) and dy == 0.0
    assert _bits(compiled.value_and_grad(0.5, -1.5)) == _bits(python.value_and_grad(0.5, -1.5))


@pytest.mark.parametrize(
    "shapes",
    [((3, 1), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1)), ((5, 1, 3), (1, 2, 1)), ((0, 3), (1,))],
)
def test_arrays_that_broadcast_are_the_numpy_backend(notes, shapes):
    """value_and_grad of arrays whose shapes differ is the numpy backend's module
    bit for bit (its listing, _numpy_value_and_grad); forward then backward loop
    over the broadcast shape: against the listing element by element and the
    numpy backend, a gradient summed back to its input's shape (one pass in
    element order, another order than NumPy's) within count * eps * sum |terms|
    of each entry's exact sum."""
    compiled, python, numpy_module = notes
    rng = np.random.default_rng(sum(map(len, shapes)))
    x, y = (rng.uniform(-3, 3, shape) for shape in shapes)
    want_value, want_grads = numpy_module.value_and_grad(x, y)
    for function in (compiled.value_and_grad, compiled.py_value_and_grad):
        value, grads = function(x, y)
        assert _bits(value) == _bits(want_value) and _bits(grads) == _bits(tuple(want_grads))
        assert all(g.dtype == np.float64 and g.flags.c_contiguous for g in (value, *grads))
    value, cache = compiled.forward(x, y)
    grads = compiled.backward(np.ones(value.shape), cache)
    expected, terms = _elementwise(python, x, y)
    assert value.shape == want_value.shape
    np.testing.assert_allclose(value, expected, rtol=LOOP_RTOL, atol=0)
    np.testing.assert_allclose(value, want_value, rtol=LOOP_RTOL, atol=0)
    for given, got, want, term in zip((x, y), grads, want_grads, terms, strict=True):
        assert got.shape == given.shape == np.shape(want)
        # the entry of `given` each element of the broadcast shape reads
        entry = np.broadcast_to(np.arange(given.size).reshape(given.shape), value.shape).ravel()
        exact = [math.fsum(term.ravel()[entry == k]) for k in range(given.size)]
        size = np.bincount(entry, minlength=given.size)
        bound = size * np.finfo(float).eps * np.bincount(entry, np.abs(term.ravel()), given.size)
        assert np.all(np.abs(got.ravel() - exact) <= bound + LOOP_RTOL * np.abs(exact))
        assert np.all(np.abs(np.ravel(want) - exact) <= bound + LOOP_RTOL * np.abs(exact))


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPendingDeprecationWarning")
def test_lists_are_taken_as_arrays(notes):
    """A list is the array numpy.asarray makes of it, in every function."""
    compiled, _, numpy_module = notes
    x, y = [0.5, -1.0, 2.0], [1.5, 0.25, -3.0]
    want = compiled.value_and_grad(np.asarray(x), np.asarray(y))
    assert _bits(compiled.value_and_grad(x, y)) == _bits(want)
    assert _bits(compiled.value_and_grad(x, np.asarray(y))) == _bits(want)
    value, cache = compiled.forward(x, y)
    assert _bits(value) == _bits(want[0])
    assert _bits(compiled.backward(np.ones(3), cache)) == _bits(want[1])
    # a list beside an array of another shape: the numpy listing
    column = np.array([[1.0], [2.0]])
    assert _bits(compiled.value_and_grad(column, y)) == _bits(
        numpy_module.value_and_grad(column, np.asarray(y))
    )


def test_shapes_that_do_not_broadcast_raise(notes):
    with pytest.raises(ValueError, match="broadcast"):
        notes[0].value_and_grad(np.ones(3), np.ones(4))


def test_the_docstring_says_when_the_loops_run(notes):
    doc = " ".join(notes[0].__doc__.split())
    assert "forward, backward and value_and_grad also take arrays (a list is taken as a NumPy" in doc
    assert "given arrays whose shapes differ (a row against a column) it runs the numpy" in doc
    assert "Shapes that do not broadcast raise ValueError" in doc
    assert "(float32, integer and boolean arrays give float64 results)" in doc
    assert "--with" not in doc  # no function asked for: nothing to say of them


# -- forward and backward over arrays: their own loops --------------------------------


def _squares(x, n):
    """x ** n as numba's loops compute a square: x * x (one rounding), where
    CPython's ** calls the C library's pow, which rounds x ** 2 otherwise now and
    then (den = 1.1788538541113645: 1.389696409353218 against 1.3896964093532183)."""
    assert n == 2, "the notes' function has squares only"
    return x * x


@pytest.fixture(scope="module")
def loop_listing():
    """The numba module's listing as Python runs it with numba's squares: what
    the loops compute at each element, bit for bit (the scalar functions are
    the math backend's, pow included)."""
    from stagegen.modules import python_module

    module = python_module(stagegen.generate(example("notes.txt"), backend="numba"), "notes loop")
    module._pow = _squares
    return module


def _elementwise_backward(listing, dout, *arrays):
    """forward then backward (seeded with dout's element) of `listing` at each
    element of the broadcast shape: (value, cache entries, gradient terms)."""
    shape = np.broadcast_shapes(np.shape(dout), *(np.shape(a) for a in arrays))
    columns = [np.broadcast_to(a, shape).ravel() for a in (dout, *arrays)]
    values, caches, grads = [], [], []
    for d, *point in zip(*columns, strict=True):
        value, cache = listing.py_forward(*map(float, point))
        values.append(value)
        caches.append(cache)
        grads.append(listing.py_backward(float(d), cache))
    entries = [np.array([c[k] for c in caches]).reshape(shape) for k in range(len(caches[0]))]
    terms = [np.array([g[k] for g in grads]).reshape(shape) for k in range(len(arrays))]
    return np.array(values).reshape(shape), entries, terms


def _summed_back(got, given, term):
    """Each entry of the gradient `got` of the input `given` (broadcast) is the
    exact sum of its terms within count * eps * sum |terms|."""
    entry = np.broadcast_to(np.arange(np.size(given)).reshape(np.shape(given)), term.shape).ravel()
    exact = np.array([math.fsum(term.ravel()[entry == k]) for k in range(np.size(given))])
    count = np.bincount(entry, minlength=np.size(given))
    bound = count * np.finfo(float).eps * np.bincount(entry, np.abs(term.ravel()), np.size(given))
    assert np.all(np.abs(np.ravel(got) - exact) <= bound)


def test_forward_and_backward_over_arrays_are_the_listing_element_by_element(notes, loop_listing):
    """forward writes the value and each cached stage, then the inputs as given;
    backward given that cache and an array dout writes each gradient: the
    listing's at each element, bit for bit (its squares x * x; the value and
    cache within 4 eps of the math backend's); the same bits as value_and_grad's
    loop where dout is ones."""
    compiled, python, _ = notes
    rng = np.random.default_rng(41)
    x, y = rng.uniform(-4, 4, (2, 20_011))  # more than two blocks, not a multiple of them
    x[:3], y[:3] = [-1000.0, 800.0, 0.0], [-745.0, 40.0, 0.0]  # both branches of sigmoid
    dout = rng.uniform(-2, 2, x.shape)
    value, cache = compiled.forward(x, y)
    want, entries, terms = _elementwise_backward(loop_listing, dout, x, y)
    assert len(cache) == len(entries) + 2 and cache[-2] is x and cache[-1] is y
    assert all(c.shape == x.shape and c.dtype == np.float64 for c in (value, *cache[:-2]))
    assert _bits((value, *cache[:-2])) == _bits((want, *entries))
    grads = compiled.backward(dout, cache)
    assert isinstance(grads, tuple) and _bits(grads) == _bits(tuple(terms))
    # the math backend's forward: a square an ulp off moves a stage a few ulps at most
    math_value, math_entries, _ = _elementwise_backward(python_listing(python), 1.0, x, y)
    for got, expected in zip((value, *cache[:-2]), (math_value, *math_entries), strict=True):
        np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(float).eps, atol=0)
    assert _bits((value, compiled.backward(np.ones_like(x), cache))) == _bits(compiled.value_and_grad(x, y))
    assert _bits(compiled.py_backward(dout, compiled.py_forward(x, y)[1])) == _bits(grads)


def python_listing(python):
    """The math backend's module as _elementwise_backward reads one (py_forward, py_backward)."""
    return types.SimpleNamespace(py_forward=python.forward, py_backward=python.backward)


def test_backward_over_arrays_against_finite_differences(notes):
    """Each gradient element against central differences of forward along that
    input, weighted by dout, at random points."""
    compiled = notes[0]
    rng = np.random.default_rng(43)
    x, y = rng.uniform(-3, 3, (2, 500))
    dout = rng.uniform(-2, 2, x.shape)
    dx, dy = compiled.backward(dout, compiled.forward(x, y)[1])
    h = 1e-6
    for k, grad in enumerate((dx, dy)):
        up, down = [x.copy(), y.copy()], [x.copy(), y.copy()]
        up[k] += h
        down[k] -= h
        slope = (compiled.forward(*up)[0] - compiled.forward(*down)[0]) / (2 * h)
        np.testing.assert_allclose(grad, dout * slope, rtol=1e-6, atol=1e-8)


def test_forward_and_backward_of_arrays_that_broadcast(notes, loop_listing):
    """A column against a row: the value and cache at the broadcast shape (the
    listing's bits), each gradient summed back to its input's shape (an exact
    sum per entry within count * eps * sum |terms|); the numpy backend's shapes."""
    compiled, _, numpy_module = notes
    rng = np.random.default_rng(47)
    x, y = rng.uniform(-3, 3, (3, 1)), rng.uniform(-3, 3, 4)
    dout = rng.uniform(-2, 2, (3, 4))
    value, cache = compiled.forward(x, y)
    want, entries, terms = _elementwise_backward(loop_listing, dout, x, y)
    assert value.shape == (3, 4) and all(c.shape == (3, 4) for c in cache[:-2])
    assert _bits((value, *cache[:-2])) == _bits((want, *entries))
    grads = compiled.backward(dout, cache)
    reference = numpy_module.backward(dout, numpy_module.forward(x, y)[1])
    for got, given, term, expected in zip(grads, (x, y), terms, reference, strict=True):
        assert got.shape == given.shape == np.shape(expected)
        _summed_back(got, given, term)


def test_a_number_beside_an_array_and_empty_arrays(notes, loop_listing):
    """A number's gradient is its terms' sum (n * eps * sum |terms|) and stays a
    number; an empty array gives empty results and the number a gradient of 0.0."""
    compiled = notes[0]
    rng = np.random.default_rng(53)
    x, dout = rng.uniform(-3, 3, (2, 90, 111))
    value, cache = compiled.forward(x, 0.25)
    assert cache[-1] == 0.25 and isinstance(cache[-1], float)
    dx, dy = compiled.backward(dout, cache)
    want, entries, (tx, ty) = _elementwise_backward(loop_listing, dout, x, 0.25)
    assert isinstance(dy, float) and dx.shape == x.shape
    assert _bits((value, *cache[:-2], dx)) == _bits((want, *entries, tx))
    assert abs(dy - math.fsum(ty.ravel())) <= ty.size * np.finfo(float).eps * np.sum(np.abs(ty))
    value, cache = compiled.forward(np.zeros((0, 3)), 0.25)
    assert value.shape == (0, 3) and all(c.shape == (0, 3) for c in cache[:-2])
    dx, dy = compiled.backward(np.zeros((0, 3)), cache)
    assert dx.shape == (0, 3) and dy == 0.0


def test_zero_dimensional_arrays_give_numbers(notes, loop_listing):
    """0-d arrays alone: results of shape (), as numbers; dout a number."""
    compiled = notes[0]
    value, cache = compiled.forward(np.array(0.5), np.array(-1.5))
    assert isinstance(value, float) and cache[-2].shape == ()
    grads = compiled.backward(0.75, cache)
    want, want_cache = loop_listing.py_forward(0.5, -1.5)
    expected = loop_listing.py_backward(0.75, want_cache)
    assert all(isinstance(g, float) for g in (*cache[:-2], *grads))
    assert _bits((value, cache[:-2], grads)) == _bits((want, want_cache, expected))


def test_non_contiguous_float32_and_integer_arrays_are_computed_in_float64(notes):
    """Each is read as the float64 array it converts to exactly: the results (all
    float64) are those of contiguous float64 copies, bit for bit."""
    compiled = notes[0]
    rng = np.random.default_rng(59)
    base = rng.uniform(-3, 3, (12, 10)).astype(np.float32)
    x = base[:, ::2].T  # (5, 12), neither C- nor F-contiguous
    y = np.arange(-30, 30).reshape(5, 12)  # integers
    dout = rng.uniform(-1, 1, (12, 5)).T  # non-contiguous too
    assert not x.flags.c_contiguous and not x.flags.f_contiguous and not dout.flags.c_contiguous
    value, cache = compiled.forward(x, y)
    grads = compiled.backward(dout, cache)
    assert value.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
    assert cache[-2] is x and cache[-1] is y
    flat = [np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (x, y, dout)]
    want, want_cache = compiled.forward(flat[0], flat[1])
    expected = compiled.backward(flat[2], want_cache)
    assert _bits(value.ravel()) == _bits(want)
    assert _bits(tuple(g.ravel() for g in grads)) == _bits(expected)


def test_several_outputs_over_arrays():
    """forward writes each output; backward unpacks one dout per output (an
    array and a number here); a gradient asked for only (wrt); an input read
    by backward is cached as given. Against the numpy backend."""
    source = "a = x * y\nb = exp(a) + z\nf1 = a + b\nf2 = b * x\nf1, f2\n"
    compiled = stagegen.load(source, backend="numba", wrt="x,z")
    numpy_module = stagegen.load(source, backend="numpy", wrt="x,z")
    rng = np.random.default_rng(61)
    x, y = rng.uniform(-1, 1, (2, 4, 5))
    z = rng.uniform(-1, 1, 5)
    values, cache = compiled.forward(x, y, z)
    want, want_cache = numpy_module.forward(x, y, z)
    assert cache[0] is x and cache[-3:] == (x, y, z)
    for got, expected in zip(values, want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=LOOP_RTOL, atol=0)
    dout = (rng.uniform(-1, 1, (4, 5)), 0.5)
    dx, dz = compiled.backward(dout, cache)
    ex, ez = numpy_module.backward(dout, want_cache)
    assert dx.shape == x.shape and dz.shape == z.shape
    np.testing.assert_allclose(dx, ex, rtol=1e-13, atol=0)
    np.testing.assert_allclose(dz, ez, rtol=1e-13, atol=0)
    assert _bits(compiled.forward(0.1, 0.2, 0.3)) == _bits(
        stagegen.load(source, wrt="x,z").forward(0.1, 0.2, 0.3)
    )


def test_functions_asked_for_refuse_arrays_with_a_clear_error():
    """jvp, hvp, value_and_jacobian take numbers: given an array, a TypeError that
    says what to use, compiled and in Python; complex arrays in forward too."""
    module = stagegen.load(example("notes.txt"), backend="numba", with_="jacobian,jvp,hvp")
    assert "--with) take numbers only" in " ".join(module.__doc__.split())
    x = np.linspace(-1, 1, 4)
    for name, args in [
        ("jvp", (x, 0.5, 1.0, 0.0)),
        ("hvp", (0.5, x, 1.0, 1.0)),
        ("value_and_jacobian", (x, x)),
    ]:
        for function in (getattr(module, name), getattr(module, "py_" + name)):
            with pytest.raises(TypeError, match=f"^{name} takes numbers here; .* --backend numpy"):
                function(*args)
    assert _bits(module.jvp(0.5, 0.5, 1.0, 0.0)) == _bits(
        stagegen.load(example("notes.txt"), with_="jvp").jvp(0.5, 0.5, 1.0, 0.0)
    )
    with pytest.raises(TypeError, match="arrays of real numbers, not complex128"):
        module.forward(x + 1j, 0.5)


def test_the_every_gate_module_is_black_formatted():
    """Its functions' entries and loops (and the functions asked for) are written
    in black's style at any width."""
    import black

    text = stagegen.generate(_every_gate()[0], backend="numba", with_="jvp,hvp")
    assert black.format_str(text, mode=black.Mode()) == text


def test_a_program_of_powers_alone_imports_what_it_calls():
    """Its listing calls _pow alone, whose Python body (and the loop) call math.pow."""
    compiled, python = stagegen.load("f = x**2.5 * y", backend="numba"), stagegen.load("f = x**2.5 * y")
    for function in (compiled.value_and_grad, compiled.py_value_and_grad):
        assert _bits(function(1.5, 2.0)) == _bits(python.value_and_grad(1.5, 2.0))
    x = np.linspace(0.5, 2.0, 7)
    value, (dx, dy) = compiled.value_and_grad(x, 2.0)
    expected, (ex, ey) = _elementwise(python, x, 2.0)
    np.testing.assert_allclose(value, expected, rtol=LOOP_RTOL, atol=0)
    np.testing.assert_allclose(dx, ex, rtol=LOOP_RTOL, atol=0)
    assert abs(dy - math.fsum(ey)) <= x.size * np.finfo(float).eps * np.sum(np.abs(ey))


@pytest.mark.parametrize("name", ["float", "range"])
def test_a_name_that_would_hide_a_builtin_the_module_reads_is_refused(name):
    """value_and_grad tests isinstance(..., float), its loop calls range: a user's
    name there would hide them (the math backend takes such names)."""
    source = f"{name} = x * 2\nf = {name} + y"
    with pytest.raises(stagegen.UsageError, match=f"the name '{name}' would hide the builtin"):
        stagegen.generate(source, backend="numba")
    assert stagegen.load(source).value_and_grad(1.0, 2.0) == (4.0, (2.0, 1.0))


def test_functions_numba_rounds_otherwise_are_close():
    """gamma, lgamma and hypot: numba's own implementations, within the ulps the
    docstring states of CPython's (the value), and their gradients as close."""
    source = "f = gamma(x) + lgamma(y) + hypot(x, y)\n"
    compiled, python = stagegen.load(source, backend="numba"), stagegen.load(source)
    text = stagegen.generate(source, backend="numba")
    assert "Not bit for bit: gamma within 8 ulp" in " ".join(text.split())
    rng = random.Random(5)
    for _ in range(2000):
        x, y = rng.uniform(0.1, 6.0), rng.uniform(-6.0, 6.0)
        try:
            want, grads = python.value_and_grad(x, y)
        except ValueError:  # a pole of lgamma
            continue
        got, got_grads = compiled.value_and_grad(x, y)
        scale = abs(math.gamma(x)) + max(1.0, abs(math.lgamma(y))) + math.hypot(x, y)
        assert abs(got - want) <= 20 * math.ulp(scale), (x, y, got, want)
        for g, w in zip(got_grads, grads, strict=True):
            assert abs(g - w) <= 1e-13 * (abs(w) + 1.0), (x, y, got_grads, grads)


MATRIX_LOSS = "W: matrix(3, 4)\nX: matrix(4, 5)\nY: matrix(3, 5)\nR = W @ X - Y\nL = sum(R**2)\n"


def test_a_program_over_arrays_is_the_numpy_listing():
    """A declared array or an array gate: the numpy backend's listing, its
    docstring saying so and regenerating with --backend numba; no numba in it."""
    asked = stagegen.build(MATRIX_LOSS, backend="numba", wrt="W,X")
    listed = stagegen.build(MATRIX_LOSS, backend="numpy", wrt="W,X")
    assert asked.options.backend == "numpy" and asked.options.requested == "numba"
    doc = " ".join(asked.text.split('"""')[1].split())
    assert "--backend numba" in doc and "this module is the numpy backend's listing" in doc
    body = asked.text.split('"""', 2)[2]
    assert body == listed.text.split('"""', 2)[2] and "numba" not in body
    command = next(line for line in asked.text.splitlines() if line.startswith("Generated by: "))
    _, options, _ = stagegen.Options.from_command(command.removeprefix("Generated by: "))
    assert options.backend == "numba" and options.requested == ""
    from stagegen.fresh import record

    assert record(asked.text.split('"""')[1]).build().text == asked.text  # it regenerates
    for text in ("x: vector(n)\ny: vector(n)\nf = exp(x) * y\n", "x: scalar\ny: scalar\nf = sum(x * y)\n"):
        assert stagegen.build(text, backend="numba").options.requested == "numba"
    assert stagegen.build(example("notes.txt"), backend="numba").options.requested == ""


def test_the_matrix_loss_by_the_numba_backend_is_its_derivative():
    """Against the numpy backend and the derivative by hand (2 R X^T, 2 W^T R), and
    central differences at random entries."""
    module = stagegen.load(MATRIX_LOSS, backend="numba", wrt="W,X")
    reference = stagegen.load(MATRIX_LOSS, backend="numpy", wrt="W,X")
    rng = np.random.default_rng(11)
    W, X, Y = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    value, (dW, dX) = module.value_and_grad(W, X, Y)
    assert _bits(module.value_and_grad(W, X, Y)) == _bits(reference.value_and_grad(W, X, Y))
    R = W @ X - Y
    assert value == pytest.approx(math.fsum((R**2).ravel()), rel=1e-14)
    np.testing.assert_allclose(dW, 2 * R @ X.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dX, 2 * W.T @ R, rtol=1e-13, atol=1e-13)
    h = 1e-6
    for array, grad in ((W, dW), (X, dX)):
        for index in zip(*(rng.integers(0, n, 6) for n in array.shape), strict=True):
            saved = array[index]
            array[index] = saved + h
            up = module.value_and_grad(W, X, Y)[0]
            array[index] = saved - h
            down = module.value_and_grad(W, X, Y)[0]
            array[index] = saved
            assert grad[index] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-7)


def test_functions_holding_the_listings_names_read_no_global_a_user_name_could_shadow():
    """forward, backward, value_and_grad, the functions asked for, their Python
    copies and the loops (whose locals are the listing's names) read as globals
    only the math alias, the input language's functions, identifiers.GLOBALS
    and the builtins the backend refuses as names (the loops' helpers have
    dunder locals alone)."""
    import dis

    from stagegen.gates import BY_SOURCE
    from stagegen.identifiers import GLOBALS

    text = stagegen.generate(_every_gate()[0], backend="numba", with_="jvp")
    listings = {"forward", "backward", "value_and_grad", "jvp"}
    listings |= {"py_" + name for name in listings} | {
        "_forward_loop",
        "_backward_loop",
        "_value_and_grad_loop",
    }
    code = compile(text, "<generated>", "exec")
    found = {const.co_name: const for const in code.co_consts if hasattr(const, "co_code")}
    assert listings <= set(found)
    allowed = {"math", *BY_SOURCE, *GLOBALS, *BACKENDS["numba"].reserved}
    for name in listings:
        loaded = {i.argval for i in dis.get_instructions(found[name]) if i.opname == "LOAD_GLOBAL"}
        assert loaded <= allowed, (name, loaded - allowed)

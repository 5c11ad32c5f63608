"""Conformance of --backend array: one module on every namespace it promises,
against the numpy backend on the same points.

Namespaces: array-api-strict (nothing but the standard), NumPy, PyTorch CPU
tensors and JAX CPU arrays (under ``jax.jit``) in float64 and float32, and
Dask (lazy: the module returns Dask arrays, computed here). Results come back
in the arguments' namespace and dtype. float64 results agree with the numpy
backend to 1e-12 relative (the order of a reduction may differ); float32
results with the numpy backend in float64 at the same (float32) points, to
1e-5 relative to the largest element of each array (FLOAT32_RTOL names the
programs whose conditioning float32 cannot meet that in).

The default run takes one program per gate family (every elementwise gate:
examples/gates.txt; matmul, broadcast, reductions, logsumexp:
examples/arrays/softmax.txt) on each namespace. ``-m conformance`` runs every
example and the property tests' random programs on every namespace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import array_api_compat
import array_api_strict as xps
import numpy as np
import pytest
from hypothesis import given

import stagegen
from helpers import EXAMPLES, leaves, sample_arguments

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


@dataclass(frozen=True)
class Namespace:
    """How the tests hand a namespace arrays and take results back."""

    name: str
    make: Callable  # a float64 NumPy array -> an array of the namespace
    float32: bool = False
    jit: bool = False  # run the module's functions under jax.jit
    lazy: bool = False  # results are Dask arrays, computed before comparing

    def run(self, fn, *args):
        if self.jit:
            fn = jax.jit(fn)
        result = fn(*args)
        first = leaves(args)[0]
        space, dtype = array_api_compat.array_namespace(first), first.dtype
        for r in leaves(result):  # results in the arguments' namespace and dtype
            if not isinstance(r, (int, float)):
                assert array_api_compat.array_namespace(r) is space, f"a result {type(r)} from {space}"
                # a mask (a comparison `where` reads, cached) is boolean in every namespace
                boolean = space.isdtype(r.dtype, "bool")
                assert r.dtype == dtype or boolean, f"a result of {r.dtype} from arguments of {dtype}"
        if self.lazy:
            (result,) = dask.compute(result, scheduler="synchronous")
        return result


NAMESPACES = [
    Namespace("array-api-strict", xps.asarray),
    Namespace("array-api-strict-float32", lambda a: xps.asarray(a, dtype=xps.float32), float32=True),
    Namespace("numpy", np.asarray),
    Namespace("torch", lambda a: torch.tensor(a, dtype=torch.float64)),
    Namespace("torch-float32", lambda a: torch.tensor(a, dtype=torch.float32), float32=True),
    Namespace("jax-jit", lambda a: jnp.asarray(a, dtype=jnp.float64), jit=True),
    Namespace("jax-jit-float32", lambda a: jnp.asarray(a, dtype=jnp.float32), float32=True, jit=True),
    Namespace("dask", lambda a: da.from_array(a, chunks=2), lazy=True),
]
# A Black-Scholes price far out of the money is the difference of two near-equal
# terms: float32 rounding of S * N1 (about 0.3) leaves 1.6e-8 in a price of
# 3.6e-4 (4.6e-5 relative, measured), whatever the namespace.
FLOAT32_RTOL = {"black_scholes.txt": 1e-3}
DEFAULT = ["gates.txt", "arrays/softmax.txt"]
EVERY = sorted(p.name for p in EXAMPLES.glob("*.txt")) + sorted(
    f"arrays/{p.name}" for p in (EXAMPLES / "arrays").glob("*.txt")
)


def _cases():
    for ns in NAMESPACES:
        for name in EVERY:
            marks = () if name in DEFAULT else (pytest.mark.conformance,)
            yield pytest.param(ns, name, marks=marks, id=f"{ns.name}-{name}")


def to_numpy(a) -> np.ndarray:
    return np.asarray(a.detach() if hasattr(a, "detach") else a, dtype=np.float64)


def compare(source: str, ns: Namespace, args: list[np.ndarray], name: str = "", **options) -> None:
    """The array module on `ns` against the numpy module on the same points:
    forward, backward (dout of ones) and value_and_grad."""
    array = stagegen.load(source, backend="array", **options)
    numpy = stagegen.load(source, backend="numpy", **options)
    given_args = [ns.make(a) for a in args]
    if ns.float32:  # the reference at the points the namespace was given
        args = [to_numpy(a) for a in given_args]
    values, cache = ns.run(array.forward, *given_args)
    want_values, want_cache = numpy.forward(*args)
    douts = [np.ones(np.shape(v)) for v in leaves(want_values)]
    typed = [ns.make(d) for d in douts]
    got = [values, ns.run(array.backward, tuple(typed) if len(typed) > 1 else typed[0], cache)]
    want = [want_values, numpy.backward(tuple(douts) if len(douts) > 1 else douts[0], want_cache)]
    if hasattr(numpy, "value_and_grad"):
        got.append(ns.run(array.value_and_grad, *given_args))
        want.append(numpy.value_and_grad(*args))
    rtol = FLOAT32_RTOL.get(name, 1e-5)
    for g, w in zip(leaves(got), leaves(want), strict=True):
        g, w = to_numpy(g), np.asarray(w, dtype=np.float64)
        if ns.float32:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * float(np.max(np.abs(w), initial=0.0)))
        else:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ns, name", list(_cases()))
def test_every_namespace_gives_what_numpy_gives(ns, name):
    source = (EXAMPLES / name).read_text()
    args = sample_arguments(stagegen.build(source, backend="numpy"), np.random.default_rng(len(name)))
    compare(source, ns, args, name)


@pytest.mark.conformance
@pytest.mark.parametrize("ns", NAMESPACES, ids=[ns.name for ns in NAMESPACES])
def test_random_programs_on_every_namespace(ns):
    """The property tests' random programs (test_property.py), their reference
    points as one array per input, through --backend array on `ns`: in float64
    against the numpy backend as above; in float32 value_and_grad against the
    numpy backend at the float32 points, to 1e-5 relative plus four float32
    roundoffs of each result's running-error scale (test_property.scales: how
    much float rounding the program's own conditioning lets through; a sine of
    81 in float32 is off by 5e-6 in any namespace)."""
    from test_property import cases, dags, expressions, reference_points

    @given(cases(expressions() | dags()))
    def check(case):
        ex, options = case.example, case.options()
        names = tuple(i.name for i in stagegen.build(ex.text, **options).graph.inputs)
        points = reference_points(ex, names, random.Random(case.seed))
        if not points:
            return
        args = [np.array([p.at[k] for p in points]) for k in range(len(names))]
        if not ns.float32:
            compare(ex.text, ns, args, **options)
            return
        if any(np.max(np.abs(a)) > 1e30 for a in args):
            return  # beyond float32's range
        array = stagegen.load(ex.text, backend="array", **options)
        numpy = stagegen.load(ex.text, backend="numpy", **options)
        given_args = [ns.make(a) for a in args]
        value, grads = ns.run(array.value_and_grad, *given_args)
        want, want_grads = numpy.value_and_grad(*[to_numpy(a) for a in given_args])
        pairs = [(value, want, [p.value_scale for p in points])]
        for w, g, wg in zip(array.WRT, grads, want_grads, strict=True):
            pairs.append((g, wg, [p.grad_scales[names.index(w)] for p in points]))
        for got, w, scale in pairs:
            got, w = to_numpy(got), np.asarray(w, dtype=np.float64)
            tolerance = 1e-5 * np.abs(w) + 4 * 2.0**-23 * np.asarray(scale)
            assert np.all(np.abs(got - w) <= tolerance), f"{got} against {w} (tolerance {tolerance})"

    check()

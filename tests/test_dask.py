"""--backend array on Dask: lazy task graphs, computed on a real
dask.distributed LocalCluster (2 worker processes on 127.0.0.1, closed at the
end), against the same maths in NumPy."""

import runpy

import numpy as np
import pytest

import stagegen
from helpers import EXAMPLES

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_regression_gradient_on_a_local_cluster(client):
    """examples/dask_regression.py at 10^7 elements (10^6 rows of 10, 10 chunks)."""
    example = runpy.run_path(str(EXAMPLES / "dask_regression.py"))
    rows = 1_000_000
    loss, dw = example["run"](rows, client)
    w, X, y = example["data"](rows)
    assert X.numblocks == (10, 1)
    X, y = client.compute([X, y], sync=True)
    r = X @ w - y
    np.testing.assert_allclose(loss, np.sum(r**2) / 2, rtol=1e-12)
    np.testing.assert_allclose(dw, X.T @ r, rtol=1e-10, atol=1e-9 * np.max(np.abs(X.T @ r)))


@pytest.mark.parametrize("name", ["notes.txt", "gates.txt"])
def test_nothing_is_computed_until_asked(client, name):
    """Building the graph computes nothing (a scheduler that refuses to run is set
    while the module runs; gates.txt has erf, which the standard lacks)."""
    source = (EXAMPLES / name).read_text()
    module = stagegen.load(source, backend="array")
    rng = np.random.default_rng(0)
    build = stagegen.build(source)
    args = [rng.uniform(0.2, 0.9, 200_000) for _ in build.graph.inputs]

    def refuse(*args, **kwargs):
        raise AssertionError("the module computed a Dask graph before being asked")

    with dask.config.set(scheduler=refuse):
        value, grads = module.value_and_grad(*[da.from_array(a, chunks=20_000) for a in args])
    assert all(isinstance(a, da.Array) for a in (value, *grads))
    got = client.compute([value, *grads], sync=True)
    want = stagegen.load(source, backend="numpy").value_and_grad(*args)
    # the array backend's sigmoid is the branchless form, the numpy backend's the
    # short one where no element is below -700: they differ in the last bits
    for g, w in zip(got, [want[0], *want[1]], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)

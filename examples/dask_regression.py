"""The gradient of a least-squares loss over a chunked design matrix, on a
Dask cluster.

The loss is generated once with ``--backend array`` (gradient for w only);
given Dask arrays, `value_and_grad` builds a lazy task graph, and nothing is
computed until `dask.compute` asks the cluster: the chunks of X and y stay on
the workers, and what comes back is the loss and the gradient (d numbers).

Run: python examples/dask_regression.py [ROWS]  (default 1,000,000 rows of
10 columns, 10 chunks; a LocalCluster of 2 worker processes on this machine).
On a real cluster, connect a Client to its scheduler instead of starting a
LocalCluster (``Client("tcp://scheduler:8786")``) and pass it to `run`.
"""

import sys

import dask
import dask.array as da
import numpy as np

import stagegen

LOSS = """\
w: matrix(d, 1)
X: matrix(n, d)
y: matrix(n, 1)
r = X @ w - y
L = sum(r**2) / 2
"""
COLUMNS = 10


def data(rows: int, chunks: int = 10, seed: int = 0):
    """A design matrix X (rows x 10, in `chunks` row blocks), targets y = X w* + noise, and w = 0."""
    state = da.random.RandomState(seed)
    X = state.normal(size=(rows, COLUMNS), chunks=(-(-rows // chunks), COLUMNS))
    w_true = np.linspace(-1.0, 1.0, COLUMNS).reshape(COLUMNS, 1)
    y = X @ w_true + 0.01 * state.normal(size=(rows, 1), chunks=(-(-rows // chunks), 1))
    return np.zeros((COLUMNS, 1)), X, y


def run(rows: int = 1_000_000, client=None):
    """(loss, gradient) computed on the cluster `client` talks to (or Dask's default scheduler)."""
    module = stagegen.load(LOSS, backend="array", wrt="w", filename="dask_regression")
    w, X, y = data(rows)
    loss, (dw,) = module.value_and_grad(w, X, y)  # lazy: a task graph
    if client is not None:
        return tuple(client.compute([loss, dw], sync=True))
    return dask.compute(loss, dw)


if __name__ == "__main__":
    from dask.distributed import Client, LocalCluster

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with LocalCluster(n_workers=2, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        with Client(cluster) as client:
            loss, dw = run(rows, client)
    print(f"loss {float(loss):.6g}; gradient {np.ravel(dw)}")

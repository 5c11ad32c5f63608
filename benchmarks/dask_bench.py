"""The array backend on Dask: a least-squares gradient over 10^7 elements
(examples/dask_regression.py: 10^6 rows of 10 columns in 10 row chunks),
on a LocalCluster of 2 worker processes against NumPy in this process.

The data are made and persisted on the workers first; what is timed is the
gradient: building the graph, running it, and bringing back the loss and
the 10 gradient entries. NumPy gets the same arrays in memory.
"""

from __future__ import annotations

import runpy
import statistics
import time

from .peers import Skip, need
from .scalar import ROOT

ROWS = 1_000_000


def _median_time(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(quick: bool = False) -> list[str]:
    try:
        need("dask")
        distributed = need("dask.distributed")
    except Skip as exc:
        return [f"skipped: {exc}"]
    import numpy as np

    import stagegen

    example = runpy.run_path(str(ROOT / "examples" / "dask_regression.py"))
    rows = ROWS // 10 if quick else ROWS
    repeats = 2 if quick else 7
    array = stagegen.load(example["LOSS"], backend="array", wrt="w")
    numpy_module = stagegen.load(example["LOSS"], backend="numpy", wrt="w")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        w, X, y = example["data"](rows)
        X, y = client.persist([X, y])
        distributed.wait([X, y])
        Xn, yn = client.compute([X, y], sync=True)
        loss, (dw,) = array.value_and_grad(w, X, y)
        tasks = len(dict(loss.__dask_graph__()) | dict(dw.__dask_graph__()))

        def on_dask():
            loss, (dw,) = array.value_and_grad(w, X, y)
            return client.compute([loss, dw], sync=True)

        timings = {
            "numpy backend, one process": _median_time(
                lambda: numpy_module.value_and_grad(w, Xn, yn), repeats
            ),
            "array backend on NumPy, one process": _median_time(
                lambda: array.value_and_grad(w, Xn, yn), repeats
            ),
            "array backend on Dask, 2 worker processes": _median_time(on_dask, repeats),
        }
        got, want = on_dask(), numpy_module.value_and_grad(w, Xn, yn)
        assert np.allclose(got[0], want[0], rtol=1e-12) and np.allclose(got[1], want[1][0], rtol=1e-9)
    finally:
        client.close()
        cluster.close()
    reference = timings["numpy backend, one process"]
    lines = [
        f"{rows:,} rows of 10 (x 10 chunks), median of {repeats}; the graph has {tasks} tasks",
        "",
        "| candidate | ms/call | / numpy backend |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {t * 1e3:.1f} | {t / reference:.2f} |" for name, t in timings.items()]
    dask_time = timings["array backend on Dask, 2 worker processes"]
    lines += ["", f"time per task on the cluster: {dask_time / tasks * 1e3:.2f} ms"]
    return lines

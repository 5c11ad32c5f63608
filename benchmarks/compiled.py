"""What the numba backend's compilation costs, and what its cache saves.

The notes' function is generated with ``stagegen examples/notes.txt --backend
numba -o FILE`` into a temporary folder, then run in two new processes one
after the other, with NUMBA_CACHE_DIR in that folder: the first compiles (and
writes the cache), the second loads what the first wrote. Each process times
importing the module, its first call on floats (value_and_grad(3.0, -4.0):
the scalar listing) and its first call on two arrays of 10^6 elements (the
fused loop). Times are wall-clock seconds of one process each, so they move
with the load of the machine; the cache's effect is the ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .peers import Skip, need

ROOT = Path(__file__).resolve().parent.parent

# run in each process: import, first call on floats, first call on arrays
_PROCESS = """
import json, sys, time
import numpy
start = time.perf_counter()
import notes_numba as m
imported = time.perf_counter()
m.value_and_grad(3.0, -4.0)
floats = time.perf_counter()
x = numpy.random.default_rng(7).standard_normal(SIZE)
start_arrays = time.perf_counter()
m.value_and_grad(x, x[::-1].copy())
arrays = time.perf_counter()
stats = m.value_and_grad.stats
print(json.dumps({
    "import": imported - start,
    "floats": floats - imported,
    "arrays": arrays - start_arrays,
    "hits": sum(stats.cache_hits.values()),
}))
"""


def _process(folder: Path, size: int) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS.replace("SIZE", str(size))],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


def run(quick: bool = False) -> list[str]:
    try:
        need("numba")
    except Skip as exc:
        return [f"numba: {exc}"]
    size = 10_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "stagegen", "examples/notes.txt", "--backend", "numba"]
            + ["-o", str(folder / "notes_numba.py")],
            cwd=ROOT,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        first, later = _process(folder, size), _process(folder, size)
    rows = [
        ("import the module", "import"),
        ("first call on floats", "floats"),
        (f"first call on two arrays of {size:,} elements", "arrays"),
    ]
    lines = [
        "| step | first process (compiles, writes the cache), s | later process (reads it), s |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {label} | {first[key]:.3f} | {later[key]:.3f} |" for label, key in rows]
    lines += [
        "",
        f"value_and_grad's signatures read from the cache: {first['hits']} in the first "
        f"process, {later['hits']} in the later one.",
    ]
    return lines

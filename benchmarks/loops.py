"""The numba backend's loops over arrays, and what its cache saves a later process.

1. The notes' function on two float64 arrays of 10^6 elements (workload 4's
   inputs): hand NumPy (value and both gradients), the numpy backend's
   value_and_grad and its forward then backward, the numba backend's
   value_and_grad (one loop) and its forward then backward (two loops: forward
   writes the value and six cached stages, backward reads them and dout and
   writes the gradients), each of those two alone; and hand NumPy's value
   alone. dout is an array of ones, so every candidate computes the same
   gradients. Timed in a new process that runs nothing else (NumPy's glibc
   malloc regime where large freed blocks go back to the system: workload 4's
   "NumPy-only process"), every candidate in that process, round robin.
2. The 64-step recurrence (benchmarks/recurrence.py) at n = 16, 32, 64, 128,
   generated with ``stagegen FILE --backend numba --style compact -o FILE``
   into a temporary folder, then run in two new processes one after the
   other with NUMBA_CACHE_DIR in that folder: each times importing the module
   and its first call of value_and_grad on floats; the first process compiles
   and writes numba's cache, the later one reads it. Wall-clock seconds of
   one process each: they move with the load of the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stagegen

from . import recurrence
from .arrays import NOTES_LINES, notes_hand_value, notes_listing, stagegen_numba, stagegen_numpy
from .compare import table
from .peers import Skip, need
from .timing import in_fresh_process, per_call

ROOT = Path(__file__).resolve().parent.parent

NOTES = {
    "stagegen numpy compact": "value_and_grad, one function",
    "stagegen numpy compact, forward + backward": "backward(ones, forward(x, y)[1])",
    "stagegen numba, value_and_grad": "one prange loop (_value_and_grad_loop)",
    "stagegen numba, forward + backward": "two prange loops: the cache is six arrays",
    "stagegen numba, forward alone": "value and cache; checked against the value",
    "stagegen numba, backward alone": "given forward's cache (made before timing)",
}


def builders(x, y) -> dict:
    np = need("numpy")
    ones = np.ones_like(x)

    def numpy_module():
        return stagegen_numpy(NOTES_LINES, style="compact")

    def numpy_pair():
        module = numpy_module()
        return lambda: (lambda value, cache: (value, module.backward(ones, cache)))(*module.forward(x, y))

    def numba_module():
        module = stagegen_numba(NOTES_LINES, x, y)
        module.backward(ones, module.forward(x, y)[1])  # compiled before timing
        return module

    def numba_pair():
        module = numba_module()
        return lambda: (lambda value, cache: (value, module.backward(ones, cache)))(*module.forward(x, y))

    def numba_backward():
        module = numba_module()
        value, cache = module.forward(x, y)
        return lambda: (value, module.backward(ones, cache))

    def numba_vg():
        module = numba_module()
        return lambda: module.value_and_grad(x, y)

    def numba_forward():
        module = numba_module()
        return lambda: module.forward(x, y)

    return {
        "hand NumPy": lambda: lambda: notes_listing(x, y),
        "value only: hand NumPy": lambda: lambda: notes_hand_value(x, y),
        "stagegen numpy compact": lambda: (lambda m: lambda: m.value_and_grad(x, y))(numpy_module()),
        "stagegen numpy compact, forward + backward": numpy_pair,
        "stagegen numba, value_and_grad": numba_vg,
        "stagegen numba, forward + backward": numba_pair,
        "stagegen numba, forward alone": numba_forward,
        "stagegen numba, backward alone": numba_backward,
    }


def arrays_table(quick: bool) -> tuple[list[str], dict]:
    """Table 1 in this process: its lines and ratios (to hand NumPy)."""
    np = need("numpy")
    rng = np.random.default_rng(7)
    size = 10_000 if quick else 1_000_000
    x, y = rng.standard_normal(size), rng.standard_normal(size)
    seconds, repeats = (0.005, 3) if quick else (0.05, 21)
    value = ("value only: hand NumPy", lambda out: out)
    checks = {
        "value only: hand NumPy": value,
        "stagegen numba, forward alone": ("value only: hand NumPy", lambda out: out[0]),
    }
    lines, results, rel = table(
        builders(x, y),
        (),
        "hand NumPy",
        seconds=seconds,
        repeats=repeats,
        unit="ms",
        notes=NOTES,
        checks=checks,
    )
    lines += ["", traffic(x, results)]
    return [
        f"Elementwise, {size:,} float64 elements per input, in a process that runs only NumPy:",
        "",
        *lines,
    ], rel


def traffic(x, results) -> str:
    """Bytes each numba candidate moves (arrays of x's size read or written), in
    GB/s at its median, against np.copyto of x's bytes (read + write)."""
    np = need("numpy")
    target = np.empty_like(x)
    per_call(lambda: np.copyto(target, x), (), 10)
    copy = min(per_call(lambda: np.copyto(target, x), (), 10) for _ in range(21))
    parts = [f"np.copyto of {x.nbytes / 1e6:g} MB (read + write): {2 * x.nbytes / copy / 1e9:.1f} GB/s"]
    # forward: reads x, y, writes f and six cached stages; backward: reads six
    # cached stages and dout, writes dx, dy; value_and_grad: reads x, y, writes f, dx, dy
    for name, arrays in (
        ("stagegen numba, value_and_grad", 5),
        ("stagegen numba, forward + backward", 18),
        ("stagegen numba, forward alone", 9),
        ("stagegen numba, backward alone", 9),
    ):
        if name in results:
            moved = arrays * x.nbytes / results[name].median
            label = name.removeprefix("stagegen numba, ")
            parts.append(f"{label}: {arrays} × {x.nbytes / 1e6:g} MB at {moved / 1e9:.1f} GB/s")
    return "; ".join(parts) + " (medians)."


# run in each process: import the module, its first call of value_and_grad on floats
_PROCESS = """
import json, time
start = time.perf_counter()
import recurrence_numba as m
imported = time.perf_counter()
m.value_and_grad(0.5, 0.5)
called = time.perf_counter()
stats = m.value_and_grad.stats
print(json.dumps({"import": imported - start, "call": called - imported,
                  "hits": sum(stats.cache_hits.values())}))
"""


def _process(folder: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


def import_times(ns) -> list[str]:
    """Table 2: the recurrence's module on disk, first process and later process, per n."""
    try:
        need("numba")
    except Skip as exc:
        return [f"numba: {exc}"]
    lines = [
        "| n | stages | generate and write, s | first process: import, s | first call (compile, "
        "write the cache), s | later process: import, s | first call (read the cache), s "
        "| later / first, import + call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in ns:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "recurrence.txt").write_text(recurrence.source(n))
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "stagegen",
                    "recurrence.txt",
                    "--backend",
                    "numba",
                    "--style",
                    "compact",
                ]
                + ["-o", "recurrence_numba.py"],
                cwd=folder,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            generated = time.perf_counter() - start
            first, later = _process(folder), _process(folder)
        if first["hits"] != 0 or later["hits"] != 1:
            raise RuntimeError(f"numba's cache was not used as expected: {first}, {later}")
        stages = len(stagegen.build(recurrence.source(n)).graph.stages)
        ratio = (later["import"] + later["call"]) / (first["import"] + first["call"])
        lines.append(
            f"| {n} | {stages} | {generated:.2f} | {first['import']:.2f} | {first['call']:.2f} "
            f"| {later['import']:.2f} | {later['call']:.2f} | {ratio:.3f} |"
        )
    return lines


def run(quick: bool = False) -> tuple[list[str], dict]:
    lines, rel = in_fresh_process("loops", quick)
    lines += ["", "The 64-step recurrence's module on disk, a first and a later process:", ""]
    lines += import_times((4, 8) if quick else recurrence.COMPILE_NS)
    return lines, rel


if __name__ == "__main__":  # table 1, as JSON, for in_fresh_process
    lines, rel = arrays_table("--quick" in sys.argv[1:])
    print(json.dumps({"lines": lines, "ratios": rel}))

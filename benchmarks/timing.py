"""Interleaved timing: candidates measured in one process, round robin, medians."""

from __future__ import annotations

import gc
import math
import platform
import statistics
import time
from dataclasses import dataclass


@dataclass
class Timing:
    name: str
    times: list[float]  # seconds per call, one entry per repeat

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def per_call(fn, args, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - start) / number


def calibrate(fn, args, seconds: float) -> int:
    """How many calls of `fn` take about `seconds` (at least one)."""
    number, elapsed = 1, 0.0
    while True:
        elapsed = per_call(fn, args, number) * number
        if elapsed >= seconds / 10 or number >= 1 << 24:
            break
        number *= 10
    return max(1, round(number * seconds / max(elapsed, 1e-9)))


def interleaved(candidates: dict, args, number, repeats: int) -> dict[str, Timing]:
    """Each repeat runs every candidate once, in rotating order, so drift on a
    shared machine hits all candidates alike.

    `number` is the calls per repeat: one count for all, or a dict per candidate
    (slow and fast candidates each get a comparable slice of time).
    """
    numbers = number if isinstance(number, dict) else dict.fromkeys(candidates, number)
    for name, fn in candidates.items():  # warm up
        per_call(fn, args, max(1, numbers[name] // 10))
    results = {name: Timing(name, []) for name in candidates}
    names = list(candidates)
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                results[name].times.append(per_call(candidates[name], args, numbers[name]))
    finally:
        gc.enable()
    return results


def ratios(results: dict[str, Timing], reference: str) -> dict[str, tuple[float, float, float]]:
    """Per candidate: (median, min, max) of its time / the reference's, repeat by repeat."""
    ref = results[reference].times
    out = {}
    for name, timing in results.items():
        r = [t / s for t, s in zip(timing.times, ref, strict=True)]
        out[name] = (statistics.median(r), min(r), max(r))
    return out


def slope(xs, ys) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def exponent(ns, values) -> float:
    """p of the log-log least-squares fit values ~ c * n**p."""
    return slope([math.log(n) for n in ns], [math.log(v) for v in values])


def growth_factor(ns, values) -> float:
    """r of the log-linear least-squares fit values ~ c * r**n (exponential growth)."""
    return math.exp(slope(list(ns), [math.log(v) for v in values]))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import os

        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = None
    return (
        f"{cpu}{f', {cores} cores' if cores else ''}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); {platform.system()}"
    )


def in_fresh_process(module: str, quick: bool) -> tuple[list[str], dict]:
    """A table that `python -m benchmarks.<module>` measures in a new process
    (printing {"lines": ..., "ratios": ...} as JSON), and its ratios."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *(["--quick"] if quick else [])],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    result = json.loads(done.stdout)
    return result["lines"], {name: tuple(r) for name, r in result["ratios"].items()}

"""Interleaved timing: candidates measured in one process, round robin, medians."""

from __future__ import annotations

import gc
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


def interleaved(candidates: dict, args, number: int, repeats: int) -> dict[str, Timing]:
    """Each repeat runs every candidate once, in rotating order, so drift on a
    shared machine hits all candidates alike."""
    for fn in candidates.values():  # warm up
        per_call(fn, args, max(1, number // 10))
    results = {name: Timing(name, []) for name in candidates}
    names = list(candidates)
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                results[name].times.append(per_call(candidates[name], args, number))
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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}; Python {platform.python_version()} ({platform.python_implementation()}); {platform.system()}"
    )

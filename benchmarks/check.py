"""How long `--check` takes against the size of the program.

Two programs: the named-stage file of `benchmarks/scale.py` (products, sines,
sums reaching back, sigmoids, differences, tanhs) and the notes' function
composed n times of `benchmarks/growth.py` (a_{k+1} = (a_k + σ(b_k)) /
(σ(a_k) + (a_k + b_k)²), b_{k+1} = a_k·b_k − b_k, output a_n). Each is built
once and checked with `stagegen.verify` at 20 points (the CLI's default);
the time is the check's alone, best of `repeats` runs, CPU (process) time.
The exponent is the slope of log(time) against log(stages); 1.0 is linear.
"""

from __future__ import annotations

import time

import stagegen

from .growth import staged_text
from .scale import exponent, source

POINTS = 20


def _seconds(build, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        report = stagegen.verify(build, points=POINTS)
        best = min(best, time.process_time() - start)
        if not report.ok:
            raise AssertionError(report.table())
    return best


def run(quick: bool = False) -> list[str]:
    programs = {
        "named stages (scale.py)": (source, [100, 200, 400] if quick else [250, 500, 1_000, 2_000]),
        "notes composed n times (growth.py)": (staged_text, [10, 20, 40] if quick else [25, 50, 100, 200]),
    }
    lines = ["| program | n | stages | check (s) | ms / stage |", "| --- | --- | --- | --- | --- |"]
    fits = []
    for name, (make, sizes) in programs.items():
        stages, seconds = [], []
        for n in sizes:
            build = stagegen.build(make(n))
            stages.append(len(build.graph.stages))
            seconds.append(_seconds(build, 1 if quick else 2))
            per_stage = seconds[-1] / stages[-1] * 1e3
            lines.append(f"| {name} | {n:,} | {stages[-1]:,} | {seconds[-1]:.2f} | {per_stage:.2f} |")
        fits.append(f"{name} {exponent(stages, seconds):.2f}")
    lines += ["", "fitted exponent (log-log least squares): " + ", ".join(fits)]
    return lines

"""One comparison table: build each candidate, check its result, time them interleaved."""

from __future__ import annotations

import math

from .peers import Skip
from .timing import calibrate, interleaved, ratios


def flat(result) -> list:
    """A result's numbers (floats or arrays) in order, nesting removed."""
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in flat(item)]
    return [result]


def mismatch(got, want) -> float:
    """Largest relative difference between two results (inf on a shape mismatch)."""
    import numpy as np  # only array workloads have arrays; scalars go through float()

    got, want = flat(got), flat(want)
    if len(got) != len(want):
        return math.inf
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g, dtype=float), np.asarray(w, dtype=float)
        if g.shape != w.shape:
            return math.inf
        scale = np.maximum(np.abs(w), np.max(np.abs(w), initial=0.0) * 1e-6) + 1e-300
        worst = max(worst, float(np.max(np.abs(g - w) / scale, initial=0.0)))
    return worst


def table(
    builders: dict,
    args,
    reference: str,
    *,
    seconds: float,
    repeats: int,
    unit: str = "µs",
    tolerance: float = 1e-9,
    notes: dict | None = None,
    checks: dict | None = None,
) -> tuple[list[str], dict, dict]:
    """Markdown rows (time per call; time / reference's: median, min–max), timings, ratios.

    `builders` maps a candidate's name to a function returning the callable
    (or raising Skip). Each result is checked against the reference's before
    anything is timed; a wrong one is reported, not timed. `checks` maps a
    candidate to (the candidate whose result it must equal, a projection of
    its own result), for candidates that compute something else (a value only).
    """
    assert next(iter(builders)) == reference, "the reference is built (and checked against) first"
    scale = {"µs": 1e6, "ms": 1e3, "s": 1.0}[unit]
    notes = notes or {}
    checks = checks or {}
    candidates, skipped, outputs = {}, {}, {}
    for name, build in builders.items():
        try:
            fn = build()
            outputs[name] = fn(*args)
        except Skip as exc:
            skipped[name] = str(exc)
            continue
        against, project = checks.get(name, (reference, lambda out: out))
        if name != against and (err := mismatch(project(outputs[name]), outputs[against])) > tolerance:
            skipped[name] = f"wrong result (relative difference {err:.1e}), not timed"
            continue
        candidates[name] = fn
    numbers = {name: calibrate(fn, args, seconds) for name, fn in candidates.items()}
    results = interleaved(candidates, args, numbers, repeats)
    rel = ratios(results, reference)
    lines = [
        f"| candidate | {unit}/call | / {reference}, median | min–max over {repeats} repeats | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in builders:
        note = notes.get(name, "")
        if name in skipped:
            lines.append(f"| {name} | {skipped[name]} | | | {note} |")
            continue
        median, low, high = rel[name]
        t = results[name].median * scale
        lines.append(f"| {name} | {number(t)} | {median:.3f} | {low:.3f}–{high:.3f} | {note} |")
    return lines, results, rel


def number(value: float) -> str:
    """Three significant figures, without exponents for table-sized values."""
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"

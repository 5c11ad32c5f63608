"""erf, erfc, lgamma and digamma on 10^6 elements: the numpy backend's SciPy
path against its fallback without SciPy (the functions a module defines for
that case), and the per-element `np.vectorize(math.erf)` the fallback replaced.

Candidates run in one process, round robin (timing.interleaved); each table's
ratios are to SciPy's function, repeat by repeat. Every candidate's result is
checked against SciPy's first (within 1e-12 of it, or of 1 near a zero).
"""

from __future__ import annotations

import math

import numpy as np

import stagegen

from .peers import Skip, need
from .timing import interleaved, ratios

N = 1_000_000
SOURCE = "x: vector(n)\nf = sum(erf(x) + erfc(x) + lgamma(x * x + 0.5))\n"


def _candidates(special, module) -> dict[str, tuple[dict, np.ndarray]]:
    rng = np.random.default_rng(16)
    normal = rng.uniform(-6.0, 6.0, N)
    positive = rng.uniform(0.01, 20.0, N)
    return {
        "erf": (
            {
                "scipy.special.erf": special.erf,
                "stagegen fallback (vectorised NumPy)": module._erf_array,
                "np.vectorize(math.erf)": np.vectorize(math.erf, otypes=[float]),
            },
            normal,
        ),
        "erfc": (
            {
                "scipy.special.erfc": special.erfc,
                "stagegen fallback (vectorised NumPy)": module._erfc_array,
                "np.vectorize(math.erfc)": np.vectorize(math.erfc, otypes=[float]),
            },
            normal,
        ),
        "lgamma": (
            {
                "scipy.special.gammaln": special.gammaln,
                "stagegen fallback (vectorised NumPy)": module._lgamma_array,
            },
            positive,
        ),
        "digamma": (
            {
                "scipy.special.psi": special.psi,
                "stagegen fallback (vectorised NumPy)": module._digamma_array,
            },
            positive,
        ),
    }


def run(quick: bool) -> list[str]:
    try:
        special = need("scipy.special")
    except Skip as skip:
        return [f"skipped: {skip}"]
    module = stagegen.load(SOURCE, backend="numpy")
    lines = [
        "| function | candidate | ms per call (median) | ratio to SciPy, median (min–max) |",
        "| --- | --- | --- | --- |",
    ]
    for name, (candidates, x) in _candidates(special, module).items():
        reference = next(iter(candidates))
        want = candidates[reference](x)
        for label, fn in candidates.items():
            got = fn(x)
            bad = ~(np.abs(got - want) <= 1e-12 * np.maximum(np.abs(want), 1.0))
            if bad.any():
                raise AssertionError(f"{label} differs from {reference} at {x[bad][:3]}")
        results = interleaved(candidates, (x,), 1, 3 if quick else 15)
        rel = ratios(results, reference)
        for label, timing in results.items():
            r = rel[label]
            lines.append(
                f"| {name} | {label} | {timing.median * 1e3:.1f} | {r[0]:.2f}× ({r[1]:.2f}–{r[2]:.2f}) |"
            )
    return lines

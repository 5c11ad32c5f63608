"""The cost of the entry checks: a module against the same module without them.

A function that takes the inputs first checks the declared ones' shapes
(`_check_shapes`, once per set of shapes) and the index inputs' dtype and
values (`_check_indexes`: a min and a max of each index array, every call).
Measured on three programs, each against the same module text with the check
calls removed: the notes' function declared over vectors of 10^6 elements,
the two-layer net of workload 6 at CS231n's sizes, and the softmax
classifier with integer labels (examples/arrays/classifier.txt) at CS231n's
sizes and at small ones, where a call's fixed costs weigh most.
"""

from __future__ import annotations

from pathlib import Path

import stagegen

from . import step
from .peers import need
from .timing import interleaved, ratios

ROOT = Path(__file__).resolve().parent.parent

NOTES = """\
x: vector(n)
y: vector(n)
""" + "\n".join(
    line
    for line in (ROOT / "examples" / "notes.txt").read_text().splitlines()
    if line and not line.startswith("#") and ":" not in line
)


def without_checks(text: str) -> str:
    """The module with its entry checks' calls removed (the helpers stay, unused)."""
    lines = text.splitlines()
    kept = [line for line in lines if not line.strip().startswith(("_check_shapes(", "_check_indexes("))]
    assert len(kept) < len(lines), "no entry check in the module"
    return "\n".join(kept) + "\n"


def cases(quick: bool) -> list[tuple[str, str, dict, tuple]]:
    """(label, source, generation options, arguments) per program measured."""
    np = need("numpy")
    rng = np.random.default_rng(9)
    n = 10_000 if quick else 1_000_000
    classifier = (ROOT / "examples" / "arrays" / "classifier.txt").read_text()

    def softmax_args(N, D, C):
        X, W = rng.uniform(-1, 1, (N, D)), 1e-3 * rng.standard_normal((D, C))
        return X, W, rng.integers(0, C, N), 0.5

    net = step.arguments(rng, 20 if quick else step.N)
    big = 50 if quick else 500
    return [
        (f"notes' function, vectors of {n:,}", NOTES, {}, (rng.standard_normal(n), rng.standard_normal(n))),
        (
            f"two-layer net, N={net[0].shape[0]}, D={step.D}, H={step.H}, C={step.C}",
            step.SOURCE,
            {"wrt": "W1,b1,W2,b2"},
            net,
        ),
        (f"classifier, N={big}, D=3073, C=10", classifier, {}, softmax_args(big, 3073, 10)),
        ("classifier, N=8, D=16, C=4", classifier, {}, softmax_args(8, 16, 4)),
    ]


def run(quick: bool = False) -> list[str]:
    np = need("numpy")
    repeats = 5 if quick else 41
    lines = [
        "| program | without checks | with checks | with / without, median | min–max over repeats |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, source, options, args in cases(quick):
        text = stagegen.generate(source, backend="numpy", style="compact", **options)
        plain = stagegen.module_from_text(without_checks(text), "plain")
        checked = stagegen.module_from_text(text, "checked")
        got, expected = checked.value_and_grad(*args), plain.value_and_grad(*args)
        assert np.array_equal(got[0], expected[0]) and all(
            np.array_equal(a, b) for a, b in zip(got[1], expected[1], strict=True)
        )
        one = min(_seconds(plain.value_and_grad, args) for _ in range(3))
        number = max(1, round((0.002 if quick else 0.05) / one))
        results = interleaved(
            {"without": plain.value_and_grad, "with": checked.value_and_grad}, args, number, repeats
        )
        median, low, high = ratios(results, "without")["with"]
        plain_t, checked_t = (_shown(results[k].median) for k in ("without", "with"))
        lines.append(f"| {label} | {plain_t} | {checked_t} | {median:.3f} | {low:.3f}–{high:.3f} |")
    return lines


def _seconds(fn, args) -> float:
    import time

    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _shown(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"

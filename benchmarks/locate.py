"""The cost of locating errors: the notes' module with and without its try block.

Every generated function body sits in one ``try`` whose handler names the
failing stage. CPython 3.11+ makes a try block free until something raises;
this measures that claim on the notes' function, both styles, against the
same module with the try and except lines removed.
"""

from __future__ import annotations

from pathlib import Path

import stagegen

from .timing import interleaved, ratios

ROOT = Path(__file__).resolve().parent.parent
POINT = (3.0, -4.0)


def without_try(text: str) -> str:
    """The module with each function's try/except removed and its body dedented."""
    out, inside, skip = [], False, 0
    for line in text.splitlines():
        if skip:
            skip -= 1
            continue
        if line == "    try:":
            inside = True
            continue
        if inside and line.startswith("    except (ArithmeticError, ValueError, TypeError) as exc:"):
            inside, skip = False, 2
            continue
        out.append(line[4:] if inside and line.startswith("        ") else line)
    return "\n".join(out) + "\n"


def run(quick: bool = False) -> list[str]:
    source = (ROOT / "examples" / "notes.txt").read_text()
    number, repeats = (2_000, 5) if quick else (20_000, 61)
    lines = [
        "| style | without try (µs/call) | with try (µs/call) | with / without, median "
        "| min–max over repeats |",
        "| --- | --- | --- | --- | --- |",
    ]
    for style in ("seed", "compact"):
        text = stagegen.generate(source, style=style)
        plain = stagegen.module_from_text(without_try(text), "plain")
        located = stagegen.module_from_text(text, "located")
        assert plain.value_and_grad(*POINT) == located.value_and_grad(*POINT)
        results = interleaved(
            {"without": plain.value_and_grad, "with": located.value_and_grad}, POINT, number, repeats
        )
        median, low, high = ratios(results, "without")["with"]
        plain_us, located_us = (results[k].median * 1e6 for k in ("without", "with"))
        lines.append(f"| {style} | {plain_us:.2f} | {located_us:.2f} | {median:.3f} | {low:.3f}–{high:.3f} |")
    return lines

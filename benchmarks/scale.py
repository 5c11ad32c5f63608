"""Generation time and generated-code size against the number of stages.

The workload is a file of named stages, one stage per line, cycling through a
product, a sine, a sum that reaches back to stage k/2 (so adjoints fork and
accumulate), a sigmoid (a grouped gate with a long emitted line), a difference
and a tanh. Every stage reaches the output, so n lines are n stages.

Each size is generated `repeats` times in this process, SymPy's cache cleared
before each (after one small warm-up run, so imports are not counted);
the table shows the best wall time and the best CPU time (process time: on a
shared machine it moves much less than wall time). The exponent is the slope
of a least-squares line through (log n, log time); 1.0 is linear.
"""

from __future__ import annotations

import gc
import math
import time

from sympy.core.cache import clear_cache

import stagegen

FORMS = (
    "t{k} = t{p} * x",
    "t{k} = sin(t{p})",
    "t{k} = t{p} + t{h}",
    "t{k} = sigmoid(t{p})",
    "t{k} = t{p} - y",
    "t{k} = tanh(t{p})",
)


def source(n: int) -> str:
    """A file of exactly `n` named stages, all of which reach the output."""
    lines = ["t0 = x * y"]
    lines += [FORMS[k % len(FORMS)].format(k=k, p=k - 1, h=k // 2) for k in range(1, n)]
    return "\n".join(lines) + "\n"


def exponent(sizes: list[int], values: list[float]) -> float:
    """The least-squares slope of log(value) against log(size)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def measure(n: int, repeats: int) -> dict:
    text = source(n)
    walls, cpus, out = [], [], ""
    for _ in range(repeats):
        clear_cache()  # SymPy's cache would serve a repeat the objects of the run before
        wall, cpu = time.perf_counter(), time.process_time()
        out = stagegen.generate(text)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "n": n,
        "wall": min(walls),
        "cpu": min(cpus),
        "bytes": len(out.encode("utf-8")),
        "lines": out.count("\n"),
    }


def passes(n: int) -> dict[str, float]:
    """CPU seconds of each pass on `source(n)`, the cycle collector paused as `build` does."""
    from stagegen.differentiate import differentiate
    from stagegen.lower import lower
    from stagegen.names import assign
    from stagegen.options import Options
    from stagegen.parse import parse
    from stagegen.plan import plan
    from stagegen.render import render

    clear_cache()
    times, clock = {}, time.process_time
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        program = parse(source(n))
        times["parse"], start = clock() - start, clock()
        graph = lower(program)
        times["lower"], start = clock() - start, clock()
        backward = differentiate(graph)
        times["differentiate"], start = clock() - start, clock()
        names = assign(graph, backward)
        times["names"], start = clock() - start, clock()
        listing = plan(graph, backward, names, Options())
        times["plan"], start = clock() - start, clock()
        render(listing, program, graph, Options())
        times["render"] = clock() - start
    finally:
        if enabled:
            gc.enable()
    return times


def run(quick: bool = False) -> list[str]:
    sizes = [100, 1_000, 10_000] if quick else [100, 1_000, 10_000, 100_000]
    stagegen.generate(source(200))  # warm up: imports, templates, black
    rows = [measure(n, 1 if quick or n >= 100_000 else 3) for n in sizes]
    lines = [
        "| stages | wall (s) | CPU (s) | CPU µs / stage | module size (bytes) | bytes / stage | lines |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['wall']:.3f} | {r['cpu']:.3f} | {r['cpu'] / r['n'] * 1e6:.0f} | "
            f"{r['bytes']:,} | {r['bytes'] / r['n']:.0f} | {r['lines']:,} |"
        )
    ns = [r["n"] for r in rows]
    lines.append("")
    lines.append(
        f"fitted exponent (log-log least squares over {ns[0]:,} ... {ns[-1]:,}): "
        f"wall {exponent(ns, [r['wall'] for r in rows]):.3f}, "
        f"CPU {exponent(ns, [r['cpu'] for r in rows]):.3f}, "
        f"size {exponent(ns, [r['bytes'] for r in rows]):.3f}"
    )
    lines += [
        "",
        "CPU seconds per pass (render: printing, the template, black on long lines, the compile() check):",
        "",
        "| stages | parse | lower | differentiate | names | plan | render | total |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in sizes[-2:]:
        t = passes(n)
        lines.append(
            f"| {n:,} | " + " | ".join(f"{v:.2f}" for v in t.values()) + f" | {sum(t.values()):.2f} |"
        )
    return lines

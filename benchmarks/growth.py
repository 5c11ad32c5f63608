"""Workload 3: growth. The notes' function composed n times, with sharing.

    a_0 = x, b_0 = y
    a_{k+1} = (a_k + σ(b_k)) / (σ(a_k) + (a_k + b_k)²)
    b_{k+1} = a_k·b_k − b_k
    f_n(x, y) = a_n

For each n: the time to obtain gradient code, its size, and the time per call
of value and gradient at (3, -4). f_1 is the notes' function.

- stagegen: `generate` of the staged text (`staged_text(n)`: one named stage
  per a_k and b_k, as a user writes a long computation), seed and compact;
  also `generate` of the same function as a SymPy object, run under a time cap.
- SymPy: `diff` with respect to x and y, `cse` of value and both derivatives,
  `lambdify` of the cse'd result (module "math"); under a time cap, in a child
  process, since the expression swell makes it slow.
- JAX: trace and compile `jax.jit(jax.value_and_grad(f_n, argnums=(0, 1)))`.

Sizes: stagegen, the generated module's lines and characters (docstring and
every function included) and `value_and_grad`'s lines; SymPy, the lambdified
function's lines and characters and `count_ops` of the cse'd output; JAX, the
number of equations in the jaxpr of value_and_grad.
"""

from __future__ import annotations

import math
import multiprocessing
import time

import stagegen

from .compare import number, table
from .peers import Skip, need
from .timing import exponent, growth_factor

POINT = (3.0, -4.0)


def staged_text(n: int) -> str:
    lines = [f"# f_{n}: the notes' function composed {n} times", "x: scalar", "y: scalar"]
    a, b = "x", "y"
    for k in range(1, n + 1):
        out = "f" if k == n else f"a{k}"
        lines.append(f"{out} = ({a} + sigmoid({b})) / (sigmoid({a}) + ({a} + {b})**2)")
        if k < n:
            lines.append(f"b{k} = {a} * {b} - {b}")
        a, b = out, f"b{k}"
    return "\n".join(lines) + "\n"


def formula(np, x, y, n: int, sigmoid=None):
    """f_n over a math-like namespace (SymPy, jax.numpy), sharing a_k and b_k."""

    def sig(t):
        return sigmoid(t) if sigmoid else 1 / (1 + np.exp(-t))

    a, b = x, y
    for _ in range(n):
        a, b = (a + sig(b)) / (sig(a) + (a + b) ** 2), a * b - b
    return a


def reference(n: int) -> float:
    """f_n(3, -4) in plain floats, for checking every candidate's value."""
    return formula(math, *POINT, n)


def stagegen_generation(n: int, style: str) -> tuple[float, float, str]:
    """(seconds, of which in black.format_str, module text) of one generation."""
    import black

    spent = [0.0]
    original = black.format_str

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    text = staged_text(n)
    black.format_str = timed
    try:
        start = time.perf_counter()
        module = stagegen.generate(text, style=style)
        seconds = time.perf_counter() - start
    finally:
        black.format_str = original
    return seconds, spent[0], module


def function_lines(module: str, name: str) -> int:
    body = module.split(f"\ndef {name}(", 1)[1]
    return 1 + body.split("\n\n\n", 1)[0].count("\n")


# Child-process tasks (run under a cap): each returns a dict for one n.
def sympy_task(n: int) -> dict:
    import sympy as sp

    x, y = sp.symbols("x y")
    f = formula(sp, x, y, n)
    start = time.perf_counter()
    grads = [sp.diff(f, x), sp.diff(f, y)]
    replacements, reduced = sp.cse([f, *grads], order="canonical")
    fn = sp.lambdify((x, y), tuple(reduced), modules="math", cse=lambda e: (replacements, e))
    seconds = time.perf_counter() - start
    import inspect

    source = inspect.getsource(fn)
    ops = sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced)
    return {"seconds": seconds, "source": source, "ops": ops}


def stagegen_sympy_task(n: int) -> dict:
    import sympy as sp

    x, y = sp.symbols("x y")
    f = formula(sp, x, y, n, sigmoid=stagegen.sigmoid)
    start = time.perf_counter()
    module = stagegen.generate(f, inputs=[x, y], style="compact")
    return {"seconds": time.perf_counter() - start, "chars": len(module)}


def _child(task, ns, conn):
    task(1)  # warm up: lazy imports and first-call caches are not generation time
    for n in ns:
        conn.send((n, task(n)))
    conn.close()


def capped(task, ns, cap: float) -> tuple[dict, int | None]:
    """task(n) for n in ns, in order, in a child process, until one takes over `cap` s.

    Returns {n: result} and the n it was stopped at (None if it finished).
    """
    context = multiprocessing.get_context("spawn")  # never fork a process that runs JAX
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(task, list(ns), child), daemon=True)
    process.start()
    child.close()
    results = {}
    try:
        for n in ns:
            # the first result also waits for the child's imports
            if not parent.poll(cap + (20 if not results else 0)):
                return results, n
            try:
                got, result = parent.recv()
            except EOFError:
                return results, n
            results[got] = result
        return results, None
    finally:
        process.kill()
        process.join()


def lambdified(source: str):
    namespace: dict = {}
    exec("from math import *", namespace)
    exec(source, namespace)
    return namespace["_lambdifygenerated"]


def jax_compile(n: int):
    jax = need("jax")

    def f(x, y):
        return formula(jax.numpy, x, y, n)

    start = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(*POINT).compile()
    seconds = time.perf_counter() - start
    eqns = len(jax.make_jaxpr(jax.value_and_grad(f, argnums=(0, 1)))(*POINT).jaxpr.eqns)

    def call(x, y):
        value, grads = compiled(x, y)
        return float(value), tuple(float(g) for g in grads)

    return seconds, eqns, call


def fits(ns, values, tail: int = 8) -> str:
    """Log-log exponent over all n, and over n >= tail when there are enough."""
    text = f"{exponent(ns, values):.2f}"
    tail_ns = [n for n in ns if n >= tail]
    if len(tail_ns) >= 3:
        text += f" ({exponent(tail_ns, [v for n, v in zip(ns, values, strict=True) if n >= tail]):.2f})"
    return text


def run(quick: bool = False) -> tuple[list[str], dict]:
    if quick:
        ns, call_ns, repeats, cap = [1, 2, 4], [1, 4], 1, 5.0
    else:
        ns = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64]
        call_ns, repeats, cap = [1, 2, 4, 6, 8, 16, 32, 64], 3, 30.0

    # stagegen from the staged text, in this process; best of `repeats`
    stagegen_generation(1, "seed")  # warm up (lazy imports)
    generated = {}
    for n in ns:
        for style in ("seed", "compact"):
            runs = sorted(stagegen_generation(n, style) for _ in range(repeats))
            generated[n, style] = (runs[0][0], runs[0][2], runs[0][1])
    sympy, sympy_stop = capped(sympy_task, ns, cap)
    from_sympy, from_sympy_stop = capped(stagegen_sympy_task, ns, cap)
    jax = {}
    try:
        jax_compile(1)  # warm up: JAX's own start-up is not a compile of f_n
        for n in ns:
            jax[n] = jax_compile(n)
        jax_note = ""
    except Skip as exc:
        jax_note = str(exc)

    lines = [
        "Time to obtain gradient code (seconds; stagegen best of "
        f"{repeats}, others one run; a dash: stopped at the {cap:.0f} s cap or skipped):",
        "",
        "| n | stagegen seed | stagegen compact | of which black | stagegen compact from a SymPy object "
        "| SymPy diff + cse + lambdify | JAX trace + compile | SymPy / stagegen compact "
        "| JAX / stagegen compact |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in ns:
        g = generated[n, "compact"][0]
        s = sympy.get(n, {}).get("seconds")
        o = from_sympy.get(n, {}).get("seconds")
        j = jax[n][0] if n in jax else None
        cells = [
            number(generated[n, "seed"][0]),
            number(g),
            number(generated[n, "compact"][2]),
            number(o) if o is not None else "–",
            number(s) if s is not None else "–",
            number(j) if j is not None else "–",
            f"{s / g:.1f}" if s is not None else "–",
            f"{j / g:.1f}" if j is not None else "–",
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    stops = []
    if sympy_stop is not None:
        stops.append(f"SymPy stopped at n = {sympy_stop} (over {cap:.0f} s)")
    if from_sympy_stop is not None:
        stops.append(f"stagegen from a SymPy object stopped at n = {from_sympy_stop} (over {cap:.0f} s)")
    if jax_note:
        stops.append(f"JAX {jax_note}")
    if stops:
        lines += ["", "; ".join(stops) + "."]

    lines += [
        "",
        "Size of the gradient code:",
        "",
        "| n | stagegen seed lines | stagegen compact lines | compact chars | compact value_and_grad lines "
        "| SymPy lines | SymPy chars | SymPy count_ops | JAX jaxpr equations |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in ns:
        seed, compact = generated[n, "seed"][1], generated[n, "compact"][1]
        s = sympy.get(n)
        cells = [
            str(seed.count("\n")),
            str(compact.count("\n")),
            f"{len(compact):,}",
            str(function_lines(compact, "value_and_grad")),
            str(s["source"].count("\n")) if s else "–",
            f"{len(s['source']):,}" if s else "–",
            f"{s['ops']:,}" if s else "–",
            str(jax[n][1]) if n in jax else "–",
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")

    # growth exponents
    def series(values: dict):
        got = [n for n in ns if values.get(n) is not None]
        return got, [values[n] for n in got]

    rows = {
        "stagegen seed, generation time": {n: generated[n, "seed"][0] for n in ns},
        "stagegen compact, generation time": {n: generated[n, "compact"][0] for n in ns},
        "stagegen compact, generation time outside black": {
            n: generated[n, "compact"][0] - generated[n, "compact"][2] for n in ns
        },
        "stagegen compact, module lines": {n: generated[n, "compact"][1].count("\n") for n in ns},
        "stagegen compact, module chars": {n: len(generated[n, "compact"][1]) for n in ns},
        "stagegen compact from a SymPy object, generation time": {
            n: r["seconds"] for n, r in from_sympy.items()
        },
        "stagegen compact from a SymPy object, module chars": {n: r["chars"] for n, r in from_sympy.items()},
        "SymPy diff + cse + lambdify, time": {n: r["seconds"] for n, r in sympy.items()},
        "SymPy, lambdified chars": {n: len(r["source"]) for n, r in sympy.items()},
        "SymPy, count_ops of the cse'd output": {n: r["ops"] for n, r in sympy.items()},
        "JAX trace + compile, time": {n: r[0] for n, r in jax.items()},
        "JAX, jaxpr equations": {n: r[1] for n, r in jax.items()},
    }
    lines += [
        "",
        "Growth, least-squares fits: exponent p of c·n^p over the n measured (in brackets: over n ≥ 8), "
        "and the factor r per step of c·r^n:",
        "",
        "| quantity | n measured | p | r per step |",
        "| --- | --- | --- | --- |",
    ]
    exponents = {}
    for name, values in rows.items():
        got, vals = series(values)
        if len(got) < 2:
            lines.append(f"| {name} | {', '.join(map(str, got)) or '–'} | – | – |")
            continue
        exponents[name] = exponent(got, vals)
        span = f"{got[0]}–{got[-1]}"
        lines.append(f"| {name} | {span} | {fits(got, vals)} | {growth_factor(got, vals):.2f} |")

    # per call, interleaved at each n: stagegen compact is the reference
    seconds, call_repeats = (0.002, 3) if quick else (0.005, 41)
    lines += [
        "",
        f"Time per call of value and gradient at (3, -4), µs (median of {call_repeats} interleaved "
        "repeats; in brackets the median ratio to stagegen compact):",
        "",
        "| n | stagegen compact | stagegen seed | SymPy lambdify (cse) | JAX jit, floats in and out |",
        "| --- | --- | --- | --- | --- |",
    ]
    per_call = {}
    for n in call_ns:
        seed_m = stagegen.module_from_text(generated[n, "seed"][1], f"f_{n} seed")
        compact_m = stagegen.module_from_text(generated[n, "compact"][1], f"f_{n} compact")

        def missing(reason):
            def build():
                raise Skip(reason)

            return build

        builders = {
            "stagegen compact": lambda m=compact_m: m.value_and_grad,
            "stagegen seed": lambda m=seed_m: m.value_and_grad,
            "SymPy": (lambda s=sympy[n]["source"]: lambdified(s)) if n in sympy else missing("not obtained"),
            "JAX": (lambda j=jax[n][2]: j) if n in jax else missing(jax_note or "not obtained"),
        }
        _, results, rel = table(builders, POINT, "stagegen compact", seconds=seconds, repeats=call_repeats)
        assert abs(compact_m.value_and_grad(*POINT)[0] - reference(n)) <= 1e-12 * (1 + abs(reference(n)))
        cells = []
        for name in builders:
            if name in results:
                cells.append(f"{number(results[name].median * 1e6)} ({rel[name][0]:.2f})")
            else:
                cells.append("–")
        per_call[n] = {name: rel[name][0] for name in rel}
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines, {"exponents": exponents, "sympy_stop": sympy_stop, "per_call": per_call, "rows": rows}

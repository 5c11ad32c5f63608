"""The 64-step recurrence: per call against CasADi, and compile time against JAX's.

a_{k+1} = (a_k + σ(b_k)) / (σ(a_k) + (a_k + b_k)²), b_{k+1} = a_k − b_k², the
output a_n, at (a_0, b_0) = (0.5, 0.5); value and both gradients per call, on
Python floats (as workloads 1 and 2). The staged file names every a_k and b_k
(b_n, which a_n does not read, is not written).

Per call (n = 64, every candidate in one process, round robin): stagegen's math
backend (compact), its numba backend (compact, compiled before timing),
CasADi's SX Function and JAX's jit of value_and_grad (the Python loop traced,
so XLA sees the same straight line).

Compile time (wall-clock seconds of the first call, one process): stagegen's
generation (``stagegen.load`` of the numba backend, a module built in memory,
so no cache) and its first call (numba compiles value_and_grad for floats),
against JAX's first call of a fresh ``jax.jit(jax.value_and_grad(...))``
(tracing, lowering and XLA's compile). Each n is measured once: the times move
with the load of the machine.
"""

from __future__ import annotations

import time

import stagegen

from .compare import table
from .peers import Skip, need

POINT = (0.5, 0.5)
PER_CALL_N = 64
COMPILE_NS = (16, 32, 64, 128)
JAX_NS = (16, 32, 64)


def source(n: int) -> str:
    """The recurrence as a staged file: a0, b0 in, a{n} out."""
    lines = ["a0: scalar", "b0: scalar"]
    for k in range(n):
        lines.append(f"a{k + 1} = (a{k} + sigmoid(b{k})) / (sigmoid(a{k}) + (a{k} + b{k})**2)")
        if k + 1 < n:
            lines.append(f"b{k + 1} = a{k} - b{k}**2")
    return "\n".join(lines) + "\n"


def formula(np, a, b, n: int):
    """The same recurrence over a namespace (exp), for the tracing peers."""

    def sig(t):
        return 1 / (1 + np.exp(-t))

    for _ in range(n):
        a, b = (a + sig(b)) / (sig(a) + (a + b) ** 2), a - b**2
    return a


def stagegen_math(n: int):
    return stagegen.load(source(n), style="compact").value_and_grad


def stagegen_numba(n: int):
    need("numba")
    module = stagegen.load(source(n), style="compact", backend="numba")
    module.value_and_grad(*POINT)
    return module.value_and_grad


def casadi_function(n: int):
    casadi = need("casadi")
    a, b = casadi.SX.sym("a"), casadi.SX.sym("b")
    f = formula(casadi, a, b, n)
    fn = casadi.Function("f", [a, b], [f, casadi.gradient(f, a), casadi.gradient(f, b)])

    def call(a, b):
        value, da, db = fn(a, b)
        return float(value), (float(da), float(db))

    return call


def jax_function(n: int):
    jax = need("jax")
    fn = jax.jit(jax.value_and_grad(lambda a, b: formula(jax.numpy, a, b, n), argnums=(0, 1)))

    def call(a, b):
        value, (da, db) = fn(a, b)
        return float(value), (float(da), float(db))

    return call


NOTES = {
    "stagegen numba compact": "@numba.njit, floats in and out (numba's dispatch included)",
    "casadi SX Function": "SX Function (virtual machine), float() of each DM out",
    "jax.jit(value_and_grad)": "Python floats in, floats out (dispatch included)",
}


def builders(n: int) -> dict:
    return {
        "stagegen compact (math backend)": lambda: stagegen_math(n),
        "stagegen numba compact": lambda: stagegen_numba(n),
        "casadi SX Function": lambda: casadi_function(n),
        "jax.jit(value_and_grad)": lambda: jax_function(n),
    }


def compile_times(ns, jax_ns) -> list[str]:
    """Generation and first call of the numba module, and JAX's first call, per n."""
    lines = [
        "| n | stages | stagegen: generate, s | numba: first call (compile), s | stagegen total, s "
        "| JAX: first call (trace + compile), s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n in ns:
        start = time.perf_counter()
        try:
            need("numba")
            module = stagegen.load(source(n), style="compact", backend="numba")
            generated = time.perf_counter()
            module.value_and_grad(*POINT)
            called = time.perf_counter()
            ours = [f"{generated - start:.2f}", f"{called - generated:.2f}", f"{called - start:.2f}"]
        except Skip as exc:
            ours = [str(exc)] * 3
        stages = len(stagegen.build(source(n)).graph.stages)
        theirs = ""
        if n in jax_ns:
            try:
                fn = jax_function(n)
                start = time.perf_counter()
                fn(*POINT)
                theirs = f"{time.perf_counter() - start:.2f}"
            except Skip as exc:
                theirs = str(exc)
        lines.append(f"| {n} | {stages} | {' | '.join(ours)} | {theirs} |")
    return lines


def run(quick: bool = False) -> tuple[list[str], dict]:
    """The per-call table at n = 64 (8 when quick) and the compile-time table."""
    n = 8 if quick else PER_CALL_N
    seconds, repeats = (0.002, 5) if quick else (0.02, 41)
    lines, _, rel = table(
        builders(n),
        POINT,
        "stagegen compact (math backend)",
        seconds=seconds,
        repeats=repeats,
        notes=NOTES,
    )
    numba, casadi = rel.get("stagegen numba compact"), rel.get("casadi SX Function")
    if numba and casadi:
        lines += ["", f"stagegen numba / casadi SX Function (medians): {numba[0] / casadi[0]:.3f}"]
    lines += ["", "Compile time:", ""]
    lines += compile_times((4, 8) if quick else COMPILE_NS, (4,) if quick else JAX_NS)
    return lines, rel

"""Workloads 1 and 2: value and gradient per call, on Python floats.

1. The notes' function f(x, y) = (x + σ(y)) / (σ(x) + (x + y)²) at (3, -4).
2. The notes' 2-D sigmoid neuron σ(w0·x0 + w1·x1 + w2) at w = (2, -3, -3),
   x = (-1, -2), gradient with respect to all five inputs.

Reference: the notes' hand listing as one plain function returning the value
and the gradients as Python floats. Every candidate returns the same (value,
gradients) as floats, so conversions out of tensors, arrays and DMs are part
of its cost, and so is getting Python floats in (JAX's and PyTorch's
dispatch).
"""

from __future__ import annotations

import math
from pathlib import Path

import stagegen

from .compare import table
from .peers import need

ROOT = Path(__file__).resolve().parent.parent
NOTES_POINT = (3.0, -4.0)
NEURON_POINT = (2.0, -3.0, -3.0, -1.0, -2.0)  # w0, w1, w2, x0, x1


# The notes' listings, transcribed as plain functions (their sigmoid line included).
def notes_hand(x, y):
    sigy = 1.0 / (1 + math.exp(-y))  # (1)
    num = x + sigy  # (2)
    sigx = 1.0 / (1 + math.exp(-x))  # (3)
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6)
    invden = 1.0 / den  # (7)
    f = num * invden  # (8)
    dnum = invden  # (8)
    dinvden = num  # (8)
    dden = (-1.0 / (den**2)) * dinvden  # (7)
    dsigx = (1) * dden  # (6)
    dxpysqr = (1) * dden  # (6)
    dxpy = (2 * xpy) * dxpysqr  # (5)
    dx = (1) * dxpy  # (4)
    dy = (1) * dxpy  # (4)
    dx += ((1 - sigx) * sigx) * dsigx  # (3)
    dx += (1) * dnum  # (2)
    dsigy = (1) * dnum  # (2)
    dy += ((1 - sigy) * sigy) * dsigy  # (1)
    return f, (dx, dy)


def notes_hand_value(x, y):
    sigy = 1.0 / (1 + math.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1 + math.exp(-x))
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    return num * invden


def neuron_hand(w0, w1, w2, x0, x1):
    dot = w0 * x0 + w1 * x1 + w2
    f = 1.0 / (1 + math.exp(-dot))
    ddot = (1 - f) * f
    return f, (x0 * ddot, x1 * ddot, 1.0 * ddot, w0 * ddot, w1 * ddot)


def neuron_hand_value(w0, w1, w2, x0, x1):
    return 1.0 / (1 + math.exp(-(w0 * x0 + w1 * x1 + w2)))


# The same functions for the tracing peers, written once over a namespace
# (math-like: exp) so JAX, PyTorch, autograd and CasADi see the same formula.
def notes_formula(np, x, y):
    def sig(t):
        return 1 / (1 + np.exp(-t))

    return (x + sig(y)) / (sig(x) + (x + y) ** 2)


def neuron_formula(np, w0, w1, w2, x0, x1):
    return 1 / (1 + np.exp(-(w0 * x0 + w1 * x1 + w2)))


WORKLOADS = {
    "notes": ("examples/notes.txt", NOTES_POINT, notes_hand, notes_hand_value, notes_formula),
    "neuron": ("examples/neuron.txt", NEURON_POINT, neuron_hand, neuron_hand_value, neuron_formula),
}


def generated(path: str, style: str):
    return stagegen.load((ROOT / path).read_text(), style=style, filename=path)


def compiled(path: str, point):
    """The numba backend's value_and_grad (compact), compiled before it is timed."""
    need("numba")
    module = stagegen.load((ROOT / path).read_text(), style="compact", backend="numba", filename=path)
    module.value_and_grad(*point)
    return module.value_and_grad


def sympy_lambdified(formula, arity: int, cse: bool):
    import sympy as sp

    symbols = sp.symbols(f"s0:{arity}")
    f = formula(sp, *symbols)
    grads = tuple(sp.diff(f, s) for s in symbols)
    # a flat tuple: lambdify's cse does not look inside a nested one
    return sp.lambdify(symbols, (f, *grads), modules="math", cse=cse)


def jax_value_and_grad(formula, arity: int):
    jax = need("jax")
    fn = jax.jit(jax.value_and_grad(lambda *a: formula(jax.numpy, *a), argnums=tuple(range(arity))))

    def call(*args):
        value, grads = fn(*args)
        return float(value), tuple(float(g) for g in grads)

    return call


def torch_autograd(formula):
    torch = need("torch")

    def call(*args):
        leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
        value = formula(torch, *leaves)
        grads = torch.autograd.grad(value, leaves)
        return value.item(), tuple(g.item() for g in grads)

    return call


def hips_autograd(formula):
    autograd = need("autograd")
    anp = need("autograd.numpy")
    fn = autograd.value_and_grad(lambda a: formula(anp, *a))

    def call(*args):
        value, grads = fn(args)
        return float(value), tuple(float(g) for g in grads)

    return call


def casadi_function(formula, arity: int):
    casadi = need("casadi")
    symbols = [casadi.SX.sym(f"s{k}") for k in range(arity)]
    f = formula(casadi, *symbols)
    grads = [casadi.gradient(f, s) for s in symbols]
    fn = casadi.Function("f", symbols, [f, *grads])

    def call(*args):
        value, *grads = fn(*args)
        return float(value), tuple(float(g) for g in grads)

    return call


def builders(name: str) -> dict:
    path, point, hand, hand_value, formula = WORKLOADS[name]
    arity = len(point)
    seed, compact = generated(path, "seed"), generated(path, "compact")
    return {
        "hand listing": lambda: hand,
        "stagegen seed": lambda: seed.value_and_grad,
        "stagegen compact": lambda: compact.value_and_grad,
        "stagegen numba compact": lambda: compiled(path, point),
        "sympy lambdify": lambda: sympy_lambdified(formula, arity, cse=False),
        "sympy lambdify cse": lambda: sympy_lambdified(formula, arity, cse=True),
        "jax.jit(value_and_grad)": lambda: jax_value_and_grad(formula, arity),
        "torch autograd": lambda: torch_autograd(formula),
        "HIPS autograd": lambda: hips_autograd(formula),
        "casadi Function": lambda: casadi_function(formula, arity),
        "value only: hand": lambda: hand_value,
        "value only: stagegen seed forward": lambda: seed.forward,
        "value only: stagegen compact forward": lambda: compact.forward,
    }


NOTES = {
    "jax.jit(value_and_grad)": "Python floats in, floats out (dispatch included)",
    "stagegen numba compact": "@numba.njit, floats in and out (numba's dispatch included)",
    "torch autograd": "float64 leaf tensors built per call, .item() out",
    "HIPS autograd": "floats out",
    "casadi Function": "SX Function (virtual machine), float() of each DM out",
    "value only: stagegen seed forward": "forward(): value and cache tuple",
    "value only: stagegen compact forward": "forward(): value and cache tuple",
}


def run(name: str, quick: bool = False) -> tuple[list[str], dict]:
    """The table of workload `name`, and the headline ratios."""
    point = WORKLOADS[name][1]
    seconds, repeats = (0.002, 5) if quick else (0.005, 101)
    value = ("value only: hand", lambda out: out[0])
    checks = {"value only: hand": ("value only: hand", None)}
    checks.update(dict.fromkeys([f"value only: stagegen {s} forward" for s in ("seed", "compact")], value))
    lines, results, rel = table(
        builders(name), point, "hand listing", seconds=seconds, repeats=repeats, notes=NOTES, checks=checks
    )
    cheap = {}
    for style in ("seed", "compact"):
        vag, fwd = f"stagegen {style}", f"value only: stagegen {style} forward"
        r = [a / b for a, b in zip(results[vag].times, results[fwd].times, strict=True)]
        r.sort()
        cheap[style] = (r[len(r) // 2], r[0], r[-1])
    lines.append("")
    lines.append(
        "(value + gradient) / value of the generated code, value_and_grad / forward, "
        "repeat by repeat: "
        + "; ".join(f"{s} {m:.2f} ({lo:.2f}–{hi:.2f})" for s, (m, lo, hi) in cheap.items())
    )
    return lines, {"ratios": rel, "cheap": cheap}

"""Independent numerical references for the tests: no stagegen code is used here.

Finite differences of a plain Python function, and SymPy derivatives evaluated
with mpmath, with the tolerances named once.
"""

from __future__ import annotations

import math

import mpmath
import sympy as sp

RTOL = 1e-9  # generated gradient vs 50-digit reference
FD_RTOL = 1e-6  # generated gradient vs finite differences
FD_STEP = 1e-3  # relative step of the 4th-order central difference
DPS = 50


def central_difference(f, point, i, step=FD_STEP):
    """d f / d point[i] by the 4th-order central difference (f returns a float)."""
    h = step * max(1.0, abs(point[i]))

    def at(dx):
        p = list(point)
        p[i] += dx
        return f(*p)

    return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)


def close(got, expected, rtol, scale=0.0) -> bool:
    """|got - expected| <= rtol * (|expected| + scale); NaN only matches NaN."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    return abs(got - expected) <= rtol * (abs(expected) + scale)


def reference(expr: sp.Expr, symbols, point):
    """(value, gradient) of a SymPy expression at `point`, at 50 digits."""
    subs = {s: sp.Float(repr(float(v)), DPS) for s, v in zip(symbols, point, strict=True)}
    with mpmath.workdps(DPS):
        value = float(expr.evalf(DPS, subs=subs))
        grads = [float(sp.diff(expr, s).evalf(DPS, subs=subs)) for s in symbols]
    return value, grads


def basis_gradient(f, x):
    """d f / d x of a function linear in x (a NumPy array), from NumPy alone:
    f(x + e) - f(x) for each basis element e."""
    import numpy as np

    grad = np.zeros_like(x)
    base = f(x)
    for index in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[index] = 1.0
        grad[index] = f(x + e) - base
    return grad

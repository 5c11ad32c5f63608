"""Fit y = A exp(-k t) + c with scipy.optimize.least_squares and a generated Jacobian.

The residuals are `examples/arrays/residuals.txt` (the numpy backend, one
array output), generated with their Jacobian for the three parameters only
(``--with jacobian --wrt A,k,c``): `value_and_jacobian` gives dr/dA, dr/dk and
dr/dc, each of the residuals' shape, the columns of the (n, 3) matrix
least_squares asks for.

Run: python examples/fit_least_squares.py
"""

from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import stagegen

RESIDUALS = (Path(__file__).resolve().parent / "arrays" / "residuals.txt").read_text(encoding="utf-8")
OPTIONS = {"backend": "numpy", "wrt": "A,k,c", "with_": "jacobian", "filename": "residuals.txt"}

# Measurements of a decay: A = 3, k = 0.4, c = 0.5, with noise.
TIMES = np.linspace(0.0, 10.0, 25)
VALUES = 3.0 * np.exp(-0.4 * TIMES) + 0.5 + 0.01 * np.sin(7.0 * TIMES)


def fit(times=TIMES, values=VALUES, start=(1.0, 1.0, 0.0), jacobian=True):
    module = stagegen.load(RESIDUALS, **OPTIONS)

    def residuals(p):
        return module.forward(*p, times, values)[0]

    def jac(p):
        _, ((dA, dk, dc),) = module.value_and_jacobian(*p, times, values)
        return np.stack([dA, dk, dc], axis=1)

    return least_squares(residuals, start, jac=jac if jacobian else "2-point", xtol=1e-14, ftol=1e-14)


if __name__ == "__main__":
    with_jacobian, without = fit(), fit(jacobian=False)
    print("A, k, c =", with_jacobian.x, f"({with_jacobian.njev} Jacobians)")
    print("with 2-point differences:", without.x)

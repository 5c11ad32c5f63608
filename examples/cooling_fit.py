"""Fit Newton's law of cooling to measurements with a generated gradient.

    T(t) = Tenv + (T0 - Tenv) * exp(-k * t)

The loss is the sum of squared residuals over the measurements, written as
stagegen stages (one residual per measurement), generated once, and handed to
scipy.optimize.minimize(..., jac=True) through value_and_grad.

Run: python examples/cooling_fit.py
"""

import numpy as np
from scipy.optimize import minimize

import stagegen

# Temperatures of a cup of coffee (degrees C) at times t (minutes).
TIMES = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 14.0, 18.0, 24.0, 30.0]
TEMPS = [90.1, 80.3, 72.0, 64.9, 59.2, 54.0, 46.2, 40.4, 34.9, 31.5]


def loss_source(times, temps) -> str:
    """The loss as stagegen input: declared parameters, one stage per residual."""
    lines = ["k: scalar", "T0: scalar", "Tenv: scalar"]
    for i, (t, temp) in enumerate(zip(times, temps, strict=True)):
        lines.append(f"r{i} = Tenv + (T0 - Tenv) * exp(-k * {t!r}) - {temp!r}")
    lines.append("loss = " + " + ".join(f"r{i}**2" for i in range(len(times))))
    return "\n".join(lines) + "\n"


def fit(times=TIMES, temps=TEMPS):
    module = stagegen.load(loss_source(times, temps), filename="cooling_fit")

    def fun(p):
        value, grads = module.value_and_grad(*p)
        return value, np.array(grads)

    return minimize(fun, x0=[0.05, 80.0, 15.0], jac=True, method="BFGS")


if __name__ == "__main__":
    result = fit()
    k, T0, Tenv = result.x
    print(
        f"k = {k:.4f} per minute, T0 = {T0:.2f} C, Tenv = {Tenv:.2f} C "
        f"(loss {result.fun:.3f}, {result.nit} iterations, {result.njev} gradients)"
    )

"""Fit Newton's law of cooling to measurements with a generated gradient.

    T(t) = Tenv + (T0 - Tenv) * exp(-k * t)

The loss is the sum of squared residuals over the measurements, with the
times and temperatures as arrays (`LOSS`, the numpy backend), generated once
with the gradients of the three parameters only, and handed to
scipy.optimize.minimize(..., jac=True) through value_and_grad. The ranges the
parameters are declared in are where `stagegen.verify` checks the module.

Run: python examples/cooling_fit.py
"""

import numpy as np
from scipy.optimize import minimize

import stagegen

# Temperatures of a cup of coffee (degrees C) at times t (minutes).
TIMES = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 14.0, 18.0, 24.0, 30.0])
TEMPS = np.array([90.1, 80.3, 72.0, 64.9, 59.2, 54.0, 46.2, 40.4, 34.9, 31.5])

LOSS = """\
k: scalar in [0.01, 0.5]
T0: scalar in [50, 100]
Tenv: scalar in [0, 40]
t: vector(n) in [0, 30]
T: vector(n) in [20, 100]
r = Tenv + (T0 - Tenv) * exp(-k * t) - T
loss = sum(r**2)
"""
OPTIONS = {"backend": "numpy", "wrt": "k,T0,Tenv", "filename": "cooling_fit"}


def fit(times=TIMES, temps=TEMPS):
    module = stagegen.load(LOSS, **OPTIONS)

    def fun(p):
        value, grads = module.value_and_grad(*p, times, temps)
        return value, np.array(grads)

    return minimize(fun, x0=[0.05, 80.0, 15.0], jac=True, method="BFGS")


if __name__ == "__main__":
    result = fit()
    k, T0, Tenv = result.x
    print(
        f"k = {k:.4f} per minute, T0 = {T0:.2f} C, Tenv = {Tenv:.2f} C "
        f"(loss {result.fun:.3f}, {result.nit} iterations, {result.njev} gradients)"
    )

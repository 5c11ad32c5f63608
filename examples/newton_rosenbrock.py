"""Minimise the Rosenbrock function with a Newton method that needs only
Hessian-vector products: scipy.optimize.minimize(method="trust-ncg").

`examples/rosenbrock.txt` is generated with ``--with hvp``: `value_and_grad`
gives the value and gradient (jac=True), `hvp` the product of the Hessian
with a vector (hessp=...), forward over reverse on the staged listing.

Run: python examples/newton_rosenbrock.py
"""

from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import stagegen

ROSENBROCK = (Path(__file__).resolve().parent / "rosenbrock.txt").read_text(encoding="utf-8")


def solve(start=(-1.2, 1.0)):
    f = stagegen.load(ROSENBROCK, with_="hvp", filename="rosenbrock.txt")

    def fun(p):
        value, grads = f.value_and_grad(*p)
        return value, np.array(grads)

    def hessp(p, v):
        return np.array(f.hvp(*p, *v)[2])

    return minimize(fun, start, jac=True, hessp=hessp, method="trust-ncg", options={"gtol": 1e-10})


if __name__ == "__main__":
    result = solve()
    print(f"minimum at {result.x} after {result.nit} iterations ({result.message})")

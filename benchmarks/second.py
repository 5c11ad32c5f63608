"""Second order and Jacobians, per call, on Python floats.

1. hvp of the notes' function at (3, -4) along v = (0.3, -0.7): stagegen's
   `hvp` (forward over reverse, compact) against its own `value_and_grad` (the
   cheap-gradient bound asks hvp <= 4x), SymPy's Hessian times v through
   lambdify(cse=True), and jax.jit(jvp of grad) where JAX is installed.
2. The Hessian of the notes' function at (3, -4): `hessian` (the gradient
   once, then a sweep of tangents per input) against SymPy's hessian with
   cse and jax.jit(jax.hessian).
3. The arm's 2 x 3 Jacobian (`examples/arm3.txt`) at (0.3, -0.7, 1.1):
   `value_and_jacobian` (min(m, n) = 2 sweeps) against two calls of
   `backward`, SymPy's jacobian lambdified with cse, and jax.jit(jacrev).

Every candidate returns the same numbers as floats (checked before timing).
"""

from __future__ import annotations

import stagegen

from .compare import table
from .peers import need
from .scalar import ROOT, notes_formula

NOTES_POINT = (3.0, -4.0)
DIRECTION = (0.3, -0.7)
ARM_POINT = (0.3, -0.7, 1.1)


def arm_formula(np, t1, t2, t3):
    a2, a3 = t1 + t2, t1 + t2 + t3
    return (
        np.cos(t1) + 0.8 * np.cos(a2) + 0.5 * np.cos(a3),
        np.sin(t1) + 0.8 * np.sin(a2) + 0.5 * np.sin(a3),
    )


def _load(path: str, **options):
    return stagegen.load((ROOT / path).read_text(), filename=path, style="compact", **options)


def sympy_hvp():
    import sympy as sp

    x, y, vx, vy = sp.symbols("x y vx vy")
    f = notes_formula(sp, x, y)
    H = sp.hessian(f, (x, y))
    hv = tuple(H[i, 0] * vx + H[i, 1] * vy for i in range(2))
    fn = sp.lambdify((x, y, vx, vy), hv, modules="math", cse=True)
    return fn


def jax_hvp():
    jax = need("jax")
    grad = jax.grad(lambda x, y: notes_formula(jax.numpy, x, y), argnums=(0, 1))
    fn = jax.jit(lambda x, y, vx, vy: jax.jvp(grad, (x, y), (vx, vy))[1])

    def call(*args):
        return tuple(float(h) for h in fn(*args))

    return call


def hvp_builders() -> dict:
    module = _load("examples/notes.txt", with_="hvp")

    def hvp(x, y, vx, vy):
        return module.hvp(x, y, vx, vy)[2]

    return {
        "stagegen hvp (compact)": lambda: hvp,
        "sympy hessian @ v, lambdify cse": sympy_hvp,
        "jax.jit(jvp(grad))": jax_hvp,
        "stagegen value_and_grad (compact)": lambda: lambda x, y, vx, vy: module.value_and_grad(x, y),
    }


def sympy_hessian():
    import sympy as sp

    x, y = sp.symbols("x y")
    H = sp.hessian(notes_formula(sp, x, y), (x, y))
    return sp.lambdify(
        (x, y), tuple(tuple(H[i, j] for j in range(2)) for i in range(2)), modules="math", cse=True
    )


def jax_hessian():
    jax = need("jax")
    fn = jax.jit(jax.hessian(lambda x, y: notes_formula(jax.numpy, x, y), argnums=(0, 1)))

    def call(x, y):
        return tuple(tuple(float(e) for e in row) for row in fn(x, y))

    return call


def hessian_builders() -> dict:
    module = _load("examples/notes.txt", with_="hessian")
    return {
        "stagegen hessian (compact)": lambda: lambda x, y: module.hessian(x, y)[2],
        "sympy hessian, lambdify cse": sympy_hessian,
        "jax.jit(hessian)": jax_hessian,
    }


def sympy_jacobian():
    import sympy as sp

    t = sp.symbols("t1:4")
    J = sp.Matrix(arm_formula(sp, *t)).jacobian(t)
    fn = sp.lambdify(t, tuple(tuple(J[i, j] for j in range(3)) for i in range(2)), modules="math", cse=True)
    return fn


def jax_jacobian():
    jax = need("jax")
    fn = jax.jit(jax.jacrev(lambda *t: arm_formula(jax.numpy, *t), argnums=(0, 1, 2)))

    def call(*t):
        return tuple(tuple(float(e) for e in row) for row in fn(*t))

    return call


def jacobian_builders() -> dict:
    module = _load("examples/arm3.txt", with_="jacobian")

    def backward_twice(*t):
        _, cache = module.forward(*t)
        return module.backward((1.0, 0.0), cache), module.backward((0.0, 1.0), cache)

    return {
        "stagegen value_and_jacobian (compact)": lambda: lambda *t: module.value_and_jacobian(*t)[1],
        "stagegen forward + backward per output": lambda: backward_twice,
        "sympy jacobian, lambdify cse": sympy_jacobian,
        "jax.jit(jacrev)": jax_jacobian,
    }


NOTES = {
    "jax.jit(jvp(grad))": "Python floats in, floats out (dispatch included)",
    "jax.jit(jacrev)": "Python floats in, floats out (dispatch included)",
    "jax.jit(hessian)": "Python floats in, floats out (dispatch included)",
    "stagegen value_and_grad (compact)": "value and gradient only: the bound hvp is compared with",
}


def run(quick: bool = False) -> tuple[list[str], dict]:
    seconds, repeats = (0.002, 5) if quick else (0.005, 101)
    tables = [
        (
            "hvp of the notes' function at (3, -4) along (0.3, -0.7)",
            hvp_builders(),
            (*NOTES_POINT, *DIRECTION),
        ),
        ("the Hessian of the notes' function at (3, -4)", hessian_builders(), NOTES_POINT),
        ("the arm's 2 x 3 Jacobian at (0.3, -0.7, 1.1)", jacobian_builders(), ARM_POINT),
    ]
    lines, figures = [], {}
    for title, builders, point in tables:
        reference = next(iter(builders))
        checks = {name: (name, None) for name in builders if name.startswith("stagegen value_and_grad")}
        rows, _, rel = table(
            builders, point, reference, seconds=seconds, repeats=repeats, notes=NOTES, checks=checks
        )
        lines += [f"#### {title}", "", *rows, ""]
        figures[title] = rel
        if "stagegen value_and_grad (compact)" in rel:
            bound = 1 / rel["stagegen value_and_grad (compact)"][0]
            figures["hvp / value_and_grad"] = bound
            lines += [f"hvp / value_and_grad (compact): {bound:.2f} (the cheap-gradient bound is 4)", ""]
    return lines, figures

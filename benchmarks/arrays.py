"""Workloads 4 and 5: value and gradient on NumPy-sized arrays.

4. The notes' function elementwise over two float64 arrays of 10^6 elements
   (value: the array f; gradients: df_i/dx_i and df_i/dy_i, i.e. the
   vector-Jacobian product with a ones cotangent).
5. L = sum((W @ X - Y)**2), W 256×512, X 512×1024, Y 256×1024; gradients with
   respect to W and X.

Reference: hand-written NumPy, the notes' listing transcribed with fresh
arrays at the forks (no aliasing). Each candidate is a zero-argument closure
over inputs in its own library's form, made before timing (NumPy arrays for
NumPy, device arrays for JAX, leaf tensors sharing NumPy's memory for
PyTorch); outputs are left in that form (JAX's are waited for).

Workload 4's NumPy candidates are timed twice: in a new process that runs
nothing else (`python -m benchmarks.arrays`, what a NumPy program sees), and
with the peers in one process. The two differ in what a fresh array costs:
glibc's malloc gives large freed blocks back to the system, so a NumPy-only
program pays page faults for every temporary; once PyTorch's autograd has run
in a process, freed blocks stay with the allocator for the rest of it.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import stagegen

from .compare import table
from .peers import Skip, need
from .timing import in_fresh_process

NOTES_LINES = (Path(__file__).resolve().parent.parent / "examples" / "notes.txt").read_text()
UNAVAILABLE = "stagegen numpy backend not available"


def matrix_text(m: int, k: int, n: int) -> str:
    return f"W: matrix({m}, {k})\nX: matrix({k}, {n})\nY: matrix({m}, {n})\nR = W @ X - Y\nL = sum(R**2)\n"


def stagegen_numpy(text: str, **options):
    """The generated numpy-backend module, or Skip while the backend does not exist.

    Once the backend exists, an error for this input is shown in the table,
    not hidden behind "not available".
    """
    try:
        stagegen.Options(backend="numpy")
    except stagegen.UsageError:
        raise Skip(UNAVAILABLE) from None
    try:
        return stagegen.load(text, backend="numpy", **options)
    except stagegen.StagegenError as exc:
        raise Skip(f"stagegen error: {str(exc).splitlines()[0]}") from None


def stagegen_numba(text: str, *args, style: str = "seed"):
    """The generated numba-backend module, its value_and_grad compiled for `args`
    before it is timed (Skip where numba is not installed)."""
    need("numba")
    module = stagegen.load(text, backend="numba", style=style)
    module.value_and_grad(*args)
    return module


# Workload 4 references
def naive_sigmoid(np, t):
    return 1.0 / (1 + np.exp(-t))


def safe_sigmoid(np, t):
    """The overflow-free sigmoid (no exp of a positive number), which the numpy
    backend falls back to when an element is below -700: three more passes
    over the array than naive_sigmoid."""
    return np.exp(np.minimum(t, 0.0)) / (1.0 + np.exp(-np.abs(t)))


def notes_listing(x, y, sigmoid=naive_sigmoid):
    import numpy as np

    sigy = sigmoid(np, y)
    num = x + sigy
    sigx = sigmoid(np, x)
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den**2)) * dinvden
    dxpy = (2 * xpy) * dden
    dx = dxpy + ((1 - sigx) * sigx) * dden + dnum
    dy = dxpy + ((1 - sigy) * sigy) * dnum
    return f, (dx, dy)


def notes_hand_inplace(x, y):
    """The same arithmetic with in-place ufuncs: 7 arrays allocated instead of about 29."""
    import numpy as np

    sigy = np.negative(y)
    np.exp(sigy, out=sigy)
    sigy += 1
    np.reciprocal(sigy, out=sigy)
    sigx = np.negative(x)
    np.exp(sigx, out=sigx)
    sigx += 1
    np.reciprocal(sigx, out=sigx)
    dxpy = np.add(x, y)
    invden = np.multiply(dxpy, dxpy)
    invden += sigx
    np.reciprocal(invden, out=invden)
    f = np.add(x, sigy)  # num, until it is multiplied by invden
    dden = np.multiply(invden, invden)
    dden *= f
    np.negative(dden, out=dden)
    f *= invden
    dxpy *= 2
    dxpy *= dden
    dx = np.subtract(1, sigx)
    dx *= sigx
    dx *= dden
    dx += dxpy
    dx += invden
    dy = dden  # dden is not needed any more: its buffer becomes dy
    np.subtract(1, sigy, out=dy)
    dy *= sigy
    dy *= invden
    dy += dxpy
    return f, (dx, dy)


def notes_hand_value(x, y):
    import numpy as np

    return (x + 1.0 / (1 + np.exp(-y))) / (1.0 / (1 + np.exp(-x)) + (x + y) ** 2)


def notes_formula(np, x, y):
    def sig(t):
        return 1 / (1 + np.exp(-t))

    return (x + sig(y)) / (sig(x) + (x + y) ** 2)


@contextmanager
def torch_threads(torch, count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def elementwise_builders(x, y) -> dict:
    def jax_vjp():
        jax = need("jax")

        @jax.jit
        def vag(x, y):
            out, vjp = jax.vjp(lambda a, b: notes_formula(jax.numpy, a, b), x, y)
            return out, vjp(jax.numpy.ones_like(out))

        xj, yj = jax.device_put(x), jax.device_put(y)
        return lambda: jax.block_until_ready(vag(xj, yj))

    def torch_eager(threads=None):
        torch = need("torch")
        xt, yt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(y).requires_grad_()

        def call():
            f = notes_formula(torch, xt, yt)
            return f.detach(), torch.autograd.grad(f, (xt, yt), torch.ones_like(f))

        if threads is None:
            return call

        def limited():
            with torch_threads(torch, threads):
                return call()

        return limited

    def numexpr_forward():
        ne = need("numexpr")
        expr = "(x + 1 / (1 + exp(-y))) / (1 / (1 + exp(-x)) + (x + y)**2)"
        return lambda: ne.evaluate(expr, local_dict={"x": x, "y": y})

    def generated(style):
        module = stagegen_numpy(NOTES_LINES, style=style)
        return lambda: module.value_and_grad(x, y)

    def fused(threads=None):
        numba = need("numba")
        module = stagegen_numba(NOTES_LINES, x, y)
        if threads is None:
            return lambda: module.value_and_grad(x, y)

        def limited():
            before = numba.get_num_threads()
            numba.set_num_threads(threads)
            try:
                return module.value_and_grad(x, y)
            finally:
                numba.set_num_threads(before)

        return limited

    return {
        "hand NumPy": lambda: lambda: notes_listing(x, y),
        "stagegen numpy seed": lambda: generated("seed"),
        "stagegen numpy compact": lambda: generated("compact"),
        "stagegen numba, fused loop": lambda: fused(),
        "stagegen numba, fused loop, 1 thread": lambda: fused(threads=1),
        "hand NumPy, overflow-safe sigmoid": lambda: lambda: notes_listing(x, y, safe_sigmoid),
        "hand NumPy, in-place temporaries": lambda: lambda: notes_hand_inplace(x, y),
        "jax.jit(vjp)": jax_vjp,
        "torch eager": torch_eager,
        "torch eager, 1 thread": lambda: torch_eager(threads=1),
        "value only: hand NumPy": lambda: lambda: notes_hand_value(x, y),
        "value only: numexpr": numexpr_forward,
    }


# Workload 5
def matrix_hand(W, X, Y):
    import numpy as np

    R = W @ X - Y
    L = np.sum(R**2)
    dR = 2.0 * R
    return L, (dR @ X.T, W.T @ dR)


def matrix_hand_value(W, X, Y):
    import numpy as np

    R = W @ X - Y
    return np.sum(R**2)


def matrix_njit():
    """Workload 5 by hand in numba.njit: np.dot (numba's call of the BLAS SciPy
    ships) and the elementwise steps in one loop over R; what a compiled listing
    of the matrix loss could at best be, against which the numba backend's
    choice (the numpy listing) is measured."""
    numba = need("numba")
    np = need("numpy")

    @numba.njit
    def loss(W, X, Y):
        R = np.dot(W, X)
        L = 0.0
        for i in range(R.shape[0]):
            for j in range(R.shape[1]):
                r = R[i, j] - Y[i, j]
                L += r * r
                R[i, j] = 2.0 * r
        return L, (np.dot(R, X.T), np.dot(W.T, R))

    return loss


def matrix_builders(W, X, Y) -> dict:
    def jax_jit():
        jax = need("jax")

        def loss(W, X, Y):
            return jax.numpy.sum((W @ X - Y) ** 2)

        fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        Wj, Xj, Yj = (jax.device_put(a) for a in (W, X, Y))
        return lambda: jax.block_until_ready(fn(Wj, Xj, Yj))

    def torch_eager():
        torch = need("torch")
        Wt, Xt = torch.from_numpy(W).requires_grad_(), torch.from_numpy(X).requires_grad_()
        Yt = torch.from_numpy(Y)

        def call():
            L = ((Wt @ Xt - Yt) ** 2).sum()
            return L.detach(), torch.autograd.grad(L, (Wt, Xt))

        return call

    def generated(style):
        module = stagegen_numpy(matrix_text(*W.shape, X.shape[1]), wrt="W,X", style=style)
        return lambda: module.value_and_grad(W, X, Y)

    def numba_backend():
        need("numba")
        text = matrix_text(*W.shape, X.shape[1])
        module = stagegen.load(text, backend="numba", wrt="W,X", style="compact")
        return lambda: module.value_and_grad(W, X, Y)

    def njit_dot():
        loss = matrix_njit()
        loss(W, X, Y)  # compiled before it is timed
        return lambda: loss(W, X, Y)

    return {
        "hand NumPy": lambda: lambda: matrix_hand(W, X, Y),
        "stagegen numpy seed": lambda: generated("seed"),
        "stagegen numpy compact": lambda: generated("compact"),
        "stagegen numba compact": numba_backend,
        "hand numba.njit, np.dot": njit_dot,
        "jax.jit(value_and_grad)": jax_jit,
        "torch eager": torch_eager,
        "value only: hand NumPy": lambda: lambda: matrix_hand_value(W, X, Y),
    }


NOTES = {
    "hand NumPy, overflow-safe sigmoid": "stagegen's sigmoid when an element is below -700",
    "hand NumPy, in-place temporaries": "what a buffer-reusing backend could do",
    "jax.jit(vjp)": "device arrays in, waited for",
    "stagegen numba, fused loop": "one prange loop, numba's threads (all cores)",
    "stagegen numba, fused loop, 1 thread": "numba.set_num_threads(1) around the call",
    "torch eager": "leaf tensors on NumPy's memory",
    "torch eager, 1 thread": "torch.set_num_threads(1) around the call",
    "jax.jit(value_and_grad)": "device arrays in, waited for",
    "stagegen numba compact": "--backend numba: the numpy listing (a program over arrays)",
    "hand numba.njit, np.dot": "np.dot inside njit, the elementwise steps in one loop",
}


NUMPY_ONLY = (
    "hand NumPy",
    "stagegen numpy seed",
    "stagegen numpy compact",
    "stagegen numba, fused loop",
    "stagegen numba, fused loop, 1 thread",
    "hand NumPy, overflow-safe sigmoid",
    "hand NumPy, in-place temporaries",
    "value only: hand NumPy",
)


def elementwise(quick: bool, names=None) -> tuple[list[str], dict]:
    """Workload 4's table (only the candidates `names`, if given) and its ratios."""
    np = need("numpy")
    rng = np.random.default_rng(7)
    size = 10_000 if quick else 1_000_000
    x, y = rng.standard_normal(size), rng.standard_normal(size)
    builders = elementwise_builders(x, y)
    if names is not None:
        builders = {name: builders[name] for name in names}
    seconds, repeats = (0.005, 3) if quick else (0.05, 21)
    value = ("value only: hand NumPy", lambda out: out)
    checks = {"value only: hand NumPy": value, "value only: numexpr": value}
    lines, results, rel = table(
        builders, (), "hand NumPy", seconds=seconds, repeats=repeats, unit="ms", notes=NOTES, checks=checks
    )
    lines += ["", bandwidth(x, y, results.get("stagegen numba, fused loop"))]
    return [f"Elementwise, {size:,} float64 elements per input:", "", *lines], rel


def bandwidth(x, y, fused) -> str:
    """The fused loop's memory traffic (two inputs read, the value and two
    gradients written) in GB/s, against np.copyto of one input's bytes; and
    what its two exps per element take alone (a prange loop writing
    exp(-x) + exp(-y), numba's threads)."""
    np = need("numpy")
    from .timing import per_call

    target = np.empty_like(x)
    per_call(lambda: np.copyto(target, x), (), 10)
    copy = min(per_call(lambda: np.copyto(target, x), (), 10) for _ in range(21))
    text = f"np.copyto of {x.nbytes / 1e6:g} MB (read + write): {2 * x.nbytes / copy / 1e9:.1f} GB/s"
    if fused is None:
        return text + "."
    moved = 5 * x.nbytes / fused.median
    text += f"; the fused loop moves 5 × {x.nbytes / 1e6:g} MB at {moved / 1e9:.1f} GB/s (median)"
    exps = two_exps(x, y, target)
    return text + f"; its two exps per element alone take {exps * 1e3:.3g} ms (best of 21)."


def two_exps(x, y, out) -> float:
    """Seconds (best of 21) of a prange loop writing exp(-x) + exp(-y) into `out`."""
    import math

    numba = need("numba")
    from .timing import per_call

    @numba.njit(parallel=True)
    def loop(x, y, out):
        for i in numba.prange(x.size):
            out[i] = math.exp(-x[i]) + math.exp(-y[i])

    loop(x, y, out)
    return min(per_call(loop, (x, y, out), 10) for _ in range(21))


def numpy_only(quick: bool) -> tuple[list[str], dict]:
    """Workload 4's NumPy candidates, timed in a new process that runs nothing else."""
    return in_fresh_process("arrays", quick)


def run(quick: bool = False) -> tuple[list[str], dict]:
    need("numpy")
    alone, rel_alone = numpy_only(quick)
    shared, rel4 = elementwise(quick)
    matrix, rel5 = matrices(quick)
    alone[0] = alone[0].removesuffix(":") + ", in a process that runs only NumPy:"
    shared[0] = shared[0].removesuffix(":") + ", with the peers in one process:"
    lines = [*alone, "", *shared, "", *matrix]
    return lines, {"elementwise alone": rel_alone, "elementwise": rel4, "matrix": rel5}


def matrices(quick: bool = False) -> tuple[list[str], dict]:
    """Workload 5's table and its ratios."""
    np = need("numpy")
    rng = np.random.default_rng(8)
    m, k, n = (32, 64, 128) if quick else (256, 512, 1024)
    seconds, repeats = (0.005, 3) if quick else (0.05, 21)
    W, X, Y = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
    matrix, _, rel5 = table(
        matrix_builders(W, X, Y),
        (),
        "hand NumPy",
        seconds=seconds,
        repeats=repeats,
        unit="ms",
        notes=NOTES,
        checks={"value only: hand NumPy": ("value only: hand NumPy", None)},
    )
    return [f"Matrices, W {m}×{k}, X {k}×{n}, Y {m}×{n}, float64:", "", *matrix], rel5


def broadcast(quick: bool = False) -> list[str]:
    """The numba backend on inputs that broadcast: the notes' function on a column
    against a row (10^6 elements), against the numpy backend, after workload 4's
    same-shape rows of hand NumPy and both backends (in the same process)."""
    np = need("numpy")
    names = ("hand NumPy", "stagegen numpy compact", "stagegen numba, fused loop")
    same, _ = elementwise(quick, names)
    side = 100 if quick else 1000
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((side, 1)), rng.standard_normal(side)
    numpy_module = stagegen_numpy(NOTES_LINES, style="compact")

    def numba_module():
        module = stagegen_numba(NOTES_LINES, x, y, style="compact")
        return lambda: module.value_and_grad(x, y)

    builders = {
        "stagegen numpy compact": lambda: lambda: numpy_module.value_and_grad(x, y),
        "stagegen numba (its numpy listing for shapes that differ)": numba_module,
    }
    seconds, repeats = (0.005, 3) if quick else (0.05, 21)
    lines, _, _ = table(builders, (), "stagegen numpy compact", seconds=seconds, repeats=repeats, unit="ms")
    return [*same, "", f"A column ({side}, 1) against a row ({side},):", "", *lines]


if __name__ == "__main__":  # the NumPy-only table, as JSON, for numpy_only()
    lines, rel = elementwise("--quick" in sys.argv[1:], NUMPY_ONLY)
    print(json.dumps({"lines": lines, "ratios": rel}))

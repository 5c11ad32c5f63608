"""stagegen.adapters: a --backend array module as a torch.autograd.Function and
as a jax.custom_vjp function, made beside a loaded module (torch_function,
jax_function) or written into the module's file (--emit-adapter). References
are PyTorch's and JAX's own autodiff of the same maths written directly in
them, and finite differences (torch.autograd.gradcheck)."""

import ast
import importlib.util
import math

import numpy as np
import pytest

import stagegen
from helpers import EXAMPLES, run_cli
from stagegen.adapters import jax_function, torch_function
from stagegen.errors import StagegenError

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = jax.numpy
jax.config.update("jax_enable_x64", True)


def load(name, **options):
    return stagegen.load((EXAMPLES / name).read_text(), backend="array", **options)


ADAPTED = {"torch": torch_function, "jax": jax_function}


def adapted(how, framework, name, tmp_path, **options):
    """The adapter's function for an example: made by stagegen.adapters beside
    the loaded module ("beside"), or the one its file defines when written with
    --emit-adapter and imported from disk like any module ("emitted")."""
    if how == "beside":
        return ADAPTED[framework](load(name, **options))
    path = tmp_path / f"{framework}_{name.replace('/', '_').removesuffix('.txt')}.py"
    source = (EXAMPLES / name).read_text()
    path.write_text(stagegen.generate(source, backend="array", emit_adapter=framework, **options))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"{framework}_function")


HOW = ["beside", "emitted"]


def tensors(*values, grad=True):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=grad) for v in values]


# -- PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_torch_gradcheck_elementwise_and_several_outputs(how, tmp_path):
    notes = adapted(how, "torch", "notes.txt", tmp_path)
    x, y = tensors([0.3, -1.0, 2.0], [1.0, 0.5, -2.0])
    assert torch.autograd.gradcheck(notes, (x, y))
    arm = adapted(how, "torch", "arm3.txt", tmp_path)
    assert torch.autograd.gradcheck(arm, tuple(tensors(0.3, -0.7, 1.1)))


@pytest.mark.parametrize("how", HOW)
def test_torch_arguments_not_in_wrt_get_no_gradient(how, tmp_path):
    f = adapted(how, "torch", "arrays/linreg.txt", tmp_path, wrt="W")
    rng = np.random.default_rng(1)
    W, X, Y = tensors(rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5)))
    f(W, X, Y).backward()
    torch.testing.assert_close(W.grad, 2 * (W.detach() @ X.detach() - Y.detach()) @ X.detach().T)
    assert X.grad is None and Y.grad is None


def test_torch_second_derivative_is_refused_clearly():
    f = torch_function(load("notes.txt"))
    (x,) = tensors([0.5])
    (g,) = torch.autograd.grad(f(x, torch.tensor([1.0], dtype=torch.float64)), x, create_graph=True)
    # the module's backward is not a torch graph: its result has nothing to differentiate
    with pytest.raises(RuntimeError, match="grad"):
        torch.autograd.grad(g, x)


@pytest.mark.parametrize("how", HOW)
def test_torch_training_matches_plain_pytorch(how, tmp_path):
    """A two-layer regression net (examples/arrays/two_layer.txt) trained with Adam
    for 20 steps through the adapter and written in plain PyTorch: the same losses."""
    staged = adapted(how, "torch", "arrays/two_layer.txt", tmp_path, wrt="W1,b1,W2,b2")
    rng = np.random.default_rng(0)
    shapes = {"W1": (8, 4), "b1": (8, 1), "W2": (2, 8), "b2": (2, 1)}
    X, Y = torch.tensor(rng.normal(size=(4, 16))), torch.tensor(rng.normal(size=(2, 16)))
    start = {k: rng.normal(size=s) * 0.5 for k, s in shapes.items()}

    def train(loss_of):
        params = [torch.tensor(start[k], requires_grad=True) for k in shapes]
        opt = torch.optim.Adam(params, lr=0.01)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = loss_of(*params)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses

    def plain(W1, b1, W2, b2):
        return torch.mean((W2 @ torch.relu(W1 @ X + b1) + b2 - Y) ** 2)

    ours, theirs = train(lambda *p: staged(*p, X, Y)), train(plain)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[-1] < ours[0]


def test_a_numpy_module_is_refused():
    module = stagegen.load((EXAMPLES / "notes.txt").read_text(), backend="numpy")
    for adapter in (torch_function, jax_function):
        with pytest.raises(StagegenError, match="--backend array"):
            adapter(module)


# -- JAX ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", HOW)
def test_jax_grad_equals_the_modules_gradient_and_jit_works(how, tmp_path):
    module = load("notes.txt")
    f = adapted(how, "jax", "notes.txt", tmp_path)
    x, y = jnp.asarray([0.3, -1.0, 2.0]), jnp.asarray([1.0, 0.5, -2.0])

    def total(a, b):
        return jnp.sum(f(a, b))

    gx, gy = jax.grad(total, argnums=(0, 1))(x, y)
    _, (dx, dy) = module.value_and_grad(np.asarray(x), np.asarray(y))
    np.testing.assert_allclose(gx, dx, rtol=1e-14)
    np.testing.assert_allclose(gy, dy, rtol=1e-14)
    np.testing.assert_allclose(jax.jit(jax.grad(total))(x, y), dx, rtol=1e-14)


def test_jax_jacobian_of_several_outputs_is_the_analytic_one():
    f = jax_function(load("arm3.txt"))
    t = (0.3, -0.7, 1.1)
    J = jax.jacrev(lambda *a: jnp.stack(f(*a)), argnums=(0, 1, 2))(*map(jnp.asarray, t))
    a3 = sum(t)
    assert float(J[2][0]) == pytest.approx(-0.5 * math.sin(a3), rel=1e-14)
    assert float(J[2][1]) == pytest.approx(0.5 * math.cos(a3), rel=1e-14)


@pytest.mark.parametrize("how", HOW)
def test_jax_arguments_not_in_wrt_get_zeros(how, tmp_path):
    f = adapted(how, "jax", "arrays/linreg.txt", tmp_path, wrt="W")
    rng = np.random.default_rng(2)
    W, X, Y = (jnp.asarray(rng.normal(size=s)) for s in ((3, 4), (4, 5), (3, 5)))
    gW, gX, gY = jax.grad(f, argnums=(0, 1, 2))(W, X, Y)
    np.testing.assert_allclose(gW, 2 * (W @ X - Y) @ X.T, rtol=1e-12)
    assert not np.any(np.asarray(gX)) and not np.any(np.asarray(gY))


@pytest.mark.parametrize("how", HOW)
def test_jax_hessian_through_the_adapter_is_the_modules_hessian(how, tmp_path):
    """JAX differentiates the module's backward code itself (it is JAX code on JAX
    arrays): jax.hessian works and equals the math backend's `hessian`."""
    f = adapted(how, "jax", "notes.txt", tmp_path)
    H = jax.hessian(f, argnums=(0, 1))(jnp.asarray(3.0), jnp.asarray(-4.0))
    _, _, want = stagegen.load((EXAMPLES / "notes.txt").read_text(), with_="hessian").hessian(3.0, -4.0)
    np.testing.assert_allclose(np.array(H, dtype=float), np.array(want), rtol=1e-12)


# -- --emit-adapter -------------------------------------------------------------------


@pytest.mark.parametrize(
    "framework, imports",
    [
        ("torch", ["array_api_compat", "torch", "torch.autograd.function"]),
        ("jax", ["array_api_compat", "jax", "jax.numpy"]),
    ],
)
def test_an_emitted_adapter_imports_its_framework_and_stays_fresh(framework, imports, folder, capsys):
    status, _, err = run_cli(
        ["in.txt", "--backend", "array", "--emit-adapter", framework, "-o", "out.py"], capsys
    )
    assert status == 0, err
    text = (folder / "out.py").read_text()
    tree = ast.parse(text)
    found = [
        n.names[0].name if isinstance(n, ast.Import) else n.module
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    assert found == imports
    assert f"--backend array --emit-adapter {framework}" in text.split("\n")[2]
    assert f"{framework}_function(...) is this module as a" in text
    assert run_cli(["--check-fresh", "out.py"], capsys)[0] == 0


@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_emit_adapter_needs_the_array_backend(backend):
    with pytest.raises(StagegenError, match="--emit-adapter torch needs --backend array"):
        stagegen.generate((EXAMPLES / "notes.txt").read_text(), backend=backend, emit_adapter="torch")
    with pytest.raises(StagegenError, match="emit_adapter must be one of torch, jax"):
        stagegen.generate("f = x", backend="array", emit_adapter="tensorflow")

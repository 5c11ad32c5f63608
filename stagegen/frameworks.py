"""The frameworks a --backend array module can be handed to, one record each.

An `Adapter` is the source that makes a module's forward and backward one
differentiable function of a framework (PyTorch's autograd, JAX's
custom_vjp). The same text is written at the end of a module generated with
``--emit-adapter`` (render.py) and run beside a loaded module by
`stagegen.adapters`. Adding a framework is one record here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Adapter:
    """A module's forward and backward under a framework's autodiff: source
    written at a module's end (``--emit-adapter``) or run beside a module
    (`torch_function`, `jax_function`). The text reads the module's
    ``forward``, ``backward``, ``INPUTS``, ``WRT`` and ``OUTPUTS`` and defines
    the function named `function`."""

    name: str  # the framework, as --emit-adapter names it
    function: str  # what the text defines
    imports: tuple[str, ...]
    text: str
    kind: str  # what the function is ("a torch.autograd.Function")

    @property
    def says(self) -> str:
        """The module docstring's sentence on it."""
        return f"{self.function}(...) is this module as {self.kind}."


TORCH = Adapter(
    name="torch",
    function="torch_function",
    imports=("import torch", "from torch.autograd.function import once_differentiable"),
    text='''class Staged(torch.autograd.Function):
    """forward and backward under PyTorch's autograd: the cache is kept between
    them; an argument not in WRT gets no gradient (None). The backward pass is
    not itself differentiable (once_differentiable: a second derivative raises)."""

    @staticmethod
    def forward(ctx, *args):
        values, ctx.cache = forward(*args)
        return values

    @staticmethod
    @once_differentiable
    def backward(ctx, *upstream):
        grads = backward(upstream if len(OUTPUTS) > 1 else upstream[0], ctx.cache)
        out = [None] * len(INPUTS)
        for name, grad in zip(WRT, grads, strict=True):
            out[INPUTS.index(name)] = grad
        return tuple(out)


def torch_function(*args):
    """The value (a tuple for several outputs) of tensors or numbers,
    differentiable by PyTorch's autograd."""
    return Staged.apply(*args)
''',
    kind="a torch.autograd.Function (class Staged)",
)

JAX = Adapter(
    name="jax",
    function="jax_function",
    imports=("import jax", "import jax.numpy as jnp"),
    text='''@jax.custom_vjp
def jax_function(*args):
    """The value (a tuple for several outputs) of JAX arrays or numbers, as a
    jax.custom_vjp function: composable with jax.jit, jax.vmap and jax.grad."""
    return forward(*args)[0]


def _jax_forward(*args):
    values, cache = forward(*args)
    return values, (cache, args)


def _jax_backward(residuals, upstream):
    """The module's backward; an argument not in WRT gets a zero cotangent. JAX
    traces this code like any other, so jax.hessian differentiates it."""
    cache, args = residuals
    grads = backward(upstream, cache)
    out = [jnp.zeros_like(jnp.asarray(a)) for a in args]
    for name, grad in zip(WRT, grads, strict=True):
        k = INPUTS.index(name)
        out[k] = jnp.reshape(jnp.asarray(grad), jnp.shape(args[k]))
    return tuple(out)


jax_function.defvjp(_jax_forward, _jax_backward)
''',
    kind="a jax.custom_vjp function",
)

ADAPTERS: Mapping[str, Adapter] = MappingProxyType({a.name: a for a in (TORCH, JAX)})

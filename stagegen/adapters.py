"""A generated module as a differentiable function of PyTorch or JAX.

`torch_function(module)` is a callable backed by a `torch.autograd.Function`
and `jax_function(module)` a `jax.custom_vjp` function: their forward is the
module's `forward` (the cache kept for the backward pass), their backward the
module's `backward` with the upstream gradients as `dout`. An argument that is
not in the module's WRT gets no gradient (`None` in PyTorch, zeros in JAX).
The module must have been generated with ``--backend array``, whose functions
compute in the namespace of the arrays they are given. The backward pass is
itself not differentiated: a second derivative through the adapter raises
(PyTorch: `once_differentiable`; JAX: the backward runs the module's own code,
which JAX can trace again, so `jax.hessian` of it works).
"""

from __future__ import annotations

import types

from .backends import BACKENDS
from .errors import UsageError
from .fresh import record


def _checked(module: types.ModuleType) -> tuple[tuple[int, ...], bool]:
    """The positions of the WRT inputs among the arguments, and whether the
    module has several outputs; a module of another backend is refused."""
    try:
        backend = record(module.__doc__).options.backend
    except UsageError:
        raise UsageError(
            f"{getattr(module, '__name__', module)!r} is not a module stagegen generated",
            hint="pass the module stagegen.load(...) returns, or one a file stagegen wrote holds",
        ) from None
    if not BACKENDS[backend].namespace:
        raise UsageError(
            f"the module was generated with --backend {backend}; an adapter needs one "
            "generated with --backend array (it computes on PyTorch or JAX arrays)",
            hint="generate it again with --backend array",
        )
    positions = tuple(module.INPUTS.index(name) for name in module.WRT)
    return positions, len(module.OUTPUTS) > 1


def torch_function(module: types.ModuleType):
    """A callable of the module's inputs (tensors or numbers) returning its
    value (a tuple for several outputs), differentiable by PyTorch's autograd."""
    import torch
    from torch.autograd.function import once_differentiable

    positions, several = _checked(module)
    n = len(module.INPUTS)

    class Staged(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            values, cache = module.forward(*args)
            ctx.cache = cache
            return values

        @staticmethod
        @once_differentiable
        def backward(ctx, *upstream):
            grads = module.backward(upstream if several else upstream[0], ctx.cache)
            out = [None] * n
            for k, g in zip(positions, grads, strict=True):
                out[k] = g
            return tuple(out)

    def staged(*args):
        return Staged.apply(*args)

    staged.__doc__ = f"{module.__doc__.splitlines()[0]} (a torch.autograd.Function)"
    return staged


def jax_function(module: types.ModuleType):
    """A `jax.custom_vjp` function of the module's inputs, composable with
    `jax.jit`, `jax.grad` and `jax.vmap`."""
    import jax
    import jax.numpy as jnp

    positions, _ = _checked(module)

    @jax.custom_vjp
    def staged(*args):
        return module.forward(*args)[0]

    def forward(*args):
        values, cache = module.forward(*args)
        return values, (cache, args)

    def backward(residuals, upstream):
        cache, args = residuals
        grads = module.backward(upstream, cache)
        out = [jnp.zeros_like(jnp.asarray(a)) for a in args]
        for k, g in zip(positions, grads, strict=True):
            out[k] = jnp.reshape(jnp.asarray(g), jnp.shape(args[k]))
        return tuple(out)

    staged.defvjp(forward, backward)
    return staged


__all__ = ["torch_function", "jax_function"]

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
from .frameworks import JAX, TORCH, Adapter
from .fresh import record


def _checked(module: types.ModuleType) -> None:
    """A module stagegen generated with --backend array; any other is refused."""
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


def _adapted(module: types.ModuleType, adapter: Adapter):
    """The adapter's function, its text run beside `module`'s own functions."""
    _checked(module)
    scope = {name: getattr(module, name) for name in ("forward", "backward", "INPUTS", "WRT", "OUTPUTS")}
    exec("\n".join(adapter.imports) + "\n\n\n" + adapter.text, scope)  # stagegen's own text
    function = scope[adapter.function]
    function.__doc__ = f"{module.__doc__.splitlines()[0]} ({adapter.kind})"
    return function


def torch_function(module: types.ModuleType):
    """A callable of the module's inputs (tensors or numbers) returning its
    value (a tuple for several outputs), differentiable by PyTorch's autograd."""
    return _adapted(module, TORCH)


def jax_function(module: types.ModuleType):
    """A `jax.custom_vjp` function of the module's inputs, composable with
    `jax.jit`, `jax.grad` and `jax.vmap`."""
    return _adapted(module, JAX)


__all__ = ["torch_function", "jax_function"]

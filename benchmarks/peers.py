"""The peers stagegen is compared with, each imported only when a table needs it.

The peers are the optional `bench` extra (`pip install -e ".[bench]"`); CI
installs only `[test]`, so a peer that is not installed is a skipped row, not
an error. JAX runs in float64 (`jax_enable_x64`), like every other candidate.
"""

from __future__ import annotations

import importlib
import importlib.metadata

NOT_INSTALLED = "skipped (not installed)"
PACKAGES = (
    "stagegen",
    "sympy",
    "black",
    "numpy",
    "numba",
    "jax",
    "jaxlib",
    "torch",
    "autograd",
    "casadi",
    "numexpr",
)


class Skip(Exception):
    """A candidate that cannot run here; the message is the table's reason."""


def need(name: str):
    """The module `name`, or Skip if it is not installed."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        raise Skip(NOT_INSTALLED) from None
    if name == "jax":
        module.config.update("jax_enable_x64", True)
    return module


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def threads() -> str:
    """Thread settings that change the array figures."""
    out = []
    try:
        import torch

        out.append(f"torch intra-op threads {torch.get_num_threads()}")
    except ImportError:
        pass
    try:
        import numexpr

        out.append(f"numexpr threads {numexpr.get_num_threads()}")
    except ImportError:
        pass
    return ", ".join(out) or "no threaded peer installed"

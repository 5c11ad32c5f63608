"""pytest-friendly checks of generated modules (see `stagegen.verify` and `stagegen.fresh`).

from stagegen.testing import assert_fresh, assert_matches_sympy

def test_my_gradient():
    assert_matches_sympy("generated/loss_grad.py", points=50)

def test_my_gradient_is_fresh():
    assert_fresh("generated/loss_grad.py")
"""

from __future__ import annotations

from .fresh import differences
from .verify import Report, verify

__all__ = ["assert_fresh", "assert_matches_sympy"]


def assert_matches_sympy(module_or_path, *, points: int = 20, seed: int = 0, **options) -> Report:
    """Raise AssertionError with the check table unless every value, gradient and
    stage adjoint of the module matches SymPy and finite differences.

    `module_or_path`: a generated module, the path of one, source text or a
    SymPy expression (then generated with `options`)."""
    report = verify(module_or_path, points=points, seed=seed, **options)
    if not report.ok:
        raise AssertionError("generated gradient code does not match SymPy:\n" + report.table())
    return report


def assert_fresh(path) -> None:
    """Raise AssertionError naming what differs unless the generated module at
    `path` is what its recorded source and options generate with the installed
    stagegen (its source file unchanged since; the version is not compared)."""
    reasons = differences(path)
    if reasons:
        raise AssertionError(f"{path} is stale: " + "; ".join(reasons))

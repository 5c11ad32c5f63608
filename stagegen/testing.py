"""pytest-friendly checks of generated modules (see `stagegen.verify`).

from stagegen.testing import assert_matches_sympy

def test_my_gradient():
    assert_matches_sympy("generated/loss_grad.py", points=50)
"""

from __future__ import annotations

from .verify import Report, verify

__all__ = ["assert_matches_sympy"]


def assert_matches_sympy(module_or_path, *, points: int = 20, seed: int = 0, **options) -> Report:
    """Raise AssertionError with the check table unless every value, gradient and
    stage adjoint of the module matches SymPy and finite differences.

    `module_or_path`: a generated module, the path of one, source text or a
    SymPy expression (then generated with `options`)."""
    report = verify(module_or_path, points=points, seed=seed, **options)
    if not report.ok:
        raise AssertionError("generated gradient code does not match SymPy:\n" + report.table())
    return report

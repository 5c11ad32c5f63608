"""Which names a user may give inputs and stages, and why a name is refused.

A user name becomes a Python identifier in the generated module unchanged
(names.py never renames it), so it must be one Python reads back as the same
name: an identifier, not a keyword, already in NFKC form (Python folds ``ℌ``
to ``H`` and ``ｘ`` to ``x`` when it reads source), not a dunder, and none of the
global names the generated functions read (their error handler, the numpy
backend's helpers and the instrumented `locals()`), which the template writes
as they are. Everything
else the module uses (``math``, ``dout``, ``cache``, ...) gives way to a user
name in names.py; ``abs``, ``max`` and ``min`` are function names of the input
language already. This module only answers questions; callers raise.
"""

from __future__ import annotations

import keyword
import unicodedata

# Global names read inside the generated functions (tests/test_names.py checks
# the list against the bytecode of generated modules).
GLOBALS = ("_locate", "_unbroadcast", "_erf", "ArithmeticError", "ValueError", "locals")


def problem(name: str) -> str | None:
    """Why `name` cannot name an input or a stage, or None if it can."""
    if not name.isidentifier():
        return f"'{name}' is not a Python identifier"
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword"
    if unicodedata.normalize("NFKC", name) != name:
        folded = unicodedata.normalize("NFKC", name)
        return f"Python reads the name '{name}' as '{folded}'"
    if name.startswith("__") and name.endswith("__"):
        return f"the name '{name}' is reserved (double underscores)"
    if name in GLOBALS:
        return f"'{name}' is a name the generated functions use"
    return None

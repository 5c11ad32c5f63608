"""Which names a user may give inputs and stages, and why a name is refused.

A user name becomes a Python identifier in the generated module unchanged
(names.py never renames it), so it must be one Python reads back as the same
name: an identifier, not a keyword, already in NFKC form (Python folds ``ℌ``
to ``H`` and ``ｘ`` to ``x`` when it reads source), not a dunder, and not the
one module-level helper every generated function calls by name. Everything
else the module uses (``math``, ``dout``, ``cache``, ...) gives way to a user
name in names.py. This module only answers questions; callers raise.
"""

from __future__ import annotations

import keyword
import unicodedata

HELPERS = ("_locate",)  # module-level functions the generated functions call by name


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
    if name in HELPERS:
        return f"'{name}' is the name of a helper function of the generated module"
    return None

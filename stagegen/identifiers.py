"""Every name that reaches a generated module passes through here.

A user's name (an input, a stage, an output; from a file, a SymPy symbol,
``inputs=`` or ``wrt=``) is written into the module unchanged, so `problem`
refuses one that Python would not read back as the same name or that would
change what the module does: not an identifier, a keyword, not in NFKC form
(Python folds ``ℌ`` to ``H`` and ``ｘ`` to ``x`` when it reads source), a
dunder, a function or constant of the input language (``abs``, ``max`` and
``min`` are read as Python's builtins), or one of the global names the
generated functions read (`GLOBALS`: their error handler, the numpy backend's
helpers, the builtins they call).

A generated name (a stage named after its gate, an adjoint ``dv``, the
module's own ``dout``, ``cache`` and module alias) is chosen by a `Namespace`,
which compares names in NFKC form, as Python does, and makes a generated name
give way (a trailing underscore, or the caller's next choice) instead of
failing.
"""

from __future__ import annotations

import builtins
import keyword
import unicodedata
from collections.abc import Iterable

import sympy as sp

from .errors import UsageError
from .gates import BY_SOURCE, CONSTANTS

# Global names read inside the generated functions (tests/test_names.py checks
# the list against the bytecode of generated modules).
GLOBALS = (
    "_locate",
    "_unbroadcast",
    "_check_shapes",
    "_check_indexes",
    "_add_at",
    "_erf",
    "_erfc",
    "_erf_array",
    "_erfc_array",
    "_erf_blocks",
    "_erf_block",
    "_erfc_block",
    "_erfc_tail",
    "_erf_small",
    "_lgamma",
    "_gamma",
    "_digamma",
    "_trigamma",
    "_lgamma_array",
    "_lgamma_block",
    "_gamma_float",
    "_digamma_array",
    "_trigamma_array",
    "_in_blocks",
    "_digamma_block",
    "_trigamma_block",
    "_polygamma",
    "_softmax",
    "_log_softmax",
    "_logsumexp",
    "_prod_others",
    "_pow",
    "_an_array",
    "_forward_arrays",
    "_backward_arrays",
    "_value_and_grad_arrays",
    "_no_arrays",
    "_prange",
    "_BLOCK",
    "isinstance",
    "ArithmeticError",
    "ValueError",
    "TypeError",
    "locals",
)

# The module's own names: a generated name never takes one (a user name may;
# names.assign then moves the module's name aside).
MODULE = (
    "math",
    "np",
    "numpy",
    "dout",
    "cache",
    "forward",
    "backward",
    "value_and_grad",
    "INPUTS",
    "WRT",
    "OUTPUT",
    "OUTPUTS",
    "SHAPES",
    "INDEXES",
)

# Names a generated identifier never takes, so that it shadows nothing.
_RESERVED = frozenset(
    [*keyword.kwlist, *keyword.softkwlist, *dir(builtins), *GLOBALS, *MODULE, *BY_SOURCE, *CONSTANTS]
)


def key(name: str) -> str:
    """The form Python compares identifiers in (NFKC)."""
    return unicodedata.normalize("NFKC", name)


def problem(name) -> str | None:
    """Why `name` cannot be a user's name in a generated module, or None if it can."""
    if not isinstance(name, str):
        return f"{name!r} is not a name"
    if not name.isidentifier():
        return f"{shown(name)} is not a Python identifier"
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword"
    if key(name) != name:
        return f"Python reads the name '{name}' as '{key(name)}'"
    if name.startswith("__") and name.endswith("__"):
        return f"the name '{name}' is reserved (double underscores)"
    if name in GLOBALS:
        return f"'{name}' is a name the generated functions use"
    if name in BY_SOURCE and not BY_SOURCE[name].free_name:
        return f"'{name}' is a function name"
    if name in CONSTANTS:
        return f"'{name}' is a constant"
    return None


def shown(name: str) -> str:
    """`name` quoted for a message; with escapes if it holds quotes or control characters."""
    return repr(name) if any(not c.isprintable() or c in "'\\" for c in name) else f"'{name}'"


def name_list(value, what: str) -> tuple[str, ...] | None:
    """The names of an ``inputs=`` or ``wrt=`` argument (`what`, as the user wrote
    it): None, a comma-separated string, or a sequence of names and SymPy
    symbols; each one a valid user name."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, sp.Symbol):
        items = [value]
    else:
        try:
            items = list(value)
        except TypeError:
            raise UsageError(
                f"{what} must be names separated by commas or a sequence of names, "
                f"not {type(value).__name__}"
            ) from None
    names = tuple(v.name if isinstance(v, sp.Symbol) else v for v in items)
    for name in names:
        why = problem(name)
        if why:
            raise UsageError(f"{why} (in {what})", hint="input names are Python identifiers, e.g. x, w1")
    if not names:
        raise UsageError(f"{what} names no input")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{what} names {', '.join(twice)} more than once")
    return names


class Namespace:
    """The names of one module: the user's, kept, and generated ones, which give way."""

    def __init__(self, user: Iterable[str]):
        self._taken = {key(n) for n in user}

    def taken(self, name: str) -> bool:
        return key(name) in self._taken

    def fits(self, name: str) -> bool:
        """Whether `name`, as Python reads it, is an identifier this module can generate."""
        name = key(name)
        return (
            name.isidentifier()
            and name not in self._taken
            and name not in _RESERVED
            and not (name.startswith("__") and name.endswith("__"))
        )

    def take(self, name: str) -> str:
        """Claim `name` (checked with `fits`), in the form Python reads it."""
        name = key(name)
        assert self.fits(name), f"generated name {name!r} is not free"
        self._taken.add(name)
        return name

    def own(self, base: str) -> str:
        """One of the module's own names (`MODULE`): `base`, or `base` with
        underscores appended until no name taken so far has its form."""
        name = base
        while key(name) in self._taken:
            name += "_"
        self._taken.add(name)
        return name

    def free(self, base: str) -> str:
        """`base`, or `base` with underscores appended until it fits, claimed."""
        name = key(base)
        assert name.isidentifier() and not name.startswith("__"), f"cannot generate names from {base!r}"
        while not self.fits(name):
            name += "_"
        return self.take(name)

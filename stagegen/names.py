"""Every identifier in a generated module, decided in one place.

Order of precedence: names the user gave (inputs, stages) are never changed;
then the module's fixed names (``dout``, ``cache``, the ``math`` module), which
give way to a user name with a trailing underscore; then names generated for
unnamed stages from the gate's hint (``sigy``, ``xpy``, ``xpysqr``, ``invden``),
short and unique, or ``t<k>`` for stage k; last the adjoints, ``d`` + name,
with underscores appended until they collide with nothing.
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass

import sympy as sp

from .differentiate import Backward
from .gates import REGISTRY
from .ir import Const, Graph

MAX_HINT = 12  # longer structural names are harder to read than t<k>

# Names a generated identifier must never take, so it shadows nothing.
_RESERVED = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | {
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
    }
)


@dataclass(frozen=True)
class Names:
    values: tuple[str, ...]  # by value id
    adjoints: dict[int, str]  # by value id; the output's adjoint is `dout`
    dout: str
    cache: str
    module: str  # the name the backend's module (math, or numpy) is imported as

    def adjoint(self, backward: Backward, value: int) -> str:
        return self.adjoints[backward.alias.get(value, value)]


def _free(base: str, taken: set[str]) -> str:
    name = base
    while name in taken or name in _RESERVED:
        name += "_"
    return name


def _hint_text(op, names: list[str]) -> str | None:
    if isinstance(op, Const):
        v = op.value
        return str(int(v)) if isinstance(v, sp.Integer) and v >= 0 else None
    return names[op]


def assign(graph: Graph, backward: Backward, backend: str = "math") -> Names:
    """Names for every value and adjoint of `graph` and `backward`."""
    user = {i.name for i in graph.inputs} | {s.name for s in graph.stages if s.name}
    taken = set(user)

    def fixed(base: str) -> str:
        name = base
        while name in user:
            name += "_"
        taken.add(name)
        return name

    module, dout, cache = fixed("np" if backend == "numpy" else "math"), fixed("dout"), fixed("cache")

    names = [i.name for i in graph.inputs]
    for k, stage in enumerate(graph.stages):
        if stage.name:
            names.append(stage.name)
            continue
        texts = [_hint_text(op, names) for op in stage.operands]
        hint = stage.role
        if not _good(hint, taken) and None not in texts:
            hint = REGISTRY[stage.gate].hint(tuple(texts), tuple(stage.params))
        if not _good(hint, taken):
            hint = _free(f"t{k + 1}", taken)
        taken.add(hint)
        names.append(hint)

    adjoints = {graph.output: dout}
    targets = sorted({line.target for line in backward.lines} | set(backward.wrt))
    for value in targets:
        name = "d" + names[value]
        while name in taken or name in _RESERVED:
            name += "_"
        taken.add(name)
        adjoints[value] = name
    return Names(tuple(names), adjoints, dout, cache, module)


def _good(hint: str | None, taken: set[str]) -> bool:
    return (
        bool(hint)
        and hint.isidentifier()
        and len(hint) <= MAX_HINT
        and hint not in taken
        and hint not in _RESERVED
        # dx must read as "the adjoint of x", never as a forward value
        and not (hint.startswith("d") and hint[1:] in taken)
    )

"""Every identifier in a generated module, decided in one place.

Order of precedence: names the user gave (inputs, stages) are never changed;
then the module's fixed names (``dout``, ``cache``, the ``math`` module), which
give way to a user name with a trailing underscore; then names generated for
unnamed stages from the gate's hint (``sigy``, ``xpy``, ``xpysqr``, ``invden``),
short and unique, or ``t<k>`` for stage k; last the adjoints, ``d`` + name,
with underscores appended until they collide with nothing. Which names are
free, compared as Python compares them, is `identifiers.Namespace`'s call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backends import BACKENDS
from .differentiate import Backward
from .errors import UsageError
from .expr import Num
from .gates import REGISTRY
from .identifiers import Namespace
from .ir import Graph

MAX_HINT = 12  # longer structural names are harder to read than t<k>


@dataclass(frozen=True)
class Names:
    values: tuple[str, ...]  # by value id
    adjoints: dict[int, str]  # by value id; one output's adjoint is `dout`
    dout: str
    cache: str
    module: str  # the name the backend's module is imported as
    tangents: dict[int, str] = field(default_factory=dict)  # forward mode: by value id (t + name)
    jacobian: dict[tuple[int, int], str] = field(default_factory=dict)  # (output, input) -> its entry's name
    index: str = ""  # value_and_jacobian of arrays: the loop's index over an output's elements
    adjoint_tangents: dict[int, str] = field(default_factory=dict)  # hvp, hessian: by value id (t + dv)
    hessian: dict[tuple[int, int], str] = field(default_factory=dict)  # (input, input) -> its entry's name
    dtype: str = ""  # the array API: the float dtype of the arguments, beside the namespace

    def adjoint(self, backward: Backward, value: int) -> str:
        return self.adjoints[backward.alias.get(value, value)]


def _hint_text(op, names: list[str]) -> str | None:
    if isinstance(op, Num):  # a non-negative integer reads well in a name (xpy2); nothing else does
        return str(op.value) if type(op.value) is int and op.value >= 0 else None
    return names[op]


def assign(graph: Graph, backward: Backward, backend: str = "math", functions: tuple[str, ...] = ()) -> Names:
    """Names for every value and adjoint of `graph` and `backward`, and what
    the `functions` asked for (options.FUNCTIONS) need: the tangents of every
    value (jvp), the Jacobian's entries (d<out>_d<input>)."""
    user = [i.name for i in graph.inputs] + [s.name for s in graph.stages if s.name]
    hidden = [name for name in user if name in BACKENDS[backend].reserved]
    if hidden:
        raise UsageError(
            f"the name '{hidden[0]}' would hide the builtin that the {BACKENDS[backend].title} "
            "backend's functions read beside the listing",
            hint=f"rename '{hidden[0]}', or generate with --backend math",
        )
    space = Namespace(user)
    module = space.own(BACKENDS[backend].alias)
    dout, cache = space.own("dout"), space.own("cache")
    dtype = space.own("dtype") if BACKENDS[backend].namespace else ""

    names = [i.name for i in graph.inputs]
    for k, stage in enumerate(graph.stages):
        if stage.name:
            names.append(stage.name)
            continue
        texts = [_hint_text(op, names) for op in stage.operands]
        hint = None if REGISTRY[stage.gate].written_name else stage.role
        if not _good(hint, space) and None not in texts:
            hint = REGISTRY[stage.gate].hint(tuple(texts), tuple(stage.params))
        names.append(space.take(hint) if _good(hint, space) else space.free(f"t{k + 1}"))

    # one output's adjoint is `dout` itself; several outputs' are unpacked from it
    if len(graph.outputs) == 1:
        adjoints = {graph.output: dout}
    else:
        adjoints = {out: space.free("d" + names[out]) for out in graph.outputs}
    targets = sorted(({line.target for line in backward.lines} | set(backward.wrt)) - set(graph.outputs))
    for value in targets:
        adjoints[value] = space.free("d" + names[value])
    tangents: dict[int, str] = {}
    if set(functions) & {"jvp", "jacobian", "jacobian_diag", "hvp", "hessian"}:
        for value in range(len(names)):
            tangents[value] = space.free("t" + names[value])
    jacobian: dict[tuple[int, int], str] = {}
    if "jacobian" in functions or "jacobian_diag" in functions:
        for out in graph.outputs:
            for k in backward.wrt:
                jacobian[(out, k)] = space.free(f"d{names[out]}_d{names[k]}")
    index = space.free("index") if "jacobian" in functions and BACKENDS[backend].arrays else ""
    adjoint_tangents: dict[int, str] = {}
    hessian: dict[tuple[int, int], str] = {}
    if "hvp" in functions or "hessian" in functions:
        for value, adjoint in sorted(adjoints.items()):
            adjoint_tangents[value] = space.free("t" + adjoint)
    if "hessian" in functions:
        out = names[graph.outputs[0]]
        for i in backward.wrt:
            for j in backward.wrt:
                hessian[(i, j)] = space.free(f"d2{out}_d{names[i]}d{names[j]}")
    return Names(
        tuple(names),
        adjoints,
        dout,
        cache,
        module,
        tangents,
        jacobian,
        index,
        adjoint_tangents,
        hessian,
        dtype=dtype,
    )


def _good(hint: str | None, space: Namespace) -> bool:
    return (
        bool(hint)
        and space.fits(hint)
        and len(hint) <= MAX_HINT
        # dx must read as "the adjoint of x", never as a forward value
        and not (hint.startswith("d") and space.taken(hint[1:]))
    )

"""The composition of the passes, top to bottom: parse -> lower ->
differentiate -> name -> plan -> render. `build` is the one declaration of
the generation options (every API entry point takes them as it does); the
passes themselves are in their own modules (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import inspect
import types
from dataclasses import dataclass

from sympy.core.cache import clear_cache

from .backends import BACKENDS
from .differentiate import Backward, differentiate
from .errors import UsageError
from .gates import REGISTRY
from .identifiers import name_list
from .ir import Graph, Input
from .lower import check_applications, lower
from .modules import module_from_text
from .names import Names, assign
from .options import Options
from .parse import Program, from_sympy, is_sympy, parse
from .plan import plan
from .render import render, staged_source


@dataclass(frozen=True)
class Build:
    """Everything one generation produced, pass by pass."""

    program: Program
    graph: Graph
    backward: Backward
    names: Names
    options: Options
    text: str
    output: str | None = None  # the file it is written to, as its docstring names it

    def __repr__(self) -> str:  # the dataclass's would print every SymPy tree, recursively
        return (
            f"<Build of {self.program.filename}: {len(self.graph.inputs)} inputs, "
            f"{len(self.graph.stages)} stages, {self.options.command(self.program.filename, self.output)}>"
        )


def build(
    source,
    *,
    inputs=None,
    wrt=None,
    backend: str = "math",
    style: str = "seed",
    gates: str = "grouped",
    with_=(),
    emit_adapter: str = "",
    filename: str | None = None,
    output: str | None = None,
) -> Build:
    """Run every pass on `source` (input-language text or a SymPy expression).

    `inputs` (the argument order; every input) and `wrt` (the gradients to
    return) are comma-separated names or sequences of names and SymPy
    symbols; `backend`, `style`, `gates`, `with_` (the functions asked
    for beside forward and backward: "jacobian", "jvp") and `emit_adapter`
    ("torch", "jax") are those of `Options`; `filename`
    names the source in messages and in the docstring; `output`, the file
    the module will be written to, is named in the docstring's command (from
    the same folder as `filename`), so that its source can be found from it."""
    with _collector_paused():
        options = Options(backend=backend, style=style, gates=gates, with_=with_, emit_adapter=emit_adapter)
        return _build(source, inputs, wrt, options, filename, output)


@contextlib.contextmanager
def _collector_paused():
    """The passes make millions of short-lived objects and no garbage cycles; the
    cycle collector's full passes over them made generation superlinear in
    the number of stages. It runs again, as before, once the build is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(source, inputs, wrt, options: Options, filename, output) -> Build:
    # SymPy's cache hands out equal objects made by earlier builds, whose
    # subtrees carry none of this program's places and roles: every build
    # starts from an empty cache, so its output depends on its input alone
    clear_cache()
    wrt, inputs = name_list(wrt, "wrt="), name_list(inputs, "inputs=")
    options = dataclasses.replace(options, wrt=wrt)
    style = options.style
    if is_sympy(source):
        filename = filename or "<sympy>"
        source, inputs = _sympy_source(from_sympy(source, inputs, filename), options), None
    elif not isinstance(source, str):
        raise UsageError(f"expected source text or a SymPy expression, got {type(source).__name__}")
    program = _reorder(parse(source, filename or "<input>"), inputs)
    options, graph = _lowered(program, options)
    backend = options.backend
    backward = differentiate(graph, _wrt_ids(graph, wrt), style)
    names = assign(graph, backward, backend, options.with_)
    try:
        listing = plan(graph, backward, names, options)
    except UsageError as exc:  # a function asked for that this program cannot have: say which file
        if exc.file or exc.span:
            raise
        raise UsageError(exc.message, hint=exc.hint, file=program.filename) from None
    text = render(listing, program, graph, options, output, _broadcasts(program, wrt, options, listing))
    return Build(program, graph, backward, names, options, text, output)


def _broadcasts(program: Program, wrt, options: Options, listing) -> object | None:
    """The listing of value_and_grad for inputs a backend's loops do not take
    (Backend.broadcasts_by: shapes that differ, lists), planned for that backend
    from the same program; None where the module has no such fallback."""
    by = BACKENDS[options.backend].broadcasts_by
    if not by or not listing.fused:
        return None
    options = dataclasses.replace(options, backend=by, with_=(), emit_adapter="")
    graph = lower(program, options.gates, by)
    backward = differentiate(graph, _wrt_ids(graph, wrt), options.style)
    return plan(graph, backward, assign(graph, backward, by), options)


def _lowered(program: Program, options: Options) -> tuple[Options, Graph]:
    """The options a program is generated with, and its graph: a program over
    arrays (an array input declared, or an array gate) asked of a backend without
    arrays that names another for them (Backend.arrays_by) gets that backend's
    listing, the options recording which was asked for."""
    by = BACKENDS[options.backend].arrays_by
    if by:
        graph = lower(program, options.gates, by)
        shaped = any(i.shape for i in graph.inputs)
        if shaped or any(REGISTRY[stage.gate].arrays for stage in graph.stages):
            return dataclasses.replace(options, backend=by, requested=options.backend), graph
    return options, lower(program, options.gates, options.backend)


def _sympy_source(program: Program, options: Options) -> str:
    """A SymPy expression as the input-language text a module is generated from
    (and records, so that it regenerates): as the front door prints it, or, too
    large or deep for one expression, as its stages, one per line."""
    for statement in program.statements:
        check_applications(statement.expr)
    if program.shown is not None:
        declarations = [f"{i.name}: scalar" for i in program.inputs]  # the argument order
        return "\n".join(declarations + list(program.shown)) + "\n"
    graph = lower(program, options.gates, options.backend)
    backward = differentiate(graph, None, "seed")
    return staged_source(plan(graph, backward, assign(graph, backward, options.backend), options))


def generate(source, **options) -> str:
    """The generated module's source text for `source` (`options` as `build` takes them)."""
    return build(source, **options).text


def load(source, **options) -> types.ModuleType:
    """Generate a module for `source` and import it (for notebooks and tests;
    `options` as `build` takes them)."""
    return module_from_text(generate(source, **options), options.get("filename") or "<stagegen>")


def _reorder(program: Program, order: tuple[str, ...] | None) -> Program:
    if order is None:
        return program
    known = {i.name: i for i in program.inputs}
    listed = set(order)
    missing = [n for n in known if n not in listed]
    if missing:
        raise UsageError(f"inputs= misses {', '.join(missing)}; list every input of the program")
    stages = [n for n in order if n in {s.name for s in program.statements}]
    if stages:
        raise UsageError(f"inputs= names {', '.join(stages)}, which the program defines as a stage")
    inputs = tuple(known.get(n, Input(n)) for n in order)
    return dataclasses.replace(program, inputs=inputs)


def _wrt_ids(graph: Graph, wrt: tuple[str, ...] | None) -> tuple[int, ...] | None:
    """The inputs gradients are for: those named, by default every input but
    the index arrays (integers: they have none)."""
    if wrt is None:
        return tuple(k for k, i in enumerate(graph.inputs) if not i.integer)
    index = {i.name: k for k, i in enumerate(graph.inputs)}
    integers = [n for n in wrt if n in index and graph.inputs[index[n]].integer]
    if integers:
        raise UsageError(
            f"--wrt names {', '.join(repr(n) for n in integers)}, declared index(...): "
            "an index array is integers and has no gradient",
            hint="leave it out of --wrt",
        )
    unknown = [n for n in wrt if n not in index]
    if unknown:
        raise UsageError(
            f"--wrt names {', '.join(repr(n) for n in unknown)}, which "
            f"{'is not an input' if len(unknown) == 1 else 'are not inputs'}; "
            f"the inputs are {', '.join(index)}"
        )
    return tuple(index[n] for n in wrt)


# The generation options, by the names `build` takes them.
OPTIONS = tuple(name for name in inspect.signature(build).parameters if name != "source")

"""stagegen: readable, staged gradient code from a math expression.

The public API composes the passes of DESIGN.md, top to bottom:
parse -> lower -> differentiate -> name -> emit (-> verify). Nothing else
lives here.
"""

from __future__ import annotations

import contextlib
import gc
import types
from dataclasses import dataclass

import sympy as sp

from .diagram import Diagram, diagram
from .differentiate import Backward, differentiate
from .emit import emit
from .errors import InternalError, ParseError, StagegenError, UnsupportedError, UsageError
from .gates import REGISTRY
from .identifiers import name_list
from .ir import Graph, Input
from .lower import lower
from .modules import module_from_text
from .names import Names, assign
from .options import Options
from .parse import Program, from_sympy, parse
from .trace import Trace, trace
from .verify import Report, verify

__all__ = [
    "generate",
    "load",
    "build",
    "verify",
    "Report",
    "trace",
    "Trace",
    "diagram",
    "Diagram",
    "Options",
    "StagegenError",
    "ParseError",
    "UnsupportedError",
    "UsageError",
    "InternalError",
    "sigmoid",
    "softplus",
    "relu",
]
__version__ = "0.1.0"

# SymPy functions for gates SymPy lacks, for building inputs as SymPy objects.
sigmoid = REGISTRY["sigmoid"].function
softplus = REGISTRY["softplus"].function
relu = REGISTRY["relu"].function


@dataclass(frozen=True)
class Build:
    """Everything one generation produced, pass by pass."""

    program: Program
    graph: Graph
    backward: Backward
    names: Names
    options: Options
    text: str

    def __repr__(self) -> str:  # the dataclass's would print every SymPy tree, recursively
        return (
            f"<Build of {self.program.filename}: {len(self.graph.inputs)} inputs, "
            f"{len(self.graph.stages)} stages, {self.options.command(self.program.filename)}>"
        )


def build(
    source,
    *,
    inputs=None,
    wrt=None,
    backend: str = "math",
    style: str = "seed",
    gates: str = "grouped",
    filename: str | None = None,
) -> Build:
    """Run every pass on `source` (input-language text or a SymPy expression)."""
    with _collector_paused():
        return _build(source, inputs, wrt, backend, style, gates, filename)


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


def _build(source, inputs, wrt, backend, style, gates, filename) -> Build:
    wrt, inputs = name_list(wrt, "wrt="), name_list(inputs, "inputs=")
    options = Options(backend=backend, style=style, gates=gates, wrt=wrt)
    if isinstance(source, str):
        program = _reorder(parse(source, filename or "<input>"), inputs)
    elif isinstance(source, sp.Basic):
        program = from_sympy(source, inputs, filename or "<sympy>")
    else:
        raise UsageError(f"expected source text or a SymPy expression, got {type(source).__name__}")
    graph = lower(program, gates, backend)
    backward = differentiate(graph, _wrt_ids(graph, wrt), style)
    names = assign(graph, backward, backend)
    return Build(program, graph, backward, names, options, emit(program, graph, backward, names, options))


def generate(
    source,
    *,
    inputs=None,
    wrt=None,
    backend: str = "math",
    style: str = "seed",
    gates: str = "grouped",
    filename: str | None = None,
) -> str:
    """The generated module's source text for `source`."""
    return build(
        source, inputs=inputs, wrt=wrt, backend=backend, style=style, gates=gates, filename=filename
    ).text


def load(source, **options) -> types.ModuleType:
    """Generate a module for `source` and import it (for notebooks and tests)."""
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
    return Program(program.filename, program.text, inputs, program.statements, program.spans)


def _wrt_ids(graph: Graph, wrt: tuple[str, ...] | None) -> tuple[int, ...] | None:
    if wrt is None:
        return None
    index = {i.name: k for k, i in enumerate(graph.inputs)}
    unknown = [n for n in wrt if n not in index]
    if unknown:
        raise UsageError(
            f"--wrt names {', '.join(repr(n) for n in unknown)}, which "
            f"{'is not an input' if len(unknown) == 1 else 'are not inputs'}; "
            f"the inputs are {', '.join(index)}"
        )
    return tuple(index[n] for n in wrt)

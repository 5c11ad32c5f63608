"""stagegen: readable, staged gradient code from a math expression.

The public API: `generate`, `build` and `load` (stagegen.pipeline, the passes
composed), `verify`, `trace` and `diagram`, and the errors they raise.
docs/ARCHITECTURE.md explains the passes. Nothing else lives here.
"""

from __future__ import annotations

from .diagram import Diagram, diagram
from .errors import InternalError, ParseError, StagegenError, UnsupportedError, UsageError
from .gates import REGISTRY
from .modules import module_from_text
from .options import Options
from .pipeline import Build, build, generate, load
from .trace import Trace, trace
from .verify import Report, verify
from .version import VERSION

__all__ = [
    "generate",
    "load",
    "build",
    "Build",
    "module_from_text",
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
__version__ = VERSION

# SymPy functions for gates SymPy lacks, for building inputs as SymPy objects.
sigmoid = REGISTRY["sigmoid"].function
softplus = REGISTRY["softplus"].function
relu = REGISTRY["relu"].function

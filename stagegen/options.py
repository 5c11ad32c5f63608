"""Generation options: their one definition, validation, and command-line form.

The CLI adds these arguments to its parser, the emitter writes the command
that regenerates a module into its docstring, and `verify` reads that command
back from a module it is given; all three use the functions here. The command
is one line of shell words (`shlex`): the file as stagegen shows file names
(`files.shown`: a character that would break the line is U+FFFD), behind
``--`` when it starts with a dash.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, fields

from . import backends
from .errors import UsageError
from .files import shown
from .frameworks import ADAPTERS
from .identifiers import name_list

BACKENDS = tuple(backends.BACKENDS)
STYLES = ("seed", "compact")
GATES = ("grouped", "fine")
# functions a module has when asked for (--with), beside forward, backward and value_and_grad
FUNCTIONS = ("jacobian", "jacobian_diag", "jvp", "hvp", "hessian")


@dataclass(frozen=True)
class Options:
    wrt: tuple[str, ...] | None = None  # None: every input
    backend: str = "math"
    style: str = "seed"
    gates: str = "grouped"
    with_: tuple[str, ...] = ()  # FUNCTIONS asked for, in FUNCTIONS order
    emit_adapter: str = ""  # ADAPTERS: the module also as that framework's differentiable function
    # the backend asked for, where the listing is another's (`backend`): a program
    # over arrays asked of a backend without arrays (Backend.arrays_by); not an option
    requested: str = ""

    def __post_init__(self):
        for field, allowed in (("backend", BACKENDS), ("style", STYLES), ("gates", GATES)):
            value = getattr(self, field)
            if value not in allowed:
                raise UsageError(f"{field} must be one of {', '.join(allowed)}, not {value!r}")
        if self.requested and self.requested not in BACKENDS:
            raise UsageError(f"requested must be one of {', '.join(BACKENDS)}, not {self.requested!r}")
        object.__setattr__(self, "with_", functions(self.with_))
        if self.emit_adapter and self.emit_adapter not in ADAPTERS:
            raise UsageError(f"emit_adapter must be one of {', '.join(ADAPTERS)}, not {self.emit_adapter!r}")
        if self.emit_adapter and not backends.BACKENDS[self.backend].namespace:
            raise UsageError(
                f"--emit-adapter {self.emit_adapter} needs --backend array (the adapter hands the "
                f"module {self.emit_adapter} arrays), not --backend {self.backend}",
                hint=f"stagegen FILE --backend array --emit-adapter {self.emit_adapter}",
            )

    def command(self, filename: str, output: str | None = None) -> str:
        """The stagegen command line that generates the same module from
        `filename` (written to `output`, if given)."""
        # sources without a file (standard input, API strings, SymPy objects) read as "-"
        file = "-" if filename.startswith("<") else shown(filename)
        options = []
        if output is not None:  # a name that starts with '-' is joined to its option: --output=-x.py
            written = shown(output)
            options += [f"--output={written}"] if written.startswith("-") else ["-o", written]
        for option in fields(self):  # every option that is not its default, in declaration order
            value = getattr(self, option.name)
            if option.name == "requested":  # printed as the backend it stands for
                continue
            if option.name == "backend":
                value = self.requested or value
            if value != option.default:
                options += [flag(option.name), ",".join(value) if isinstance(value, tuple) else value]
        if file.startswith("-") and file != "-":  # it would read as an option: behind '--', after the options
            words = ["stagegen", *options, "--", file]
        else:
            words = ["stagegen", file, *options]
        return " ".join(shlex.quote(w) for w in words)

    @classmethod
    def from_command(cls, command: str) -> tuple[str, Options, str | None]:
        """(filename, options, output) of a command written by `command`."""
        try:
            words = shlex.split(command)
        except ValueError as exc:  # a quote not closed, a backslash at the end
            raise UsageError(f"cannot read the command {command!r}: {exc}") from None
        if not words or words[0] != "stagegen":
            raise UsageError(f"not a stagegen command: {command!r}")
        parser = _CommandParser(add_help=False, exit_on_error=False)
        parser.add_argument("file")
        parser.add_argument("-o", "--output")
        add_arguments(parser)
        try:
            args = parser.parse_args(words[1:])
        except argparse.ArgumentError as exc:
            raise UsageError(f"cannot read the command {command!r}: {exc}") from None
        return args.file, from_arguments(args), args.output


class _CommandParser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit; a command is data here
        raise argparse.ArgumentError(None, message)


def flag(name: str) -> str:
    """The command-line option of an `Options` field (``with_`` is ``--with``,
    ``emit_adapter`` ``--emit-adapter``)."""
    return "--" + name.rstrip("_").replace("_", "-")


def functions(value) -> tuple[str, ...]:
    """The functions asked for (``"jacobian,jvp"`` or a sequence of names), checked,
    in FUNCTIONS order."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        names = list(value or ())
    except TypeError:
        raise UsageError(f"with_ takes names of functions, not {value!r}") from None
    unknown = [n for n in names if n not in FUNCTIONS]
    if unknown:
        raise UsageError(
            f"--with: unknown function {', '.join(map(repr, unknown))}; the functions are "
            f"{', '.join(FUNCTIONS)}",
            hint="e.g. --with jacobian,jvp",
        )
    return tuple(f for f in FUNCTIONS if f in names)


def split_names(text: str) -> tuple[str, ...]:
    if not text.strip(" ,"):
        raise UsageError("--wrt needs at least one input name, e.g. --wrt x,y")
    return name_list(text, "--wrt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wrt",
        metavar="A,B",
        type=split_names,
        help="return only these gradients (comma-separated input names); "
        "backward computes nothing that does not lead to them",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="math",
        help="target of the emitted code (default: math, Python floats)",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="seed",
        help="seed: every local factor written out, (1) * dv included, as in the "
        "backprop notes; compact: multiplications by 1 and plain copies of an "
        "adjoint folded away, for speed (default: seed)",
    )
    parser.add_argument(
        "--with",
        dest="with_",
        metavar="F,G",
        type=functions,
        help="also emit these functions: jacobian (value_and_jacobian: every output's "
        "gradient), jacobian_diag (value_and_jacobian_diag: an elementwise program's "
        "derivatives, element by element), jvp (forward mode: the outputs' tangents for "
        "tangents of the inputs), "
        "hvp (Hessian-vector product, forward over reverse) and hessian (math backend; "
        "both for one scalar output)",
    )
    parser.add_argument(
        "--emit-adapter",
        choices=ADAPTERS,
        default="",
        help="with --backend array: also write the module as PyTorch's autograd.Function "
        "(torch_function) or as a jax.custom_vjp function (jax_function), at its end",
    )
    parser.add_argument(
        "--gates",
        choices=GATES,
        default="grouped",
        help="grouped: recognise sigmoid, softplus, softmax, log_softmax (...) circuits as "
        "one gate with a simple local gradient; fine: keep (and expand sigmoid and softplus "
        "to) the primitive circuit (default: grouped)",
    )


def from_arguments(args: argparse.Namespace) -> Options:
    return Options(
        backend=args.backend,
        style=args.style,
        gates=args.gates,
        wrt=args.wrt,
        with_=args.with_ or (),
        emit_adapter=args.emit_adapter,
    )

"""A `Listing` -> the text of a generated module. It only prints.

Every expression comes from `printer.Printer` (each form once, as a template
filled with names), the layout from ``templates/module.py.j2`` (which only
loops over finished lines), the docstring from the build. The text is written
in black's style directly, and black runs only when a line is longer than
black's limit, so that black stays a test oracle rather than the cost of every
generation. `compile()` checks the finished text: a module that does not
compile is a stagegen bug (`InternalError`), never returned or written.
"""

from __future__ import annotations

import importlib.resources
import re
import textwrap
from pathlib import Path

import jinja2

from .backends import BACKENDS, SOURCE
from .blackline import format_statement
from .errors import InternalError, python_lines
from .expr import Named
from .files import shown
from .frameworks import ADAPTERS
from .gates import REGISTRY
from .ir import Graph
from .options import Options
from .parse import Program
from .plan import Listing, Statement
from .printer import Forms
from .shapes import text as shape_text
from .version import VERSION

LINE_LENGTH = 88  # black's default


def _environment() -> jinja2.Environment:
    packaged = importlib.resources.files("stagegen") / "templates"
    folder = Path(str(packaged))
    if not (folder / "module.py.j2").is_file():  # a source checkout or editable install
        folder = Path(__file__).resolve().parent.parent / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


_ENV = _environment()


class _Text:
    """Statements as lines: expressions from the backend's forms, comments' from the input language's."""

    def __init__(self, listing: Listing, syntax=None):
        self.listing = listing
        self.code = Forms(syntax or listing.backend.syntax, listing.module, listing.dtype)
        self.source = Forms(SOURCE)

    def rhs(self, statement: Statement) -> str:
        forms = self.source if statement.source else self.code
        return forms.fill(
            statement.form,
            statement.operands,
            statement.out,
            statement.dout,
            statement.like,
            statement.floats,
        )

    def line(self, statement: Statement) -> str:
        """The statement's text: one line, or (a loop) several, the inner ones indented."""
        if statement.kind == "release":
            return "del " + ", ".join(statement.names)
        if statement.kind == "comment":
            return f"# backprop {self.display(statement)}"
        if statement.kind == "sweep":
            return f"# {statement.note}"
        if statement.kind == "block":
            self.calls(statement.note)
            return statement.note
        if statement.kind in ("alloc", "loop"):
            return self.loop_line(statement)
        if statement.kind == "onehot":
            return f"{statement.binds}[{statement.out}] = 1.0"
        if statement.kind == "put":
            # the index covers the output's axes; `...` the input's (the standard asks for it)
            return f"{statement.binds}[(*{statement.out}, ...)] = {statement.dout}"
        text = self.rhs(statement)
        if statement.kind == "scatter":
            index = self.code.fill(
                statement.index[0], statement.operands, statement.out, statement.dout, statement.like, False
            )
            text = statement.index[1].format(
                index=index, target=statement.binds, value=text, m=self.listing.module
            )
            self.calls(text)
            return f"{text}  # ({statement.number})"
        if statement.number is not None:
            comment = f"  # ({statement.number}){statement.note}"
        else:
            comment = f"  # {statement.note}" if statement.note else ""
        if statement.add:
            return f"{statement.binds} = {statement.binds} {statement.add} {text}{comment}"
        return f"{statement.binds} {statement.op} {text}{comment}"

    def loop_line(self, statement: Statement) -> str:
        """value_and_jacobian of arrays: an entry of zeros of its shape, or the loop
        over an output's elements (the backend's forms of shapes and indices)."""
        backend, m = self.listing.backend, self.listing.module

        def shape(name: str) -> str:
            return backend.shape_of.format(name, m=m)

        if statement.kind == "alloc":
            size = f"{shape(statement.out)} + {shape(statement.like)}"
            text = f"{statement.binds} = {m}.zeros({size}, dtype={self.code.printer.text(Named('float'))})"
        else:
            text = f"for {statement.binds} in {backend.indices.format(shape(statement.out), m=m)}:"
        self.calls(text)
        return text

    def calls(self, text: str) -> None:
        """The backend's helpers a line written here (not printed from a form) calls."""
        helpers = self.listing.backend.helpers
        self.code.used.update(name for name in helpers if f"{name}(" in text)

    def display(self, statement: Statement) -> str:
        return f"{statement.out} = {self.rhs(statement)}"


def _lines(text: _Text, statements) -> list[str]:
    return ["    " * s.depth + line for s in statements for line in text.line(s).split("\n")]


def _returned(value) -> str:
    """A result as Python writes it: a name, or a tuple of results (nested)."""
    if isinstance(value, str):
        return value
    return _tuple(_returned(v) for v in value)


def _shape_tuple(shape) -> str:
    """A declared shape as Python writes it, size names as strings: ("n", 1)."""
    return _tuple(_size(d) for d in shape) if shape else "()"


def _size(size) -> str:
    return f'"{size}"' if isinstance(size, str) else str(size)


def _tuple(items) -> str:
    items = list(items)
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"


def render(
    listing: Listing,
    program: Program,
    graph: Graph,
    options: Options,
    output: str | None = None,
    broadcasts: Listing | None = None,
) -> str:
    """The module's source text, black-formatted and compiled; `output`: the
    file it will be written to, if known (named in its docstring); `broadcasts`:
    the listing value_and_grad runs where the loops do not (Backend.broadcasts_by)."""
    text = _format_long_lines(_render(listing, program, graph, options, output, broadcasts))
    try:
        compile(text, "<stagegen output>", "exec")
    except SyntaxError as exc:  # a stagegen bug: show the numbered text
        numbered = "\n".join(f"{k + 1:5d}  {line}" for k, line in enumerate(text.splitlines()))
        raise InternalError(f"the generated module does not compile: {exc}\n{numbered}") from exc
    return text


# above the listing's functions as Python runs them, where the module has them
_PYTHON_COPIES = (
    "# The same listings as Python runs them (what --trace and verify read): a domain\n"
    "# error raises here, at its stage's line, where the compiled code gives NaN or inf."
)


def _render(
    listing: Listing,
    program: Program,
    graph: Graph,
    options: Options,
    output: str | None,
    broadcasts: Listing | None,
) -> str:
    lines = _Text(listing)
    backend, module = listing.backend, listing.module

    def with_namespace(body: list[str], *arguments) -> list[str]:
        """The array API: a function that calls the namespace's functions takes it,
        and the float dtype (named only in their calls), from its arguments on its
        first line."""
        if not backend.namespace or not any(f"{module}." in line for line in body):
            return body
        return [f"{module}, {listing.dtype} = _namespace({', '.join(arguments)})", *body]

    # arrays: a function that takes the inputs first checks the declared ones' shapes
    declared = {
        name: shape
        for name, shape in zip(listing.inputs, listing.shapes[: len(listing.inputs)], strict=False)
        if shape is not None
    }
    checked = backend.arrays and bool(declared)
    check = [f"_check_shapes({', '.join(listing.inputs)})"] if checked else []
    if checked:
        lines.code.used.add("_check_shapes")
    if listing.indexes:  # and the index inputs' values against the axes they index
        check.append(f"_check_indexes({', '.join(listing.inputs)})")
        lines.code.used.add("_check_indexes")

    loops = None
    if backend.loops:
        loop_lines = _Text(listing, backend.loop_syntax)
        loops = _loops(listing, loop_lines)
        lines.code.used.update(loop_lines.code.used | {"_arrays"})
    bodies = [
        with_namespace(
            check
            + (_arrays_entry("forward", listing.inputs) if loops else [])
            + _lines(lines, listing.forward),
            *listing.inputs,
        ),
        with_namespace(_lines(lines, listing.backward), listing.dout, listing.cache),
        with_namespace(
            (check if listing.fused else [])
            + (_arrays_entry("value_and_grad", listing.inputs) if loops else [])
            + _lines(lines, listing.fused),
            *listing.inputs,
        ),
    ]

    def copy(prefix: str, decorator: str, note: str) -> dict:
        """The listing's functions, named with `prefix`, each under `decorator`."""
        return {
            "note": note,
            "decorator": decorator + "\n" if decorator else "",
            "forward_def": _bracketed(f"def {prefix}forward(", inputs, "):", 0),
            "backward_def": _bracketed(f"def {prefix}backward(", [listing.dout, listing.cache], "):", 0),
            "fused_def": (
                _bracketed(f"def {prefix}value_and_grad(", inputs, "):", 0) if listing.fused else ""
            ),
            "functions": [
                {
                    "define": _bracketed(f"def {prefix}{f.name}(", f.parameters, "):", 0),
                    "body": with_namespace(
                        check
                        + (_arrays_refused(f.name, f.parameters) if loops else [])
                        + _lines(lines, f.body),
                        *f.parameters,
                    ),
                    "returns": "    return " + ", ".join(_returned(r) for r in f.returns),
                }
                for f in listing.functions
            ],
        }

    inputs = listing.inputs
    copies = [copy("", backend.decorator, "")]
    if backend.python_copies:
        copies.append(copy(backend.python_copies, "", _PYTHON_COPIES))
    used = lines.code.used
    used |= _needed(backend.helpers, used)  # (the docstring reads them too)
    helpers = [
        h
        for name, h in backend.helpers.items()
        if name in used
        or (name == "_locate" and backend.locate)
        or (name == "_namespace" and backend.namespace)
    ]
    imports = []
    if backend.namespace:
        pass  # the namespace comes from the arguments (`_namespace`, which imports what it needs)
    elif backend.arrays or any(name.startswith(module + ".") for name in used):
        imports.append(f"import {backend.module}" + ("" if module == backend.module else f" as {module}"))
    imports += [f"import {m}" for m in backend.imports]
    for helper in helpers:
        imports[:0] = [f"import {m}" for m in helper.imports if f"import {m}" not in imports]
    sources = [h.source(module) for h in helpers]
    if broadcasts is not None:
        more, texts = _broadcast_listing(broadcasts, {h.name for h in helpers})
        imports += [line for line in more if line not in imports]
        sources += texts
    adapter = ADAPTERS.get(options.emit_adapter)
    if adapter:
        imports += adapter.imports
    cached, grads, outs = listing.cached, listing.gradients, listing.outputs
    values = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    unpack = ""
    if cached:
        unpack = _bracketed(
            "(",
            cached,
            f") = {listing.cache}",
            4,
            one_line=f"{_tuple(cached) if len(cached) == 1 else ', '.join(cached)} = {listing.cache}",
        )
    dout_unpack = ""
    if listing.output_adjoints:
        dout_unpack = _bracketed(
            "(",
            listing.output_adjoints,
            f") = {listing.dout}",
            4,
            one_line=f"{', '.join(listing.output_adjoints)} = {listing.dout}",
        )
    if len(outs) == 1:
        constants = [f'OUTPUT = "{outs[0]}"', "OUTPUTS = (OUTPUT,)"]
    else:
        constants = [_bracketed("OUTPUTS = (", [f'"{n}"' for n in outs], ")", 0, tuple_=True)]
    if checked:  # the declared shapes, size names as strings (_check_shapes)
        constants.append(
            _bracketed(
                "SHAPES = {",
                [f'"{n}": {_shape_tuple(shape)}' for n, shape in declared.items()],
                "}",
                0,
            )
        )
    if listing.indexes:  # each index input: the sizes of the axes it indexes (_check_indexes)
        constants.append(
            _bracketed(
                "INDEXES = {",
                [f'"{n}": {_tuple(_size(s) for s in sizes)}' for n, sizes in listing.indexes],
                "}",
                0,
            )
        )
    return _ENV.get_template("module.py.j2").render(
        docstring=_docstring(listing, lines, program, graph, options, output),
        imports=imports,
        inputs=_bracketed("INPUTS = (", [f'"{n}"' for n in inputs], ")", 0, tuple_=True),
        wrt=_bracketed("WRT = (", [f'"{n}"' for n in listing.wrt], ")", 0, tuple_=True),
        outputs=constants,
        preamble=backend.preamble,
        copies=copies,
        loops=loops,
        broadcasts=broadcasts is not None,
        backward_entry=_backward_entry(listing) if loops else [],
        forward=bodies[0],
        forward_return=(
            _bracketed(f"return {values}, (", cached, ")", 4, tuple_=True)
            if cached
            else f"    return {values}, ()"
        ),
        cache_unpack=unpack,
        dout_unpack=dout_unpack,
        backward=bodies[1],
        backward_return=_bracketed("return (", grads, ")", 4, tuple_=True),
        fused=bodies[2],
        fused_return=_bracketed(f"return {values}, (", grads, ")", 4, tuple_=True),
        locate=backend.locate,
        helpers=sources,
        adapter=adapter.text if adapter else "",
    )


def _needed(helpers, used) -> set[str]:
    """The helpers among `used` (names a listing calls) and every helper they
    need, and those need, in turn."""
    needed = {name for name in used if name in helpers}
    stack = list(needed)
    while stack:
        for need in helpers[stack.pop()].needs:
            if need not in needed:
                needed.add(need)
                stack.append(need)
    return needed


def _broadcast_listing(listing: Listing, taken: set[str]) -> tuple[list[str], list[str]]:
    """The imports and module-level texts of value_and_grad as `listing` (another
    backend's: Backend.broadcasts_by) writes it, named _numpy_value_and_grad, and
    of the helpers it calls; a helper whose name one of the module's own takes
    is renamed _numpy<name> in them."""
    text = _Text(listing)
    body = _lines(text, listing.fused)
    helpers = listing.backend.helpers
    used = _needed(helpers, text.code.used)
    chosen = [h for name, h in helpers.items() if name in used]
    function = (
        "\n".join(
            [
                _bracketed("def _numpy_value_and_grad(", listing.inputs, "):", 0),
                f'    """value_and_grad as the {listing.backend.title} listing computes it."""',
                *("    " + line for line in body),
                _bracketed(f"return {listing.outputs[0]}, (", listing.gradients, ")", 4, tuple_=True),
            ]
        )
        + "\n"
    )
    texts = [function, *(h.source(listing.module) for h in chosen)]
    for name in sorted(used & taken):
        texts = [re.sub(rf"\b{name}\b", f"_numpy{name}", t) for t in texts]
    imports = [f"import {m}" for h in chosen for m in h.imports]
    imports.append(f"import {listing.backend.module} as {listing.module}")
    return list(dict.fromkeys(imports)), texts


def _loops(listing: Listing, text: _Text) -> dict:
    """What the template needs for forward, backward and value_and_grad over
    arrays as compiled loops (a backend with `loops`): each function's loop over
    the elements, its body the function's listing (`text`: printed with the
    backend's `loop_syntax`); value_and_grad's for a program of one output."""
    return {
        "forward": _forward_loop(listing, _lines(text, listing.forward)),
        "backward": _backward_loop(listing, _lines(text, listing.backward)),
        "value_and_grad": _fused_loop(listing, _lines(text, listing.fused)) if listing.fused else None,
    }


def _dunder(name: str, role: str) -> str:
    """A name of a loop's own (``__x_in__``): a dunder name, which no input or
    generated name takes, and one per role and listing name."""
    return f"__{name}_{role}__"


def _read(name: str, flat: str) -> str:
    """A loop's line reading one element of `flat` (one of each element, or one
    number) into the listing's name."""
    return f"{name} = {flat}[__i__ if {flat}.size == __n__ else 0]"


def _gradients(listing: Listing) -> list[dict]:
    """Each gradient's names in a loop: its array, its per-block sum, its input as given."""
    return [
        {
            "name": g,
            "out": _dunder(g, "out"),
            "sum": _dunder(g, "sum"),
            "given": _dunder(x, "in"),
            "column": k,
        }
        for k, (g, x) in enumerate(zip(listing.gradients, listing.wrt, strict=True))
    ]


def _forward_loop(listing: Listing, body: list[str]) -> dict:
    """forward over arrays: one loop writing each output and each cached stage
    once per element; the cache holds those arrays (a cached input: the input as
    given), then every input as given (backward sums each gradient back to its
    input's shape)."""
    inputs = [{"given": _dunder(x, "in"), "flat": _dunder(x, "flat")} for x in listing.inputs]
    given = {x: _dunder(x, "in") for x in listing.inputs}
    written = [*listing.outputs, *(c for c in listing.cached if c not in given and c not in listing.outputs)]
    outs = [{"name": v, "out": _dunder(v, "out")} for v in written]
    values = [f"_shaped({_dunder(v, 'out')}, __shape__)" for v in listing.outputs]
    cache = [given[c] if c in given else f"_shaped({_dunder(c, 'out')}, __shape__)" for c in listing.cached]
    cache += [x["given"] for x in inputs]
    returned = values[0] if len(values) == 1 else _tuple(values)
    return {
        "parameters": ", ".join(x["given"] for x in inputs),
        "as_arrays": _as_arrays(inputs),
        "given": _tuple(x["given"] for x in inputs),
        "inputs": inputs,
        "shapes": ", ".join(f"_shape({x['given']})" for x in inputs),
        "outs": outs,
        "arguments": ", ".join([*(x["flat"] for x in inputs), *(o["out"] for o in outs)]),
        "reads": [_read(x, _dunder(x, "flat")) for x in listing.inputs],
        "body": body,
        "returns": _bracketed(f"return {returned}, (", cache, ")", 4, tuple_=True),
    }


def _backward_loop(listing: Listing, body: list[str]) -> dict:
    """backward given the cache forward returned for arrays: one loop reading
    each cached array and dout once per element and writing each gradient once
    (a number's summed per block, then across the blocks)."""
    douts = list(listing.output_adjoints) or [listing.dout]
    cached = [{"name": c, "given": _dunder(c, "cached"), "flat": _dunder(c, "flat")} for c in listing.cached]
    read = [{"name": d, "given": _dunder(d, "in"), "flat": _dunder(d, "flat")} for d in douts] + cached
    grads = _gradients(listing)
    inputs = [_dunder(x, "in") for x in listing.inputs]
    dout, cache = _dunder(listing.dout, "in"), _dunder(listing.cache, "in")
    unpack = [c["given"] for c in cached] + inputs
    shapes = [f"_shape({x})" for x in inputs] + [f"_shape({d['given']})" for d in read[: len(douts)]]
    return {
        "parameters": f"{dout}, {cache}",
        "as_arrays": f"{dout}, {cache}",
        "given": cache,
        "unpack": _bracketed("(", unpack, f") = {cache}", 4, tuple_=True),
        "douts": (
            _bracketed("(", [d["given"] for d in read[: len(douts)]], f") = {dout}", 4, tuple_=True)
            if listing.output_adjoints
            else ""
        ),
        "read": read,
        "shapes": ", ".join(shapes),
        "grads": grads,
        "arguments": ", ".join(["__n__", *(r["flat"] for r in read), *(g["out"] for g in grads), "__sums__"]),
        "reads": [_read(r["name"], r["flat"]) for r in read],
        "body": body,
        "returns": _bracketed(
            "return (", [f"_shaped({g['out']}, _shape({g['given']}))" for g in grads], ")", 4, tuple_=True
        ),
    }


def _fused_loop(listing: Listing, body: list[str]) -> dict:
    """value_and_grad over arrays as one compiled loop (a program of one
    output): each input's names (given, as the loop reads it), each gradient's
    (its array, its per-block sum, its input's), the listing's lines."""
    inputs = [{"name": x, "given": _dunder(x, "in"), "flat": _dunder(x, "flat")} for x in listing.inputs]
    flat = {x["name"]: x["flat"] for x in inputs}
    grads = _gradients(listing)
    for grad, x in zip(grads, listing.wrt, strict=True):
        grad["flat"] = flat[x]
    shaped = [f"_shaped({g['out']}, _shape({g['given']}))" for g in grads]
    return {
        "parameters": ", ".join(x["given"] for x in inputs),
        "as_arrays": _as_arrays(inputs),
        "given": _tuple(x["given"] for x in inputs),
        "inputs": inputs,
        "shapes": ", ".join(f"_shape({x['given']})" for x in inputs),
        "grads": grads,
        "arguments": ", ".join(
            [*(x["flat"] for x in inputs), "__value__", *(g["out"] for g in grads), "__sums__"]
        ),
        "reads": [_read(x["name"], x["flat"]) for x in inputs],
        "returns": f"return _shaped(__value__, __shape__), {_tuple(shaped)}",
        "body": body,
        "value": listing.outputs[0],
        # the gradients' inputs by position, and the test that the loop takes the inputs
        "wrt": _tuple(str(listing.inputs.index(x)) for x in listing.wrt),
        "one_shape": " and ".join(f"_of_shape({x['given']}, __shape__)" for x in inputs),
    }


def _as_arrays(inputs: list[dict]) -> str:
    """A loop's inputs as it takes them: a list as a NumPy array (`_as_array`)."""
    return ", ".join(f"_as_array({x['given']})" for x in inputs)


def _arrays_entry(function: str, inputs: tuple[str, ...]) -> list[str]:
    """The first lines of a function that also takes arrays: given one, it runs
    its loop (numba compiles only the branch the arguments' types take)."""
    arguments = ", ".join(inputs)
    return [
        f"__array__ = _an_array({arguments})  # the first array among the inputs, else 0.0",
        "if not isinstance(__array__, float):",
        f"    return _{function}_arrays({arguments})",
    ]


def _backward_entry(listing: Listing) -> list[str]:
    """backward's first lines: given the cache forward returned for arrays (it
    holds arrays), it runs its loop."""
    return [
        f"__array__ = _an_array(*{listing.cache})  # the first array in the cache, else 0.0",
        "if not isinstance(__array__, float):",
        f"    return _backward_arrays({listing.dout}, {listing.cache})",
    ]


def _arrays_refused(function: str, parameters: tuple[str, ...]) -> list[str]:
    """The first lines of a function asked for (--with), which takes numbers
    only: given an array, a TypeError saying what to use instead."""
    return [
        f"__array__ = _an_array({', '.join(parameters)})  # the first array among them, else 0.0",
        "if not isinstance(__array__, float):",
        f'    return _no_arrays("{function}")',
    ]


def _docstring(
    listing: Listing, lines: _Text, program: Program, graph: Graph, options: Options, output: str | None
) -> str:
    inputs, outs = ", ".join(listing.inputs), listing.outputs
    cached = listing.cached
    n_stages, n_lines = len(listing.displays), listing.backward_lines
    title = (
        f"{outs[0]}({inputs}) and its gradient"
        if len(outs) == 1
        else f"{', '.join(outs)} of ({inputs}) and their gradients"
    )
    parts = [
        f"{title}, staged by stagegen {VERSION}.",
        "",
        *(
            []
            if len(listing.wrt) == len(listing.inputs)
            else [f"Gradients with respect to {', '.join(listing.wrt)} only.", ""]
        ),
        f"Generated by: {options.command(program.filename, output)}",
        *textwrap.wrap(
            f"Cost: {n_stages} forward stage{'s' * (n_stages != 1)}, "
            f"{n_lines} backward line{'s' * (n_lines != 1)} "
            f"({n_lines / max(1, n_stages):.2f} per stage); the cache holds "
            f"{len(cached)} value{'s' if len(cached) != 1 else ''}"
            + (f": {', '.join(cached)}." if cached else "."),
            LINE_LENGTH - 4,
        ),
    ]
    for function in listing.functions:
        parts += textwrap.wrap(function.cost + ".", LINE_LENGTH - 4, subsequent_indent="    ")
    if listing.backend.arrays:
        parts += ["", *textwrap.wrap(_shapes_note(listing), LINE_LENGTH - 4)]
    if listing.backend.says:
        domains = listing.backend.domains
        called = [domains[name] for name in domains if name in lines.code.used]
        said = listing.backend.says + (": " + "; ".join(called) if called else "") + "."
        rounding = listing.backend.rounding
        differ = [rounding[name] for name in rounding if name in lines.code.used]
        if differ:
            said += f" Not bit for bit: {'; '.join(differ)} (the compiler's own implementation)."
        parts += ["", *textwrap.wrap(said, LINE_LENGTH - 4)]
    if listing.backend.loops:
        said = listing.backend.loop_says
        if listing.functions:
            said += " " + listing.backend.loop_refuses
        parts += ["", *textwrap.wrap(said, LINE_LENGTH - 4)]
    if options.requested:  # a program over arrays, asked of a backend without them
        parts += ["", *textwrap.wrap(BACKENDS[options.requested].arrays_says, LINE_LENGTH - 4)]
    if options.emit_adapter:
        parts += ["", *textwrap.wrap(ADAPTERS[options.emit_adapter].says, LINE_LENGTH - 4)]
    if graph.rewrites:
        parts += ["", "Rewrites (each circuit became one grouped gate; --gates fine keeps them as written):"]
        for gate, span in graph.rewrites:
            written = f"{span.line}:{span.col} {_spanned(span)}" if span else "a circuit"
            parts += textwrap.wrap(
                f"{written} -> {REGISTRY[gate].source}: {REGISTRY[gate].why}",
                LINE_LENGTH - 4,
                initial_indent="    ",
                subsequent_indent="        ",
            )
    if listing.guarded or listing.shared:
        note = ""
        if listing.guarded:
            note = (
                f"Guarded, as only one branch of a where reads them: {', '.join(listing.guarded)}; "
                f"{listing.backend.guarded_note or 'each is computed as it stands'}."
            )
        if listing.shared:
            note += (
                f" Not guarded, as another path reads them too (computed and differentiated "
                f"everywhere): {', '.join(listing.shared)}."
            )
        parts += ["", *textwrap.wrap(note.strip(), LINE_LENGTH - 4)]
    if graph.dropped:
        parts += [
            "",
            *textwrap.wrap(
                f"Not emitted, the output does not depend on them: {', '.join(graph.dropped)}.",
                LINE_LENGTH - 4,
            ),
        ]
    parts += ["", f"Source ({shown(program.filename)}):", ""]
    parts += ["    " + line if line else "" for line in _source_lines(program)]
    return "\n".join(_escape(p) for p in parts)


def _shapes_note(listing: Listing) -> str:
    """The contract on shapes, for a module of arrays."""
    outs, title = listing.outputs, listing.backend.title
    n = len(listing.inputs)
    inputs, results = listing.shapes[:n], listing.shapes[n:]
    dout = (
        f"dout has {outs[0]}'s shape"
        if len(outs) == 1
        else "dout is a tuple of one array per output, each of its output's shape"
    )
    if all(shape is None for shape in listing.shapes):
        return (
            f"{title}, elementwise: the inputs may be arrays of any shapes that broadcast "
            f"together (or floats); {dout}; each gradient comes back with "
            "its input's shape (summed over the axes broadcasting added)."
        )

    def shaped(names, shapes) -> str:
        return ", ".join(
            f"{name} {'any' if shape is None else shape_text(shape)}"
            for name, shape in zip(names, shapes, strict=True)
        )

    return (
        f"{title}, shapes: {shaped(listing.inputs, inputs)} -> {shaped(outs, results)}. "
        f"{dout}; each gradient comes back with its input's shape."
    )


def _source_lines(program: Program) -> list[str]:
    """The source for the docstring, verbatim: what the module regenerates from."""
    return [line.rstrip(" \t") for line in python_lines(program.text.strip("\n"))]


def staged_source(listing: Listing) -> str:
    """The program as input-language text, one line per stage: a declaration per
    input (in argument order), then ``name = gate(operands)`` per stage."""
    lines = _Text(listing)
    declarations = [f"{name}: scalar" for name in listing.inputs]
    outputs = [", ".join(listing.outputs)] if len(listing.outputs) > 1 else []
    return "\n".join(declarations + [lines.display(d) for d in listing.displays] + outputs) + "\n"


def _bracketed(
    head: str, items, tail: str, indent: int, tuple_: bool = False, one_line: str | None = None
) -> str:
    """``head items tail`` as black writes it: on one line if that fits, else one
    item per line with a trailing comma (when even the items alone would not fit
    on one line; the case in between is left to black)."""
    items = list(items)
    pad = " " * indent
    body = ", ".join(items) + ("," if tuple_ and len(items) == 1 else "")
    line = pad + (one_line if one_line is not None else head + body + tail)
    if len(line) <= LINE_LENGTH or len(pad) + 4 + len(body) <= LINE_LENGTH:
        return line
    return "\n".join([pad + head, *(f"{pad}    {item}," for item in items), pad + tail])


def _spanned(span) -> str:
    """The source text a span covers (one line)."""
    return span.text[span.col - 1 : span.end_col - 1] if span.text else ""


def _escape(text: str) -> str:
    """Docstring-safe text that reads back as `text`: backslashes, quotes, control
    characters, and the characters other tools read as line breaks (\\x85, U+2028,
    U+2029), escaped."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if (c >= " " or c == "\n") and c not in _BREAKS else _escaped(c) for c in text)


_BREAKS = frozenset("\x7f\x85\u2028\u2029")


def _escaped(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _format_long_lines(text: str) -> str:
    """Let black format the few statements longer than its limit, one at a time.

    Every other line is already in black's style, so formatting statements one
    by one gives black's output for the module at a cost that grows with the
    number of long lines, not the size of the module.
    """
    lines = text.split("\n")
    body = text.index('"""', 3) + 3  # black leaves the docstring alone
    start = text.count("\n", 0, body) + 1
    if all(len(line) <= LINE_LENGTH for line in lines[start:]):
        return text
    import black

    mode = black.Mode(line_length=LINE_LENGTH)
    memo: dict[str, str] = {}
    out = lines[:start]
    for line in lines[start:]:
        if len(line) <= LINE_LENGTH or line.lstrip().startswith("#"):
            out.append(line)  # black leaves a long comment as it is
        elif line.startswith("def "):
            formatted = format_statement(line + "\n    pass\n", mode, memo)
            out.extend(formatted.split("\n")[:-2])  # without "    pass" and the final newline
        elif line.startswith("    "):
            depth = (len(line) - len(line.lstrip(" "))) // 4
            header = ["def _():"] + ["    " * d + "if 1:" for d in range(1, depth)]
            # a compound statement's first line (a def in a def) with a body to parse
            body = ["    " * (depth + 1) + "pass"] if line.endswith(":") else []
            formatted = format_statement("\n".join(header + [line, *body]) + "\n", mode, memo)
            out.extend(formatted.split("\n")[len(header) : -1 - len(body)])
        else:
            out.extend(format_statement(line + "\n", mode, memo).split("\n")[:-1])
    return "\n".join(out)

"""The backends: what each target of the generated code is, one record each.

A `Backend` holds the module the code imports and its usual alias, the
`Syntax` its expressions are printed with (functions by convention
``alias.fn``, a table of exceptions: builtins, other names, helpers, inline
expansions), the helpers a module may define, the forms of the values the
reverse pass seeds, zeroes, copies and sums, and the policies that differ
between floats and arrays: whether values may be arrays (and so alias each
other and need summing back to an input's shape), whether arrays are released
after their last use, whether errors are located at their stage; and, for a
compiled target (numba), whose gate forms it prints, what the module runs
first, the decorator that compiles each function, the name of the same
functions as Python runs them, and what its functions give where Python
raises. The planner and the renderer read these fields; nothing else in
stagegen asks which backend it is writing for.

Adding a backend is one record here plus its exceptions; adding a function a
backend names by convention needs nothing here at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Template
from types import MappingProxyType

from .expr import Call, Expr, Named, Num, call, function, select
from .printer import Syntax

_maximum, _minimum = function("maximum"), function("minimum")


def _floats(fn: str) -> Callable[..., Expr]:
    """`fn` (ones_like, zeros_like, full_like) making an array of the float dtype
    (the constant ``float``) whatever the dtype of the array it is shaped like:
    the gradient of an integer input is float, and full_like(ints, 0.5) would
    truncate 0.5 to 0."""

    def make(*args: Expr) -> Expr:
        return Call(fn, args, (("dtype", Named("float")),))

    return make


@dataclass(frozen=True)
class Helper:
    """A module-level definition generated code may call, written once per module."""

    name: str
    text: str  # its source; "$m" is the backend module's alias in the module
    imports: tuple[str, ...] = ()  # other modules it needs
    needs: tuple[str, ...] = ()  # other helpers it calls (written with it)

    def source(self, module: str) -> str:
        return Template(self.text).substitute(m=module)


@dataclass(frozen=True)
class Backend:
    name: str
    title: str  # what its docstring calls it ("NumPy")
    module: str  # the module the generated code imports
    alias: str  # the name it is imported as, unless a user's name takes it
    syntax: Syntax
    helpers: Mapping[str, Helper] = field(default_factory=dict)  # by the name the code calls
    arrays: bool = False  # values may be arrays (which alias, broadcast and are summed back)
    release: bool = False  # each array the code made is deleted after the block that last reads it
    locate: bool = False  # each function body runs in a try; a failure names its stage (_locate)
    # the module is the arguments' own (the array API): each function starts with
    # ``alias, dtype = _namespace(its arguments)``, and the module imports nothing
    # for it; results take the float dtype of the arguments (the constant ``float``)
    namespace: bool = False
    # arrays: an array's shape, and the indices of an array of a shape (value_and_jacobian's loops)
    shape_of: str = "{m}.shape({0})"
    indices: str = "{m}.ndindex({0})"
    # the backend whose gate forms (`Gate.code`) it prints, if not its own name's
    forms: str = ""
    imports: tuple[str, ...] = ()  # modules every module of it imports, beside `module`
    preamble: str = ""  # source written after the imports (numba's guarded import)
    # the line above each function of the listing (numba's compiling decorator)
    decorator: str = ""
    # where set, the module also has the listing's functions as Python runs them,
    # named with this prefix (py_forward): what trace and verify read, and
    # what reproduces a failure in Python's own terms
    python_copies: str = ""
    # functions (as printed: "math.log") that give inf or NaN where Python raises,
    # and what they give: listed in the docstring of a module that calls them
    domains: Mapping[str, str] = field(default_factory=dict)
    says: str = ""  # what the docstring says of the backend (how the code runs)
    # a value_and_grad given arrays runs its listing in one compiled loop over
    # their elements (numba's prange), with the helpers "_arrays"; `loop_says`:
    # what the docstring says of it
    loops: bool = False
    loop_says: str = ""
    # how the loop's listing is printed, if not by `syntax` (numba's: its own
    # powers, not the math backend's bit-for-bit pow, which costs a call each)
    loop_syntax: Syntax | None = None
    # builtins its functions read where a name the user gives would hide them
    # (numba's value_and_grad tests isinstance(..., float); its loop calls range)
    reserved: tuple[str, ...] = ()

    @property
    def gate_forms(self) -> str:
        """The key of the gates' emitted forms (`Gate.code`) this backend prints."""
        return self.forms or self.name

    def seed(self, value: Expr, scalar: bool) -> Expr:
        """The adjoint of the output in value_and_grad (d out / d out)."""
        return Num(1.0) if scalar or not self.arrays else call("ones_like", value)

    def zero(self, value: Expr, scalar: bool) -> Expr:
        """The gradient of an input the output does not depend on."""
        return Num(0.0) if scalar or not self.arrays else call("zeros_like", value)

    def copy(self, value: Expr) -> Expr:
        """A fresh array with `value`'s contents (a gradient owns its memory)."""
        return call("copy", value)

    def summed(self, value: Expr, steps) -> Expr:
        """`value` summed over axes, as (axes, keepdims) steps (NumPy's np.sum)."""
        for axes, keep in steps:
            axis = Num(axes[0]) if len(axes) == 1 else call("tuple", *axes)
            value = call("sum", value, axis=axis, **({"keepdims": Num(True)} if keep else {}))
        return value

    def unbroadcast(self, value: Expr, like: Expr) -> Expr:
        """`value` summed to the shape of `like`, at run time (shapes unknown now)."""
        return call("_unbroadcast", value, like)


def _nested(fn: Callable[..., Expr]) -> Callable[..., Expr]:
    """An n-ary max or min as NumPy's binary maximum or minimum, nested left to right."""

    def nest(*xs: Expr) -> Expr:
        return functools.reduce(fn, xs)

    return nest


_LOCATE = '''def _locate(exc):
    """Raise `exc` again, naming the numbered stage whose line raised it.

    Runs only when a stage fails (a domain error, a division by zero, an
    overflow); it reads the failing statement from this module's source.
    """
    import linecache

    frame, line = exc.__traceback__.tb_frame, exc.__traceback__.tb_lineno
    lines = [s.strip() for s in linecache.getlines(frame.f_code.co_filename)]
    if len(lines) < line:  # run without its source (from a .pyc, or exec'd text)
        where = f"in {frame.f_code.co_name}, line {line}"
        raise type(exc)(f"{exc} ({where}; its source would name the stage)") from exc

    def ends(s):  # a statement, comment or block header ends on this line
        return "  # (" in s or s.startswith("#") or s.endswith(":")

    first = last = line - 1
    while first > 0 and not ends(lines[first - 1]):
        first -= 1
    while last < len(lines) and "  # (" not in lines[last]:
        last += 1
    if last == len(lines):
        return
    statement, _, mark = " ".join(lines[first : last + 1]).partition("  # ")
    before = lines[frame.f_code.co_firstlineno : first]
    backprop = frame.f_code.co_name == "backward" or "# backprop" in str(before)
    names = "".join(c if c.isalnum() or c == "_" else " " for c in statement).split()
    values = [
        f"{n} = {frame.f_locals[n]!r}"
        for n in dict.fromkeys(names[1:])
        if n in frame.f_locals
    ]
    where = ("backprop of stage " if backprop else "stage ") + mark.split(";")[0]
    raise type(exc)(f"{where} {statement}: {exc} ({', '.join(values)})") from exc
'''

_UNBROADCAST = '''def _unbroadcast(grad, value):
    """`grad` brought to `value`'s shape: summed over the axes broadcasting
    added, repeated along any it never reached; a gradient of floats, even
    for integer inputs."""
    if $m.result_type(grad).kind in "biu":  # booleans and integers
        grad = $m.asarray(grad, dtype=float)
    shape = $m.shape(value)
    while $m.ndim(grad) > len(shape):
        grad = $m.sum(grad, axis=0)
    lead = len(shape) - $m.ndim(grad)
    for axis in range(lead, len(shape)):
        if shape[axis] == 1 and $m.shape(grad)[axis - lead] != 1:
            grad = $m.sum(grad, axis=axis - lead, keepdims=True)
    if $m.shape(grad) != shape:
        grad = $m.broadcast_to(grad, shape).copy()
    return grad
'''


def _special(name: str, scipy_name: str) -> Helper:
    """The numpy backend's `name` (NumPy has none): SciPy's at NumPy speed where
    SciPy is installed, else the math module's element by element."""
    text = f"""try:  # SciPy's {name} at NumPy speed, where SciPy is installed
    from scipy.special import {scipy_name} as _{name}
except ImportError:  # NumPy has no {name}: the math module's, element by element
    _{name} = $m.vectorize(math.{name}, otypes=[float])
"""
    return Helper(f"_{name}", text, imports=("math",))


_NAMESPACE = '''def _namespace(*values):
    """The array namespace of the arrays among `values` (in tuples too, as a
    cache is), by array-api-compat, and the float dtype results take: that of
    the floating arrays among them (float32 stays float32), else float64. The
    namespace is that of the arrays that are not NumPy's (a Dask matrix with a
    NumPy vector computes in Dask); NumPy itself for NumPy arrays and Python
    numbers (NumPy 2 follows the standard, and takes numbers where the
    compatibility layer takes arrays only)."""
    arrays, stack = [], list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, tuple):
            stack.extend(value)
        elif not isinstance(value, (bool, int, float)):
            arrays.append(value)
    foreign = [a for a in arrays if not array_api_compat.is_numpy_array(a)]
    if foreign:
        xp = compat = array_api_compat.array_namespace(*foreign)
    else:
        import numpy as xp

        compat = array_api_compat.array_namespace(*arrays) if arrays else None
    # the dtypes through the compatibility layer (NumPy 1 has no isdtype)
    dtypes = [a.dtype for a in foreign or arrays]
    floats = [t for t in dtypes if compat.isdtype(t, "real floating")]
    return xp, (compat.result_type(*floats) if floats else xp.float64)
'''

_UNBROADCAST_XP = '''def _unbroadcast(grad, value):
    """`grad` brought to `value`'s shape (in their namespace and float dtype):
    summed over the axes broadcasting added, repeated along any it never
    reached."""
    xp, dtype = _namespace(grad, value)
    shape = tuple(getattr(value, "shape", ()))
    grad = xp.asarray(grad, dtype=dtype)
    while grad.ndim > len(shape):
        grad = xp.sum(grad, axis=0)
    lead = len(shape) - grad.ndim
    for axis in range(lead, len(shape)):
        if shape[axis] == 1 and grad.shape[axis - lead] != 1:
            grad = xp.sum(grad, axis=axis - lead, keepdims=True)
    if tuple(grad.shape) != shape:
        grad = xp.asarray(xp.broadcast_to(grad, shape), copy=True)
    return grad
'''

_SHAPE_XP = '''def _shape(a):
    """The shape of an array of any namespace, or () of a number."""
    return tuple(getattr(a, "shape", ()))
'''

_INDICES_XP = '''def _indices(shape):
    """Every index of an array of `shape`, in row-major order (numpy.ndindex)."""
    return itertools.product(*map(range, shape))
'''


def _special_xp(name: str) -> Helper:
    """The array backend's `name`, which the standard lacks: the namespace's own
    where it has one (PyTorch, JAX, CuPy), else the math module's element by
    element on the host."""
    text = f'''def _{name}(x):
    """{name}, which the array API standard lacks: the namespace's own where it
    has one (PyTorch, JAX, CuPy), else math.{name} element by element on the
    host: on NumPy arrays, on each block of a Dask array (lazily, where the
    block lives), on array-api-strict's data (through DLPack)."""
    xp, dtype = _namespace(x)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.special.{name}(x)
    if array_api_compat.is_jax_namespace(xp):
        import jax.scipy.special

        return jax.scipy.special.{name}(x)
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.special

        return cupyx.scipy.special.{name}(x)
    if array_api_compat.is_dask_namespace(xp):
        return x.map_blocks(_{name}_host, dtype, dtype=dtype)
    if array_api_compat.is_numpy_namespace(xp):
        return _{name}_host(x, dtype)
    import numpy

    return xp.asarray(_{name}_host(numpy.from_dlpack(x), numpy.float64), dtype=dtype)


def _{name}_host(x, dtype):
    """math.{name} over a NumPy array (or a Dask array's block, on its worker)."""
    import numpy

    return numpy.vectorize(math.{name}, otypes=[float])(x).astype(dtype)
'''
    return Helper(f"_{name}", text, imports=("array_api_compat", "math"))


def _normalised(namespace: bool) -> dict[str, Helper]:
    """softmax and log_softmax along an axis, as helpers: one max pass, its
    result reused (one expression would compute it twice). `namespace`: the
    array API's (the namespace from the argument), else NumPy's."""
    first = "    $m, _ = _namespace(x)\n" if namespace else ""
    softmax = f'''def _softmax(x, axis):
    """softmax along `axis`: exp(x - max) / sum(exp(x - max)), no overflow."""
{first}    e = $m.exp(x - $m.max(x, axis=axis, keepdims=True))
    return e / $m.sum(e, axis=axis, keepdims=True)
'''
    log_softmax = f'''def _log_softmax(x, axis):
    """log_softmax along `axis`: (x - max) - log(sum(exp(x - max))), no overflow;
    the sum is 1 (the maximum's term) plus the others, taken by log1p, so that a
    log-probability near 0 keeps its digits."""
{first}    shifted = x - $m.max(x, axis=axis, keepdims=True)
    top = shifted == 0
    ties = $m.sum($m.asarray(top, dtype=shifted.dtype), axis=axis, keepdims=True) - 1.0
    rest = $m.sum($m.where(top, 0.0, $m.exp(shifted)), axis=axis, keepdims=True)
    return shifted - $m.log1p(rest + ties)
'''
    return {
        "_softmax": Helper("_softmax", softmax),
        "_log_softmax": Helper("_log_softmax", log_softmax),
    }


def _checks(shape: str, needs: tuple[str, ...] = ()) -> Helper:
    """`_check_shapes`, run first by every function that takes the inputs: each
    declared input's rank and sizes (SHAPES), a size name the same wherever it
    appears; `shape` reads an argument's shape ("$m.shape(value)")."""
    text = f'''# the shapes of calls already checked (a training loop passes the same ones)
_CHECKED = set()


def _check_shapes(*values):
    """Each declared input's shape against its declaration (SHAPES), a size
    name the same size wherever it appears: one ValueError naming the input, its
    declaration and what was passed. A size not known yet (a Dask array's
    unknown chunks) is not checked."""
    shapes = tuple({shape} for value in values)
    if shapes in _CHECKED:
        return
    sizes = {{}}
    for name, shape in zip(INPUTS, shapes):
        declared = SHAPES.get(name)
        if declared is None:
            continue
        kind = ("scalar", "vector", "matrix", "array")[min(len(declared), 3)]
        said = kind + (f"({{', '.join(map(str, declared))}})" if declared else "")
        if len(shape) != len(declared):
            axes = ("axes", "axis")[len(shape) == 1]
            raise ValueError(
                f"{{name}} is declared {{said}} but was given shape {{shape}} "
                f"({{len(shape)}} {{axes}}, not {{len(declared)}})"
            )
        for axis, (size, got) in enumerate(zip(declared, shape)):
            if not isinstance(got, int):
                continue
            why = ""
            if isinstance(size, str):
                first, where = sizes.setdefault(size, (got, name))
                why = f" ({{size}} = {{first}} from {{where}})" if where != name else ""
                size = first
            if got != size:
                raise ValueError(
                    f"{{name}} is declared {{said}} but was given shape {{shape}}: "
                    f"axis {{axis}} has size {{got}}, not {{size}}{{why}}"
                )
    if len(_CHECKED) < 64:
        _CHECKED.add(shapes)
'''
    return Helper("_check_shapes", text, needs=needs)


# What the backends of arrays write alike: NumPy's (and the standard's) maximum
# and minimum are binary, and take the first operand on a tie; float arrays
# whatever the dtype of the array they are shaped like; attributes.
_ARRAY_EXPANSIONS = {
    "max": _nested(_maximum),
    "min": _nested(_minimum),
    **{fn: _floats(fn) for fn in ("ones_like", "zeros_like")},
}
_WHERE = "{m}.where({0}, {1}, {2})"
_HELPED = {"_softmax": "_softmax", "_log_softmax": "_log_softmax"}  # helpers, by their own names
_ARRAY_POSTFIX = {"transpose": "{0}.T", "size": "{0}.size", "shape": "{0}.shape[{1}]"}
_ARRAY_CONSTANTS = {"pi": "{m}.pi", "e": "{m}.e", "float": "{m}.float64"}

MATH = Backend(
    name="math",
    title="Python floats",
    module="math",
    alias="math",
    syntax=Syntax(
        prefix="{m}.",
        # Python's own abs, max and min (max and min take the first operand on a tie)
        functions={"abs": "abs", "max": "max", "min": "min"},
        expansions={
            "sign": lambda x: select(x > 0, 1.0, select(x < 0, -1.0, 0.0)),
            # math.floor and math.ceil return ints: times 1.0, a float, as NumPy's (no
            # builtin float(), which an input of that name would shadow)
            "floor": lambda x: call("floor", x) * 1.0,
            "ceil": lambda x: call("ceil", x) * 1.0,
        },
        constants={"pi": "{m}.pi", "e": "{m}.e"},
        # a non-integer power of a negative float is complex in Python; math.pow
        # raises a domain error instead, as the hand-written code would
        power_call="pow",
    ),
    helpers={"_locate": Helper("_locate", _LOCATE)},
    locate=True,
)

NUMPY = Backend(
    name="numpy",
    title="NumPy",
    module="numpy",
    alias="np",
    syntax=Syntax(
        prefix="{m}.",
        functions={
            "asin": "{m}.arcsin",
            "acos": "{m}.arccos",
            "atan": "{m}.arctan",
            "asinh": "{m}.arcsinh",
            "acosh": "{m}.arccosh",
            "atanh": "{m}.arctanh",
            "atan2": "{m}.arctan2",
            "amax": "{m}.max",
            "amin": "{m}.min",
            "erf": "_erf",
            "erfc": "_erfc",
            "_unbroadcast": "_unbroadcast",
            **_HELPED,
        },
        expansions={**_ARRAY_EXPANSIONS, "full_like": _floats("full_like")},
        postfix=_ARRAY_POSTFIX,
        constants=_ARRAY_CONSTANTS,
        where=_WHERE,
    ),
    helpers={
        "_unbroadcast": Helper("_unbroadcast", _UNBROADCAST),
        "_erf": _special("erf", "erf"),
        "_erfc": _special("erfc", "erfc"),
        **_normalised(namespace=False),
        "_check_shapes": _checks("$m.shape(value)"),
    },
    arrays=True,
    release=True,
)

ARRAY = Backend(
    name="array",
    title="The array API (NumPy, CuPy, PyTorch, JAX, Dask through array-api-compat)",
    module="array_api_compat",
    alias="xp",
    syntax=Syntax(
        prefix="{m}.",
        # size: array-api-compat's (a PyTorch tensor's .size is a method)
        functions={
            "amax": "{m}.max",
            "amin": "{m}.min",
            "cumsum": "{m}.cumulative_sum",
            "erf": "_erf",
            "erfc": "_erfc",
            "_unbroadcast": "_unbroadcast",
            **_HELPED,
            "size": "array_api_compat.size",
        },
        expansions={
            **_ARRAY_EXPANSIONS,
            # full_like takes a Python number only: an adjoint may be a 0-d array
            "full_like": lambda a, v: Call("add", (_floats("zeros_like")(a), v)),
            "copy": lambda x: call("asarray", x, copy=Num(True)),
        },
        postfix={k: v for k, v in _ARRAY_POSTFIX.items() if k != "size"},
        # the float dtype is the arguments' (`_namespace`)
        constants={**_ARRAY_CONSTANTS, "float": "{d}"},
        # the standard multiplies no boolean array by a float (asarray: a Python bool too)
        mask="{m}.asarray({0}, dtype={d})",
        where=_WHERE,
    ),
    helpers={
        "_namespace": Helper("_namespace", _NAMESPACE, imports=("array_api_compat",)),
        "_unbroadcast": Helper("_unbroadcast", _UNBROADCAST_XP, imports=("array_api_compat",)),
        "_erf": _special_xp("erf"),
        "_erfc": _special_xp("erfc"),
        **_normalised(namespace=True),
        "_check_shapes": _checks("_shape(value)", needs=("_shape",)),
        "_shape": Helper("_shape", _SHAPE_XP),
        "_indices": Helper("_indices", _INDICES_XP, imports=("itertools",)),
    },
    arrays=True,
    release=True,
    namespace=True,
    shape_of="_shape({0})",
    indices="_indices({0})",
)

_NUMBA_IMPORT = """try:  # numba compiles this module's functions
    import llvmlite.binding
    import numba
    import numba.extending
    import numpy
except ModuleNotFoundError:
    raise ImportError(
        "this module is compiled by numba, which is not installed: pip install numba "
        "(or generate it with --backend math or --backend numpy)"
    ) from None

# numba's cache (in __pycache__ beside the module) where the module is a file: its
# functions compile once per machine; a module built in memory (stagegen.load,
# trace, verify) has no file to key a cache by and compiles at each first call
_CACHE = os.path.isfile(globals().get("__file__") or "")
"""

_POW = '''def _pow(x, n):
    """x ** n as the math backend computes it: Python's ** (pow) for an integer n,
    math.pow otherwise (a negative x is then a domain error, not a complex
    number); both call the C library's pow. Compiled, that same pow (_c_pow):
    numba's own turns pow(x, 2.0) into x * x, pow(x, 0.5) into sqrt(x) and
    pow(x, -1.0) into 1 / x, each rounded differently now and then."""
    return pow(x, n) if isinstance(n, int) else math.pow(x, n)


# the C library's pow under a name of this module's, which the compiler does not
# know as pow and so calls as it is (Python's pow: the process's C library)
_C = ctypes.CDLL(None if os.name == "posix" else "ucrtbase")
llvmlite.binding.add_symbol("stagegen_pow", ctypes.cast(_C.pow, ctypes.c_void_p).value)
_c_pow = numba.types.ExternalFunction(
    "stagegen_pow", numba.float64(numba.float64, numba.float64)
)


@numba.extending.overload(_pow)
def _pow_compiled(x, n):
    return lambda x, n: _c_pow(float(x), float(n))
'''

_ARRAYS = '''def _an_array(*values):
    """The first array among `values`, else 0.0: value_and_grad's test whether
    it was given arrays, one isinstance for numba to decide on the types."""
    return next((v for v in values if isinstance(v, numpy.ndarray)), 0.0)


@numba.extending.overload(_an_array)
def _an_array_compiled(*values):
    arrays = [k for k, t in enumerate(values) if isinstance(t, numba.types.Array)]
    if not arrays:
        return lambda *values: 0.0
    first = arrays[0]
    return lambda *values: values[first]


def _shape(*values):
    """The shape of the first array among `values` (() if none)."""
    return next((numpy.shape(v) for v in values if isinstance(v, numpy.ndarray)), ())


@numba.extending.overload(_shape)
def _shape_compiled(*values):
    arrays = [k for k, t in enumerate(values) if isinstance(t, numba.types.Array)]
    if not arrays:
        return lambda *values: ()
    first = arrays[0]
    return lambda *values: values[first].shape


def _same(value, shape):
    """Whether `value` is a number or an array of `shape`."""
    return not isinstance(value, numpy.ndarray) or value.shape == shape


@numba.extending.overload(_same)
def _same_compiled(value, shape):
    if not isinstance(value, numba.types.Array):
        return lambda value, shape: True
    if value.ndim != len(shape):
        return lambda value, shape: False
    return lambda value, shape: value.shape == shape


def _flat(value):
    """`value`'s elements as the fused loop reads them: a C-contiguous float64
    array (the array itself where it is one; a number: one element)."""
    return numpy.ascontiguousarray(value, dtype=numpy.float64).reshape(-1)


@numba.extending.overload(_flat)
def _flat_compiled(value):
    if not isinstance(value, numba.types.Array):
        return lambda value: numpy.full(1, float(value))
    if value.dtype == numba.float64 and value.layout == "C":
        return lambda value: value.reshape(value.size)

    def flat(value):
        return numpy.ascontiguousarray(value).reshape(value.size).astype(numpy.float64)

    return flat


def _shaped(elements, shape):
    """A result of the fused loop: an array of `shape`, or a number (shape ())."""
    return elements.reshape(shape) if shape else float(elements[0])


@numba.extending.overload(_shaped)
def _shaped_compiled(elements, shape):
    if len(shape) == 0:
        return lambda elements, shape: elements[0]
    return lambda elements, shape: elements.reshape(shape)


# numba's parallel range, by a name no input of the fused loop takes
_prange = numba.prange

# elements per block of the fused loop: blocks are what its threads share out, and
# what a number's gradient is summed over first (the same sums for any threads)
_BLOCK = 8192
'''

NUMBA = Backend(
    name="numba",
    title="numba",
    module="math",
    alias="math",
    syntax=Syntax(
        prefix=MATH.syntax.prefix,
        functions={**MATH.syntax.functions, "_pow": "_pow"},
        # every power through the C library's pow, as CPython's ** and math.pow
        expansions={**MATH.syntax.expansions, "pow": lambda x, n: Call("_pow", (x, n))},
        constants=MATH.syntax.constants,
    ),
    helpers={
        "_pow": Helper("_pow", _POW, imports=("ctypes", "math")),
        "_arrays": Helper("_arrays", _ARRAYS),
    },
    forms="math",
    imports=("os",),
    preamble=_NUMBA_IMPORT,
    decorator="@numba.njit(cache=_CACHE)",
    python_copies="py_",
    loops=True,
    loop_syntax=MATH.syntax,
    reserved=("float", "range"),
    loop_says=(
        "value_and_grad also takes arrays: given arrays of one shape (and numbers "
        "beside them) it runs its listing as one compiled loop over their elements, in "
        "parallel blocks (_value_and_grad_loop, numba's prange), reading each input "
        "once and writing the value and each gradient once; a number's gradient is its "
        "sum over the elements, per block of up to 8,192 elements and then across the blocks "
        "(whatever the number of threads). The loop's powers are numba's own (x**2 is "
        "x * x), within an ulp or two of the scalar functions'. An array that is "
        "not C-contiguous float64 is copied to one first; arrays of different shapes "
        "raise ValueError (broadcast them first, or generate with --backend numpy). "
        "forward and backward take numbers."
    ),
    domains={
        "math.log": "log: -inf at 0, NaN below",
        "math.log2": "log2: -inf at 0, NaN below",
        "math.log10": "log10: -inf at 0, NaN below",
        "math.log1p": "log1p: -inf at -1, NaN below",
        "math.sqrt": "sqrt: NaN below 0",
        "math.asin": "asin: NaN outside [-1, 1]",
        "math.acos": "acos: NaN outside [-1, 1]",
        "math.acosh": "acosh: NaN below 1",
        "math.atanh": "atanh: -inf at -1, inf at 1, NaN outside [-1, 1]",
        "math.exp": "exp: inf above 709.78",
        "math.expm1": "expm1: inf above 709.78",
        "math.sinh": "sinh: -inf or inf beyond 710.48 in size",
        "math.cosh": "cosh: inf beyond 710.48 in size",
        "math.sin": "sin: NaN at -inf and inf",
        "math.cos": "cos: NaN at -inf and inf",
        "math.tan": "tan: NaN at -inf and inf",
        "_pow": (
            "powers: inf where the result overflows and for 0 to a negative power, "
            "NaN for a negative number to a non-integer power"
        ),
    },
    says=(
        "Compiled by numba (nopython mode, fastmath off): the values are bit for bit "
        "those of the math backend's module. The functions compile once per machine "
        "where the module is a file (numba's cache), else at their first call. "
        "py_forward, py_backward and py_value_and_grad (and py_ before each function "
        "asked for) are the same listings as Python runs them. Compiled, a domain "
        "error gives NaN or inf where Python raises (a division by zero raises "
        "ZeroDivisionError in both)"
    ),
)

BACKENDS: Mapping[str, Backend] = MappingProxyType({b.name: b for b in (MATH, NUMPY, ARRAY, NUMBA)})

# The input language, for stage formulas in comments, docstrings and diagrams.
SOURCE = Syntax(prefix="", postfix={"transpose": "{0}.T"}, constants={"pi": "pi", "e": "E"})

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

from .expr import Call, Const, Expr, Named, Num, Ref, Slice, Slot, Subscript, call, function, select
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
    # a stage only one branch of a where reads (differentiate.guards), where the
    # other branch is taken: "select", not computed there (``math.sqrt(x) if pos
    # else 0.0``: it cannot raise); "quiet", computed under `quiet` (NumPy warns
    # on invalid values it then discards); "", computed as it stands
    guarded: str = ""
    quiet: str = ""

    @property
    def guarded_note(self) -> str:
        """How the module computes a guarded stage, for its docstring."""
        return {
            "select": "each is computed only where its branch is taken (0.0 elsewhere), as are "
            "its gradient lines, so it cannot raise where it has no value",
            "quiet": "each is computed everywhere without warnings and its gradient lines are "
            "selected where its branch is taken (0.0 elsewhere, never 0 * nan)",
        }.get(self.guarded, "")

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
    # functions (as printed) whose compiled values differ from Python's, and by how
    # much (measured): listed in the docstring of a module that calls them
    rounding: Mapping[str, str] = field(default_factory=dict)
    says: str = ""  # what the docstring says of the backend (how the code runs)
    # forward, backward and value_and_grad given arrays run their listings in one
    # compiled loop each over the elements (numba's prange), with the helpers
    # "_arrays"; `loop_says`: what the docstring says of them; `loop_refuses`: of
    # the functions asked for (--with), which have no loop and refuse arrays
    loops: bool = False
    loop_says: str = ""
    loop_refuses: str = ""
    # how the loop's listing is printed, if not by `syntax` (numba's: its own
    # powers, not the math backend's bit-for-bit pow, which costs a call each)
    loop_syntax: Syntax | None = None
    # builtins its functions read where a name the user gives would hide them
    # (numba's functions test isinstance(..., float); its loops call range)
    reserved: tuple[str, ...] = ()
    # the backend whose listing a program over arrays (an array input declared,
    # or an array gate) is generated with, where this one has no arrays (numba's:
    # numpy's), and what the module's docstring says of it
    arrays_by: str = ""
    arrays_says: str = ""
    # the backend whose listing value_and_grad runs where the loops would not do
    # (numba's: numpy's), for inputs whose shapes differ or lists; the module holds
    # that listing's value_and_grad as `_numpy_value_and_grad`
    broadcasts_by: str = ""
    # a subscript's adjoint: dout added into the adjoint at the index, in place
    # where the index picks each element once (``da[:, 1:3] += dv``; "" where
    # arrays may not be updated in place) and where index arrays may pick one
    # twice (NumPy's ``np.add.at``); {target} the adjoint, {index} the index
    # (``da[...]`` for `scatter_at`, the index tuple for `scatter_add`), {value}
    scatter_at: str = ""
    scatter_add: str = ""

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

    def scatter(self, at: Subscript, like: Expr) -> tuple[Expr, str]:
        """The index of a subscript's adjoint line, `at` over the operands (a
        `Subscript` of operand 0), and the statement's template that adds into
        `like` there (`scatter_at`, or `scatter_add` with the index as a tuple)."""
        picks = any(_picks(i) for i in at.index)
        if self.scatter_at and not picks:
            return Subscript(like, at.index), self.scatter_at
        items = [_index_item(i) for i in at.index]
        if at.open and self.syntax.every_axis:
            items.append(Ref("..."))
        return (items[0] if len(items) == 1 else call("tuple", *items)), self.scatter_add

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


def _expand_axes(a: Expr, axis: Expr) -> Expr:
    """expand_dims of a tuple of axes (ascending, non-negative) as nested calls of one."""
    if not isinstance(axis, Const):
        return Call("expand_dims", (a, axis))
    for k in axis.value:
        a = Call("expand_dims", (a, Num(k)))
    return a


def _picks(item) -> bool:
    """Whether a subscript's item is an index array (an operand's slot, an arange,
    an arange as a column), which may pick an element twice."""
    if isinstance(item, Subscript):
        item = item.value
    return isinstance(item, Slot) or (isinstance(item, Call) and item.fn == "arange")


def _index_item(item) -> Expr:
    """An item of a subscript as a value outside brackets: a slice as slice(...)."""
    if item is None:
        return Ref("None")
    if not isinstance(item, Slice):
        return item
    start, stop, step = (Ref("None") if p is None else p for p in (item.start, item.stop, item.step))
    if item.step is not None:
        return call("slice", start, stop, step)
    return call("slice", stop) if item.start is None else call("slice", start, stop)


def _nested(fn: Callable[..., Expr]) -> Callable[..., Expr]:
    """An n-ary max or min as NumPy's binary maximum or minimum, nested left to right."""

    def nest(*xs: Expr) -> Expr:
        return functools.reduce(fn, xs)

    return nest


_LOCATE = '''def _locate(exc):
    """Raise `exc` again, naming the numbered stage whose line raised it.

    Runs only when a stage fails (a domain error, a division by zero, an
    overflow, a value of the wrong type); it reads the failing statement from
    this module's source. An array among the values (this module computes
    with floats) is named, with the backend that takes arrays.
    """
    import linecache

    frame, line = exc.__traceback__.tb_frame, exc.__traceback__.tb_lineno
    arrays = [(n, v) for n, v in frame.f_locals.items() if getattr(v, "ndim", 0)]
    if arrays:
        name, value = arrays[0]
        raise TypeError(
            f"{name} is an array of shape {tuple(value.shape)}: this module computes "
            "with floats; generate it with --backend numpy (or --backend array) "
            "for arrays"
        ) from exc
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
    """The numpy backend's `name`, erf or erfc (NumPy has none): SciPy's at
    NumPy speed where SciPy is installed, else stagegen's, vectorised."""
    text = f"""try:  # SciPy's {name} at NumPy speed, where SciPy is installed
    from scipy.special import {scipy_name} as _{name}
except ImportError:  # NumPy has no {name}: stagegen's, vectorised (_erf_arrays)
    _{name} = _{name}_array
"""
    return Helper(f"_{name}", text, needs=("_erf_arrays",))


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

_SWAPAXES_XP = '''def _swapaxes(a, axis1, axis2):
    """Axes axis1 and axis2 of `a` swapped (the standard has permute_dims only)."""
    xp, dtype = _namespace(a)
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return xp.permute_dims(a, tuple(axes))
'''

_REVERSED_AXES_XP = '''def _reversed_axes(a):
    """`a` with every axis reversed, NumPy's a.T (the standard's .T is of matrices only)."""
    xp, dtype = _namespace(a)
    return xp.permute_dims(a, tuple(range(a.ndim - 1, -1, -1)))
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


# digamma and trigamma, which neither the math module nor NumPy has (the
# gradients of lgamma and gamma, and their second order). On [1, 2] digamma is
# (x - x0) times a polynomial in x - 1.5 (a degree-21 Chebyshev fit of
# psi(x) / (x - x0) at 60 digits; x0 = 1.4616..., its positive zero, as two
# floats), so it keeps its digits near its zero; elsewhere the recurrences
# psi(x + 1) = psi(x) + 1/x and psi1(x + 1) = psi1(x) - 1/x**2, the reflections
# psi(1 - x) - psi(x) = pi / tan(pi x) and psi1(1 - x) + psi1(x) = pi**2 / sin(pi x)**2
# (with x less its nearest integer: pi x reduced exactly), and the asymptotic series from 10,
# whose coefficients are Bernoulli numbers, B2k / 2k and B2k, highest power first.
_PSI_NEAR_ZERO = (
    -0.00017312261802727394,
    0.00025968482126430747,
    -0.00015148586836773365,
    0.0002272331660987376,
    -0.0004821990530566789,
    0.0007233266279287554,
    -0.0010376374098418604,
    0.0015566317474486838,
    -0.002345267632540769,
    0.003519006401502276,
    -0.005279964873257405,
    0.007926944646403797,
    -0.011908218001568644,
    0.0179072524394512,
    -0.02697579675613825,
    0.04076083381242074,
    -0.061922133273064534,
    0.09498872445494122,
    -0.14840492305390884,
    0.2405424842407742,
    -0.4236274212814605,
    0.951055876031833,
)
_PSI_SERIES = (1 / 12, -691 / 32760, 1 / 132, -1 / 240, 1 / 252, -1 / 120, 1 / 12)
_PSI1_SERIES = (-3617 / 510, 7 / 6, -691 / 2730, 5 / 66, -1 / 30, 1 / 42, -1 / 30, 1 / 6)


def _coefficients(values: tuple, indent: str) -> str:
    """A tuple of floats as source, one a line (as black writes it)."""
    return "(\n" + "".join(f"{indent}    {v!r},\n" for v in values) + f"{indent})"


def _digamma_text() -> str:
    return f'''def _digamma(x):
    """digamma(x), the derivative of log|gamma(x)|, of a float (the math module
    has none): on [1, 2] a polynomial times the distance to its zero, on (0, 1)
    and (2, 10) the recurrence to there, from 10 the asymptotic series, below 0
    the reflection. At the poles SciPy's values: -inf at 0 (inf at -0), NaN at
    -1, -2, ..."""
    if x <= 0.0 and x == $m.floor(x):
        return -$m.copysign($m.inf, x) if x == 0.0 else $m.nan
    reflected = 0.0
    if x < 0.0:
        reflected = $m.pi / $m.tan($m.pi * (x - $m.floor(x + 0.5)))
        x = 1.0 - x
    if x >= 10.0:
        z, tail = 1.0 / (x * x), 0.0
        for c in {_coefficients(_PSI_SERIES, "        ")}:
            tail = (tail + c) * z
        return $m.log(x) - 0.5 / x - tail - reflected
    steps = 0.0
    if x < 1.0:
        steps, x = -1.0 / x, x + 1.0
    while x > 2.0:
        x -= 1.0
        steps += 1.0 / x
    u, near = x - 1.5, 0.0
    for c in {_coefficients(_PSI_NEAR_ZERO, "    ")}:
        near = near * u + c
    zero = (x - 1.4616321449683622) - 9.549995429965697e-17
    return zero * near + steps - reflected
'''


def _trigamma_text() -> str:
    return f'''def _trigamma(x):
    """trigamma(x), the derivative of digamma, of a float: the recurrence up to
    10, the asymptotic series there, the reflection below 0; inf at the poles."""
    if x <= 0.0 and x == $m.floor(x):
        return $m.inf
    if x < 0.0:
        s = $m.sin($m.pi * (x - $m.floor(x + 0.5)))
        return ($m.pi / s) ** 2 - _trigamma(1.0 - x)
    steps = 0.0
    while x < 10.0:
        steps += 1.0 / x / x  # x * x underflows below 1e-154
        x += 1.0
    z, tail = 1.0 / (x * x), 0.0
    for c in {_coefficients(_PSI1_SERIES, "    ")}:
        tail = (tail + c) * z
    return steps + 1.0 / x + 0.5 * z + tail / x
'''


def _digamma_array_text() -> str:
    return f'''def _digamma_array(x):
    """digamma over a NumPy array, as _digamma computes a float's (its poles
    too), each branch on the elements that take it."""
    return _in_blocks(x, _digamma_block)


def _digamma_block(x):
    import numpy

    with numpy.errstate(all="ignore"):
        low, reflected = x <= 0.0, 0.0
        if low.any():
            zero, zero_at = x == 0.0, -numpy.copysign(numpy.inf, x)
            pole, negative = low & (x == numpy.floor(x)), x < 0.0
            r = numpy.pi * (x - numpy.round(x))
            reflected = numpy.where(negative, numpy.pi / numpy.tan(r), 0.0)
            x = numpy.where(negative, 1.0 - x, x)
        # each branch on its own elements only: the series from 10, else the steps
        # down to [1, 2] and the polynomial there
        big = x >= 10.0
        out = numpy.empty_like(x)
        if big.any():
            y = x[big]
            z = 1.0 / (y * y)
            tail = numpy.zeros_like(y)
            for c in {_coefficients(_PSI_SERIES, "            ")}:
                tail += c
                tail *= z
            out[big] = numpy.log(y) - 0.5 / y - tail
        rest = ~big
        if rest.any():
            y = x[rest]
            small = y < 1.0
            steps = numpy.where(small, -1.0 / y, 0.0)
            y = numpy.where(small, y + 1.0, y)
            n = numpy.floor(y) - 1.0  # steps down to r in [1, 2], at most 8
            r = y - n  # exact
            # 1 / (y - 1), 1 / (y - 2), ..., 1 / r: the smallest terms first
            for k in numpy.arange(int(numpy.fmax.reduce(n, initial=0.0)) - 1, -1, -1):
                steps += (n > k) / (r + k)
            u = r - 1.5
            near = numpy.zeros_like(u)
            for c in {_coefficients(_PSI_NEAR_ZERO, "            ")}:
                near *= u
                near += c
            t = (r - 1.4616321449683622) - 9.549995429965697e-17
            out[rest] = t * near + steps
        out -= reflected
        if low.any():
            out = numpy.where(pole, numpy.nan, out)
            out = numpy.where(zero, zero_at, out)
    return out
'''


def _trigamma_array_text() -> str:
    return f'''def _trigamma_array(x):
    """trigamma over a NumPy array, as _trigamma computes a float's."""
    return _in_blocks(x, _trigamma_block)


def _trigamma_block(x):
    import numpy

    with numpy.errstate(all="ignore"):
        negative = x < 0.0
        pole = (x <= 0.0) & (x == numpy.floor(x))
        s = numpy.sin(numpy.pi * (x - numpy.round(x)))
        reflected = (numpy.pi / s) ** 2
        x = numpy.where(negative, 1.0 - x, x)
        steps = 0.0
        for _ in numpy.arange(10):  # up to 10 and more
            up = x < 10.0
            steps = steps + numpy.where(up, 1.0 / x / x, 0.0)
            x = numpy.where(up, x + 1.0, x)
        z, tail = 1.0 / (x * x), 0.0
        for c in {_coefficients(_PSI1_SERIES, "        ")}:
            tail = (tail + c) * z
        out = steps + 1.0 / x + 0.5 * z + tail / x
        out = numpy.where(negative, reflected - out, out)
    return numpy.where(pole, numpy.inf, out)
'''


# erf and erfc on NumPy arrays without SciPy. Below 0.5, erf(x) = x Q(x**2);
# from 0.5, erfc(a) = t exp(-a**2 + P(u)), t = 2 / (2 + a), u = (t - 0.4333...) /
# 0.3666... in [-1, 1] over a in [0.5, 28] (erfc is 0 beyond 27.3), so that
# P(u) = log(erfcx(a) / t) is smooth: Q and P are Chebyshev fits (60 digits, degree
# 9 in x**2 on [0, 0.25] and degree 23 in u) written in powers, highest first.
# exp(-a**2) is exp(-z**2) exp((z - a)(z + a)), z = a to 24 bits: z**2 is exact, so
# the upper tail keeps its digits (a**2 would round: 2.4e-14 relative at a = 26).
_ERFC_TAIL = (
    7.704472047823262e-11,
    -1.5684487313094105e-10,
    -5.946171755117068e-10,
    2.160837060021389e-09,
    6.550609981147638e-10,
    -1.4834893746147001e-08,
    1.9250574421486974e-08,
    6.259964503574874e-08,
    -2.027495453754436e-07,
    -1.210278668596771e-07,
    1.337898588741976e-06,
    -6.554059625259282e-07,
    -7.261948618372502e-06,
    9.671422829790342e-06,
    3.684061430153943e-05,
    -7.966889168410094e-05,
    -0.00019984274912631845,
    0.0005815061396394131,
    0.001397369664439874,
    -0.004366761479666187,
    -0.01584184386483681,
    0.034874702508249686,
    0.48225779121304757,
    -0.7605305090234711,
)
_ERF_SMALL = (
    -1.462091340945175e-07,
    1.637123442577e-06,
    -1.4923003368152099e-05,
    0.00012055286202005714,
    -0.0008548326510724796,
    0.0052239776220169365,
    -0.02686617064499972,
    0.1128379167095487,
    -0.3761263890318375,
    1.1283791670955126,
)


def _erf_arrays_text() -> str:
    return f"""def _erf_array(x):
    \"\"\"erf over a NumPy array, vectorised (NumPy has none): within 4 ulp of the
    exact value plus its condition number; SciPy's may differ by a few ulp.\"\"\"
    return _erf_blocks(x, _erf_block)


def _erfc_array(x):
    \"\"\"erfc over a NumPy array, vectorised, keeping the upper tail's digits:
    within 4 ulp of the exact value plus its condition number.\"\"\"
    return _erf_blocks(x, _erfc_block)


def _erf_blocks(x, block):
    \"\"\"`block` over `x` in blocks of 2**15 elements (which stay in cache).\"\"\"
    x = $m.asarray(x, dtype=$m.float64)
    flat = x.reshape(-1)
    out = $m.empty_like(flat)
    for start in $m.arange(0, flat.size, 32768):
        out[start : start + 32768] = block(flat[start : start + 32768])
    return out.reshape(x.shape)


def _erf_block(x):
    with $m.errstate(all="ignore"):
        a = $m.minimum($m.abs(x), 28.0)
        big = $m.copysign(1.0 - _erfc_tail($m.maximum(a, 0.5)), x)
        return $m.where(a < 0.5, _erf_small(x, a), big)


def _erfc_block(x):
    with $m.errstate(all="ignore"):
        a = $m.minimum($m.abs(x), 28.0)
        tail = _erfc_tail($m.maximum(a, 0.5))
        big = $m.where(x < 0.0, 2.0 - tail, tail)
        return $m.where(a < 0.5, 1.0 - _erf_small(x, a), big)


def _erfc_tail(a):
    \"\"\"erfc(a) for 0.5 <= a <= 28.\"\"\"
    t = 2.0 / (2.0 + a)
    u = (t - 0.43333333333333335) * 2.727272727272727
    p = $m.full_like(a, {_ERFC_TAIL[0]!r})
    for c in {_coefficients(_ERFC_TAIL[1:], "    ")}:
        p *= u
        p += c
    z = a.astype($m.float32).astype($m.float64)
    p += (z - a) * (z + a)
    return t * $m.exp(-(z * z)) * $m.exp(p)


def _erf_small(x, a):
    \"\"\"erf(x) for |x| = a < 0.5 (garbage, but finite, elsewhere).\"\"\"
    b = $m.minimum(a, 0.5)
    s = b * b
    q = $m.full_like(s, {_ERF_SMALL[0]!r})
    for c in {_coefficients(_ERF_SMALL[1:], "    ")}:
        q *= s
        q += c
    return x * q
"""


_IN_BLOCKS = '''def _in_blocks(x, block):
    """`block` over a NumPy array of floats in blocks of 2**15 elements, which
    stay in cache through its many passes."""
    import numpy

    x = numpy.asarray(x, dtype=numpy.float64)
    flat = x.reshape(-1)
    out = numpy.empty_like(flat)
    for start in numpy.arange(0, flat.size, 32768):
        out[start : start + 32768] = block(flat[start : start + 32768])
    return out.reshape(x.shape)
'''

# log|gamma| on [1, 2] is (x - 1)(x - 2) times a polynomial in x - 1.5 (a degree-21
# Chebyshev fit at 60 digits), so it keeps its digits at its zeros 1 and 2; below 1
# and up to 10 the recurrence log|gamma(x + 1)| = log|gamma(x)| + log(x) (one log of
# the product of the steps), from 10 Stirling's series (Bernoulli numbers
# B2k / (2k (2k - 1)), highest power first), below 0 the reflection.
_LGAMMA_NEAR_ZEROS = (
    -7.760660152513446e-06,
    1.2140008083973407e-05,
    -8.355075869795273e-06,
    1.3186019073996835e-05,
    -2.7201673025504752e-05,
    4.30276814976503e-05,
    -6.614136022346414e-05,
    0.00010535512483785591,
    -0.0001689178215524898,
    0.00027131373861446925,
    -0.00043799307479613914,
    0.000711519067515296,
    -0.0011644145847310124,
    0.0019229163127905161,
    -0.0032120740737152814,
    0.005446457839126065,
    -0.009425622448525798,
    0.01679709863127416,
    -0.031308487501010646,
    0.06291140107456439,
    -0.14595989591430608,
    0.4831289505409809,
)
_STIRLING = (1 / 156, -691 / 360360, 1 / 1188, -1 / 1680, 1 / 1260, -1 / 360, 1 / 12)


def _lgamma_array_text() -> str:
    return f'''def _lgamma_array(x):
    """log|gamma| over a NumPy array, vectorised (NumPy has none): within 4 ulp of
    the exact value plus its condition number, near its zeros 1 and 2 within an
    ulp of 1; inf at the poles."""
    return _in_blocks(x, _lgamma_block)


def _lgamma_block(x):
    import numpy

    with numpy.errstate(all="ignore"):
        negative = x < 0.0
        pole = (x <= 0.0) & (x == numpy.floor(x))
        y = numpy.where(negative, 1.0 - x, x)
        big = y >= 10.0
        small = y < 1.0
        shift = numpy.where(small, -numpy.log(y), 0.0)
        z = numpy.where(small, y + 1.0, y)
        n = numpy.where(big, 0.0, numpy.maximum(numpy.floor(z) - 1.0, 0.0))
        steps = numpy.ones_like(z)
        for k in numpy.arange(1.0, 9.0):  # down to [1, 2)
            steps *= numpy.where(k <= n, z - k, 1.0)
        z -= n
        u = z - 1.5
        p = numpy.full_like(u, {_LGAMMA_NEAR_ZEROS[0]!r})
        for c in {_coefficients(_LGAMMA_NEAR_ZEROS[1:], "        ")}:
            p *= u
            p += c
        near = (z - 1.0) * (z - 2.0) * p + numpy.log(steps) + shift
        w = 1.0 / y
        w2, series = w * w, numpy.full_like(y, {_STIRLING[0]!r})
        for c in {_coefficients(_STIRLING[1:], "        ")}:
            series *= w2
            series += c
        # (y - 0.5) log(y) - y + log(2 pi) / 2, not cancelling y against y log(y)
        series = series * w + ((y - 0.5) * (numpy.log(y) - 1.0) + 0.4189385332046727)
        out = numpy.where(big, series, near)
        sine = numpy.abs(numpy.sin(numpy.pi * (x - numpy.round(x))))
        out = numpy.where(negative, numpy.log(numpy.pi / sine) - out, out)
        return numpy.where(pole, numpy.inf, out)
'''


_GAMMA_FLOATS = '''def _gamma_float(x):
    """math.gamma; where it raises, SciPy's gamma: inf past overflow (with the
    sign of gamma), +-inf at +-0, NaN at the negative integers and -inf."""
    import math

    try:
        return math.gamma(x)
    except ArithmeticError:  # overflow
        return -math.inf if x < 0 and math.floor(x) % 2 else math.inf
    except ValueError:
        return math.copysign(math.inf, x) if x == 0 else math.nan


def _gamma_floats(x):
    """_gamma_float element by element over a NumPy array."""
    import numpy

    return numpy.vectorize(_gamma_float, otypes="d")(x)
'''

# The gamma family on NumPy arrays: SciPy's name, the fallback without SciPy
# (vectorised NumPy; gamma the math module's element by element), what that needs.
_GAMMA_NUMPY = {
    "lgamma": ("gammaln", "_lgamma_array", ("_in_blocks", "_lgamma_array")),
    "gamma": ("gamma", "_gamma_floats", ("_gamma_floats",)),
    "digamma": ("psi", "_digamma_array", ("_in_blocks", "_digamma_array")),
    "trigamma": (None, "_trigamma_array", ("_in_blocks", "_trigamma_array")),  # polygamma(1, x)
}


def _gamma_numpy(name: str, defined: str) -> Helper:
    """lgamma, gamma, digamma or trigamma on NumPy arrays, defined as `defined`:
    SciPy's at NumPy speed where SciPy is installed, else the fallback."""
    scipy_name, fallback, need = _GAMMA_NUMPY[name]
    if scipy_name is None:
        text = f'''def {defined}(x):
    """trigamma: SciPy's polygamma(1, x) where SciPy is installed, else NumPy's."""
    return {fallback}(x) if _polygamma is None else _polygamma(1, x)


try:
    from scipy.special import polygamma as _polygamma
except ImportError:
    _polygamma = None
'''
    else:
        text = f"""try:  # SciPy's {name} at NumPy speed, where SciPy is installed
    from scipy.special import {scipy_name} as {defined}
except ImportError:  # NumPy has no {name}
    {defined} = {fallback}
"""
    return Helper(defined, text, needs=need)


def _gamma_helpers() -> dict[str, Helper]:
    """What the numpy backend's gamma family needs besides itself."""
    return {
        "_in_blocks": Helper("_in_blocks", _IN_BLOCKS),
        "_lgamma_array": Helper("_lgamma_array", _lgamma_array_text()),
        # element by element, without SciPy (the math module's gamma)
        "_gamma_floats": Helper("_gamma_floats", _GAMMA_FLOATS),
        "_digamma_array": Helper("_digamma_array", _digamma_array_text()),
        "_trigamma_array": Helper("_trigamma_array", _trigamma_array_text()),
    }


# The array backend's: PyTorch's (None: it has none), and JAX's and CuPy's scipy.special.
_GAMMA_XP = {
    "lgamma": ("torch.special.gammaln(x)", "gammaln(x)"),
    "gamma": (None, "gamma(x)"),
    "digamma": ("torch.special.digamma(x)", "digamma(x)"),
    "trigamma": ("torch.special.polygamma(1, x)", "polygamma(1, x)"),
}


def _gamma_xp(name: str) -> dict[str, Helper]:
    """The array backend's lgamma, gamma, digamma or trigamma, which the array
    API standard lacks: the namespace's own where it has one (PyTorch, JAX,
    CuPy), else the numpy backend's on the host (per block of a Dask array)."""
    torch, special = _GAMMA_XP[name]
    on_torch = f"""    if array_api_compat.is_torch_namespace(xp):
        import torch

        return {torch}
"""
    text = f'''def _{name}(x):
    """{name}, which the array API standard lacks: the namespace's own where it
    has one, else on the host (SciPy's where it is installed, else NumPy)."""
    xp, dtype = _namespace(x)
{on_torch if torch else ""}    if array_api_compat.is_jax_namespace(xp):
        import jax.scipy.special

        return jax.scipy.special.{special}
    if array_api_compat.is_cupy_namespace(xp):
        import cupyx.scipy.special

        return cupyx.scipy.special.{special}
    if array_api_compat.is_dask_namespace(xp):
        return x.map_blocks(_{name}_host, dtype, dtype=dtype)
    if array_api_compat.is_numpy_namespace(xp):
        return _{name}_host(x, dtype)
    import numpy

    return xp.asarray(_{name}_host(numpy.from_dlpack(x), numpy.float64), dtype=dtype)


def _{name}_host(x, dtype):
    """{name} over a NumPy array (or a Dask array's block, on its worker)."""
    return _{name}_numpy(x).astype(dtype)
'''
    host = _gamma_numpy(name, f"_{name}_numpy")
    helper = Helper(f"_{name}", text, imports=("array_api_compat",), needs=(host.name, *host.needs))
    return {host.name: host, helper.name: helper}


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
    squeezed = (
        "$m.reshape(out, ()) if axis is None else $m.squeeze(out, axis=axis)"
        if namespace
        else "$m.squeeze(out, axis=axis)[()]"
    )
    logsumexp = f'''def _logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) along `axis` (of every element if None): max plus log1p
    of the other terms of sum(exp(x - max)), one max pass, no overflow, and a
    value near the maximum keeps its digits."""
{first}    top = $m.max(x, axis=axis, keepdims=True)
    shifted = x - top
    peak = shifted == 0
    ties = $m.sum($m.asarray(peak, dtype=shifted.dtype), axis=axis, keepdims=True) - 1.0
    rest = $m.sum($m.where(peak, 0.0, $m.exp(shifted)), axis=axis, keepdims=True)
    out = top + $m.log1p(rest + ties)
    return out if keepdims else {squeezed}
'''
    return {
        "_softmax": Helper("_softmax", softmax),
        "_log_softmax": Helper("_log_softmax", log_softmax),
        "_logsumexp": Helper("_logsumexp", logsumexp),
    }


def _prod_others(namespace: bool) -> Helper:
    """Each element's product of the other elements along an axis (of every
    element if the axis is None): prod's gradient, without dividing by the
    element. `namespace`: the array API's, else NumPy's."""
    if namespace:
        first = """    $m, dtype = _namespace(a)
    a = $m.asarray(a, dtype=dtype)
"""
        whole = "$m.reshape(_prod_others($m.reshape(a, (-1,)), 0), _shape(a))"
        names = {"concat": "concat", "cumprod": "cumulative_prod", "shape": "_shape(b)"}
    else:
        first = """    a = $m.asarray(a)
    if a.dtype.kind in "biu":  # booleans and integers: a gradient of floats
        a = a.astype($m.float64)
"""
        whole = "_prod_others(a.reshape(-1), 0).reshape(a.shape)"
        names = {"concat": "concatenate", "cumprod": "cumprod", "shape": "b.shape"}
    text = f'''def _prod_others(a, axis=None):
    """Each element's product of the other elements along `axis` (an axis or a
    tuple of axes; of every element if None): the products before it and after
    it (exclusive cumulative products from both ends) multiplied, no division,
    so right where elements are 0."""
{first}    if axis is None:
        return {whole}
    if isinstance(axis, tuple):  # several axes: moved to the end and made one
        ends = tuple(range(-len(axis), 0))
        b = $m.moveaxis(a, axis, ends)
        shape = {names["shape"]}
        line = $m.reshape(b, shape[: len(shape) - len(axis)] + (-1,))
        return $m.moveaxis($m.reshape(_prod_others(line, -1), shape), ends, axis)
    b = $m.moveaxis(a, axis, -1)
    ones = $m.ones_like(b[..., :1])
    before = $m.{names["cumprod"]}(b[..., :-1], axis=-1)
    after = $m.flip($m.{names["cumprod"]}($m.flip(b[..., 1:], axis=-1), axis=-1), axis=-1)
    before = $m.{names["concat"]}([ones, before], axis=-1)
    after = $m.{names["concat"]}([after, ones], axis=-1)
    return $m.moveaxis(before * after, -1, axis)
'''
    return Helper("_prod_others", text, needs=("_shape",) if namespace else ())


def _index_checks(integer: str, eager: str, shape: str, extremes: str, needs=(), imports=()) -> Helper:
    """`_check_indexes`, run after `_check_shapes`: each index input (INDEXES) an
    array of integers whose values lie in the range of every axis it indexes;
    `integer` tests `value`'s dtype, `eager` whether its values can be read now
    (not a Dask graph's or JAX's traced ones; the body of `_eager`), `shape` reads
    a shape, `extremes` sets `low` and `high` to `value`'s least and greatest values."""
    text = f'''def _check_indexes(*values):
    """Each index input (INDEXES: the sizes of the axes it indexes, ints or
    size names) an array of integers in -size .. size - 1 for each axis, as
    NumPy reads a negative index: one ValueError naming the input, the axis's
    size and a value out of range. Values computed lazily are not read."""
    given = dict(zip(INPUTS, values))
    for name, sizes in INDEXES.items():
        value = given[name]
        dtype = getattr(value, "dtype", None)
        if dtype is None or not _integers(value, dtype):
            got = f"{{dtype}} values" if dtype is not None else type(value).__name__
            said = ", ".join(map(str, SHAPES[name]))
            raise ValueError(
                f"{{name}} is declared index({{said}}), an array of integers, but was "
                f"given {{got}}: pass an integer array"
            )
        if not _eager(value) or not math.prod({shape}):
            continue
        {extremes}
        for size in sizes:
            named = size
            if isinstance(size, str):  # a size name: the size of an input's axis
                declared = next(n for n, shape in SHAPES.items() if size in shape)
                size = {shape.replace("value", "given[declared]")}[SHAPES[declared].index(size)]
            if low < -size or high >= size:
                said = f" ({{named}}, from {{declared}})" if isinstance(named, str) else ""
                raise ValueError(
                    f"{{name}} indexes an axis of size {{size}}{{said}} but holds "
                    f"{{low if low < -size else high}} (the range is {{-size}} to {{size - 1}})"
                )


def _integers(value, dtype):
    """Whether `value` holds integers (not booleans, which NumPy reads as a mask)."""
    return {integer}


def _eager(value):
    """Whether `value`'s elements can be read now."""
    {eager}
'''
    return Helper("_check_indexes", text, imports=("math", *imports), needs=needs)


def _checks(shape: str, needs: tuple[str, ...] = ()) -> Helper:
    """`_check_shapes`, run first by every function that takes the inputs: each
    declared input's rank and sizes (SHAPES), a size name the same wherever it
    appears (``4*H`` four times it); `shape` reads an argument's shape
    ("$m.shape(value)")."""
    text = f'''# the shapes of calls already checked (a training loop passes the same ones)
_CHECKED = set()


def _check_shapes(*values):
    """Each declared input's shape against its declaration (SHAPES), a size
    name the same size wherever it appears (4*H four times it): one ValueError
    naming the input, its declaration and what was passed. A size not known yet
    (a Dask array's unknown chunks) is not checked."""
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
            if isinstance(size, str):  # a name, or a multiple of one: 4*H
                count, _, base = size.rpartition("*")
                count = int(count or 1)
                if base not in sizes and got % count == 0:
                    sizes[base] = (got // count, name)
                first, where = sizes.get(base, (None, name))
                why = f" ({{base}} = {{first}} from {{where}})" if where != name else ""
                size = size if first is None else count * first
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
_HELPED = {  # helpers, by their own names
    "_softmax": "_softmax",
    "_log_softmax": "_log_softmax",
    "_logsumexp": "_logsumexp",
    "_prod_others": "_prod_others",
    "slice": "slice",  # Python's, in a subscript's index outside brackets
}
_PSI_HELPED = {"digamma": "_digamma", "trigamma": "_trigamma"}
_GAMMA_HELPED = {"lgamma": "_lgamma", "gamma": "_gamma", **_PSI_HELPED}
_ARRAY_POSTFIX = {
    "transpose": "{0}.T",
    "shape_of": "{0}.shape",
    "reversed_axes": "{0}.T",
    "size": "{0}.size",
    "shape": "{0}.shape[{1}]",
}
_ARRAY_CONSTANTS = {"pi": "{m}.pi", "e": "{m}.e", "float": "{m}.float64"}

MATH = Backend(
    name="math",
    title="Python floats",
    module="math",
    alias="math",
    syntax=Syntax(
        prefix="{m}.",
        # Python's own abs, max and min (max and min take the first operand on a tie)
        functions={"abs": "abs", "max": "max", "min": "min", **_PSI_HELPED},
        expansions={
            "sign": lambda x: select(x > 0, 1.0, select(x < 0, -1.0, 0.0)),
            # math.floor and math.ceil return ints: times 1.0, a float, as NumPy's (no
            # builtin float(), which an input of that name would shadow)
            "floor": lambda x: call("floor", x) * 1.0,
            "ceil": lambda x: call("ceil", x) * 1.0,
        },
        constants={"pi": "{m}.pi", "e": "{m}.e"},
        logic={"logical_and": "and", "logical_or": "or", "logical_not": "not"},
        # a non-integer power of a negative float is complex in Python; math.pow
        # raises a domain error instead, as the hand-written code would
        power_call="pow",
    ),
    helpers={
        "_locate": Helper("_locate", _LOCATE),
        "_digamma": Helper("_digamma", _digamma_text()),
        "_trigamma": Helper("_trigamma", _trigamma_text()),
    },
    locate=True,
    guarded="select",
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
            "permute_dims": "{m}.transpose",  # (NumPy 1.26 has no permute_dims)
            "concat": "{m}.concatenate",
            "amax": "{m}.max",
            "amin": "{m}.min",
            "erf": "_erf",
            "erfc": "_erfc",
            **_GAMMA_HELPED,
            "_unbroadcast": "_unbroadcast",
            **_HELPED,
        },
        expansions={
            **_ARRAY_EXPANSIONS,
            "full_like": _floats("full_like"),
            # NumPy 1.26 has no .mT
            "matrix_transpose": lambda a: call("swapaxes", a, Num(-1), Num(-2)),
        },
        postfix=_ARRAY_POSTFIX,
        constants=_ARRAY_CONSTANTS,
        where=_WHERE,
    ),
    helpers={
        "_unbroadcast": Helper("_unbroadcast", _UNBROADCAST),
        "_erf_arrays": Helper("_erf_arrays", _erf_arrays_text()),  # before what reads it
        "_erf": _special("erf", "erf"),
        "_erfc": _special("erfc", "erfc"),
        **_gamma_helpers(),
        **{f"_{name}": _gamma_numpy(name, f"_{name}") for name in _GAMMA_NUMPY},
        **_normalised(namespace=False),
        "_prod_others": _prod_others(namespace=False),
        "_check_shapes": _checks("$m.shape(value)"),
        "_check_indexes": _index_checks(
            # (dtype.kind and the methods: a call's fixed cost, for small index arrays)
            'dtype.kind in "iu"',
            "return True",
            "$m.shape(value)",
            "low, high = int(value.min()), int(value.max())",
        ),
    },
    arrays=True,
    release=True,
    guarded="quiet",
    quiet='with {m}.errstate(all="ignore"):',
    scatter_at="{index} += {value}",
    scatter_add="{m}.add.at({target}, {index}, {value})",
)

_QUIET_XP = '''def _quiet():
    """A block in which NumPy does not warn of the invalid values of a branch
    that where() then discards (on NumPy arrays, array-api-strict's, Dask
    blocks computed here); the other namespaces do not warn."""
    try:
        import numpy
    except ImportError:
        return contextlib.nullcontext()
    return numpy.errstate(all="ignore")
'''

_ADD_AT_XP = '''def _add_at(target, index, value):
    """`target` with `value` added at `index`, an element an index array picks
    twice getting both (a subscript's adjoint): NumPy's add.at, PyTorch's
    index_add_, JAX's .at[].add, Dask's bincount (lazily), array-api-strict's on
    the host; where the index picks each element once (slices, integers), in place."""
    if hasattr(target, "at"):  # JAX: arrays are not updated in place
        return target.at[index].add(value)
    items = index if isinstance(index, tuple) else (index,)
    picks = any(hasattr(i, "shape") for i in items)
    if array_api_compat.is_numpy_array(target):
        import numpy

        numpy.add.at(target, index, value)
    elif picks and array_api_compat.is_torch_array(target):
        import torch

        # the flat positions the index picks, by PyTorch's own indexing, then added
        # there one by one (index_add_ adds a position picked twice twice)
        count = target.numel()
        flat = torch.arange(count, device=target.device).reshape(target.shape)[index]
        value = torch.broadcast_to(torch.as_tensor(value, dtype=target.dtype), flat.shape)
        target.view(-1).index_add_(0, flat.reshape(-1), value.reshape(-1))
    elif picks and array_api_compat.is_dask_array(target):
        import dask.array

        # lazily: the flat positions the index picks (Dask's own indexing), and the
        # values summed at each position (bincount: a position picked twice, twice)
        picked = dask.array.arange(target.size).reshape(target.shape)[index]
        flat = picked.ravel()
        value = dask.array.broadcast_to(value, picked.shape).ravel()
        value = value.rechunk(flat.chunks)
        added = dask.array.bincount(flat, weights=value, minlength=target.size)
        return target + added.reshape(target.shape).astype(target.dtype)
    elif picks and array_api_compat.is_array_api_strict_namespace(
        array_api_compat.array_namespace(target)
    ):  # the standard's own test namespace: added on the host, through DLPack
        import numpy

        def host(a):
            return numpy.from_dlpack(a) if hasattr(a, "__dlpack__") else a

        added = numpy.array(host(target))
        numpy.add.at(added, tuple(host(i) for i in items), host(value))
        return array_api_compat.array_namespace(target).asarray(added)
    elif picks:
        name = array_api_compat.array_namespace(target).__name__
        raise NotImplementedError(
            f"the adjoint of a subscript with index arrays on {name} arrays: "
            "generate with --backend numpy, or run it on NumPy, PyTorch or JAX arrays"
        )
    else:
        target[index] += value
    return target
'''

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
            **_GAMMA_HELPED,
            "_unbroadcast": "_unbroadcast",
            **_HELPED,
            "size": "array_api_compat.size",
            "swapaxes": "_swapaxes",
            "reversed_axes": "_reversed_axes",
        },
        expansions={
            **_ARRAY_EXPANSIONS,
            # full_like takes a Python number only: an adjoint may be a 0-d array
            "full_like": lambda a, v: Call("add", (_floats("zeros_like")(a), v)),
            "copy": lambda x: call("asarray", x, copy=Num(True)),
            # the standard has no outer product outside its linalg extension
            "outer": lambda a, b: call("expand_dims", a, axis=Num(-1)) * b,
            # the standard's expand_dims takes one axis: several, ascending, one at a time
            "expand_dims": _expand_axes,
            "dot": lambda a, b: a @ b,  # nor a dot: its vecdot is a @ b of vectors
        },
        # the standard's .T is of matrices only
        postfix={k: v for k, v in _ARRAY_POSTFIX.items() if k not in ("size", "reversed_axes")},
        # the float dtype is the arguments' (`_namespace`)
        constants={**_ARRAY_CONSTANTS, "float": "{d}"},
        # the standard multiplies no boolean array by a float (asarray: a Python bool too)
        mask="{m}.asarray({0}, dtype={d})",
        where=_WHERE,
        every_axis=True,
    ),
    helpers={
        "_namespace": Helper("_namespace", _NAMESPACE, imports=("array_api_compat",)),
        "_unbroadcast": Helper("_unbroadcast", _UNBROADCAST_XP, imports=("array_api_compat",)),
        "_erf": _special_xp("erf"),
        "_erfc": _special_xp("erfc"),
        **_gamma_helpers(),
        **{k: h for name in _GAMMA_XP for k, h in _gamma_xp(name).items()},
        **_normalised(namespace=True),
        "_prod_others": _prod_others(namespace=True),
        "_check_shapes": _checks("_shape(value)", needs=("_shape",)),
        "_check_indexes": _index_checks(
            'array_api_compat.array_namespace(value).isdtype(dtype, "integral")',
            # a Dask graph's are not computed; JAX's are where they are not traced
            "lazy = array_api_compat.is_lazy_array(value)\n"
            '    return not lazy or type(value).__name__ == "ArrayImpl"',
            "_shape(value)",
            "xp = array_api_compat.array_namespace(value)\n"
            "        low, high = int(xp.min(value)), int(xp.max(value))",
            needs=("_shape",),
            imports=("array_api_compat",),
        ),
        "_shape": Helper("_shape", _SHAPE_XP),
        "_indices": Helper("_indices", _INDICES_XP, imports=("itertools",)),
        "_swapaxes": Helper("_swapaxes", _SWAPAXES_XP, needs=("_namespace",)),
        "_reversed_axes": Helper("_reversed_axes", _REVERSED_AXES_XP, needs=("_namespace",)),
        "_quiet": Helper("_quiet", _QUIET_XP, imports=("contextlib",)),
        "_add_at": Helper("_add_at", _ADD_AT_XP, imports=("array_api_compat",)),
    },
    arrays=True,
    release=True,
    guarded="quiet",
    quiet="with _quiet():",
    namespace=True,
    shape_of="_shape({0})",
    indices="_indices({0})",
    scatter_add="{target} = _add_at({target}, {index}, {value})",
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
    """The first array (or list) among `values`, else 0.0: a function's test
    whether it was given arrays, one isinstance for numba to decide on the types."""
    return next((v for v in values if isinstance(v, (numpy.ndarray, list))), 0.0)


@numba.extending.overload(_an_array)
def _an_array_compiled(*values):
    arrays = [k for k, t in enumerate(values) if isinstance(t, (_ARRAY, _LIST))]
    if not arrays:
        return lambda *values: 0.0
    first = arrays[0]
    return lambda *values: values[first]


_ARRAY, _LIST = numba.types.Array, numba.types.List


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


def _arrays_among(types):
    """Whether numba's `types` (of arguments, or of a tuple's items) hold an array
    (or a list)."""
    types = types.types if isinstance(types, numba.types.BaseTuple) else types
    return any(isinstance(t, (_ARRAY, _LIST)) for t in types)


def _as_array(value):
    """A list as a NumPy array (numpy.asarray); any other value as it is."""
    return numpy.asarray(value) if isinstance(value, list) else value


@numba.extending.overload(_as_array)
def _as_array_compiled(value):
    if isinstance(value, _LIST):
        return lambda value: numpy.asarray(value)
    return lambda value: value


def _of_shape(value, shape):
    """Whether `value` is a number (or a 0-d array) or an array of `shape`: what a
    loop reads element by element, or as one number."""
    return not isinstance(value, numpy.ndarray) or value.shape in ((), shape)


@numba.extending.overload(_of_shape)
def _of_shape_compiled(value, shape):
    if not isinstance(value, _ARRAY) or value.ndim == 0:
        return lambda value, shape: True
    if value.ndim != len(shape):
        return lambda value, shape: False
    return lambda value, shape: value.shape == shape


def _loop_results(types, wrt):
    """numba's type of what a loop returns given arguments of `types`: the value
    over their broadcast shape and the gradient of each input at a position in
    `wrt` over its shape, float64 and C-contiguous, a number for shape ()."""

    def rank(t):  # (a list: the array numpy.asarray makes of it)
        return t.ndim if isinstance(t, _ARRAY) else 1 + rank(t.dtype) if isinstance(t, _LIST) else 0

    def of(n):
        return _ARRAY(numba.float64, n, "C") if n else numba.float64

    types = types.types if isinstance(types, numba.types.BaseTuple) else types
    grads = numba.types.Tuple(tuple(of(rank(types[k])) for k in wrt))
    return numba.types.Tuple((of(max(rank(t) for t in types)), grads))


def _by_listing(function, *values):
    """`function` (the numpy listing's) of `values`, its results as a loop gives
    them: float64 and C-contiguous arrays, numbers for shape ()."""
    value, grads = function(*values)
    return _as_loops_give(value), tuple(_as_loops_give(g) for g in grads)


def _as_loops_give(result):
    result = numpy.ascontiguousarray(result, dtype=numpy.float64)
    return result if result.ndim else float(result)


def _elements(shape):
    """The number of elements of an array of `shape`."""
    return math.prod(shape)


@numba.extending.overload(_elements)
def _elements_compiled(shape):
    if not shape.types:  # the shape of a number or of a 0-d array
        return lambda shape: 1

    def elements(shape):
        n = 1
        for d in shape:
            n *= d
        return n

    return elements


def _size(value, n):
    """The elements of a gradient in a fused loop: `n` for an array, 1 for a number."""
    return n if isinstance(value, numpy.ndarray) else 1


@numba.extending.overload(_size)
def _size_compiled(value, n):
    if isinstance(value, numba.types.Array):
        return lambda value, n: n
    return lambda value, n: 1


def _no_arrays(function):
    """A function asked for (--with) given arrays: compiled, it takes numbers only."""
    raise TypeError(
        f"{function} takes numbers here; for arrays call it per element, or generate "
        "the module with --backend numpy, whose functions take arrays"
    )


@numba.extending.overload(_no_arrays, prefer_literal=True)
def _no_arrays_compiled(function):
    if isinstance(function, numba.types.StringLiteral):
        message = (
            f"{function.literal_value} takes numbers here; for arrays call it per "
            "element, or generate the module with --backend numpy, whose functions "
            "take arrays"
        )

        def refused(function):
            raise TypeError(message)

        return refused


def _flat(value, shape):
    """`value`'s elements as the fused loop reads them, over the broadcast
    `shape`: a C-contiguous float64 array (the array itself where it is one of
    that shape; one that broadcasts, copied to that shape; a number: one element)."""
    if not isinstance(value, numpy.ndarray):
        return numpy.full(1, float(value))
    if value.dtype.kind not in "biuf":
        real = "the compiled loops take arrays of real numbers"
        raise TypeError(f"{real}, not {value.dtype}")
    full = numpy.broadcast_to(value, shape)
    return numpy.ascontiguousarray(full, dtype=numpy.float64).reshape(-1)


@numba.extending.overload(_flat)
def _flat_compiled(value, shape):
    if not isinstance(value, numba.types.Array):
        return lambda value, shape: numpy.full(1, float(value))
    real = (numba.types.Boolean, numba.types.Integer, numba.types.Float)
    if not isinstance(value.dtype, real):
        message = f"the compiled loops take arrays of real numbers, not {value.dtype}"

        def refused(value, shape):
            if value.size >= 0:  # (a test numba keeps: the result below is typed)
                raise TypeError(message)
            return numpy.empty(0)

        return refused

    def copied(value, shape):
        full = numpy.broadcast_to(value, shape)
        return numpy.ascontiguousarray(full).reshape(full.size).astype(numpy.float64)

    if value.ndim != len(shape):
        return copied
    if value.dtype == numba.float64 and value.layout == "C":

        def flat(value, shape):
            if value.shape == shape:
                return value.reshape(value.size)
            full = numpy.broadcast_to(value, shape)
            return numpy.ascontiguousarray(full).reshape(full.size).astype(numpy.float64)

        return flat
    return copied


def _reduced(elements, shape, given):
    """A gradient over the broadcast `shape` summed back to the shape of the array
    `given` broadcast (over its leading and length-1 axes), as elements."""
    if not isinstance(given, numpy.ndarray) or given.shape == shape:
        return elements
    lead = len(shape) - given.ndim
    kept = given.shape
    axes = tuple(range(lead)) + tuple(
        lead + k for k, n in enumerate(kept) if n == 1 and shape[lead + k] != 1
    )
    return elements.reshape(shape).sum(axis=axes).reshape(-1)


@numba.extending.overload(_reduced)
def _reduced_compiled(elements, shape, given):
    if not isinstance(given, numba.types.Array) or not shape.types:
        return lambda elements, shape, given: elements  # a number, or of shape ()
    lead = len(shape) - given.ndim  # the broadcast shape's leading axes given lacks

    def summed(elements, shape, given):
        # one pass in element order: each element added to the entry it broadcast from
        if lead == 0 and given.shape == shape:
            return elements
        out, kept = numpy.zeros(given.size), given.shape
        for i in range(elements.size):
            rest, j, step = i, 0, 1
            for d in range(len(shape) - 1, lead - 1, -1):
                c, rest = rest % shape[d], rest // shape[d]
                if kept[d - lead] != 1:
                    j += c * step
                step *= kept[d - lead]
            out[j] += elements[i]
        return out

    return summed


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
        logic=MATH.syntax.logic,
    ),
    helpers={
        "_pow": Helper("_pow", _POW, imports=("ctypes", "math")),
        "_arrays": Helper("_arrays", _ARRAYS),
        # the math backend's digamma and trigamma, compiled (lgamma's and gamma's rules)
        **{
            name: Helper(name, "@numba.njit(cache=_CACHE)\n" + MATH.helpers[name].text)
            for name in ("_digamma", "_trigamma")
        },
    },
    forms="math",
    imports=("os",),
    preamble=_NUMBA_IMPORT,
    decorator="@numba.njit(cache=_CACHE)",
    python_copies="py_",
    guarded="select",
    loops=True,
    loop_syntax=MATH.syntax,
    reserved=("float", "range"),
    arrays_by="numpy",
    broadcasts_by="numpy",
    arrays_says=(
        "A program over arrays (an array input declared, or an array gate such as @ "
        "or sum): this module is the numpy backend's listing, as Python runs it (no "
        "numba; nothing to compile): its @ calls BLAS through NumPy, which measured "
        "faster than np.dot inside numba.njit on the matrix loss sum((W @ X - Y)**2), "
        "W 256x512, X 512x1024 (1.01x hand NumPy against 1.46x: benchmarks/RESULTS.md)."
    ),
    loop_says=(
        "forward, backward and value_and_grad also take arrays (a list is taken as a "
        "NumPy array, and numba warns that it deprecates lists as arguments: pass "
        "numpy.asarray of it): given arrays (and numbers beside them), each runs its listing as "
        "one compiled loop over the elements of their broadcast shape, in parallel "
        "blocks of up to 8,192 elements (numba's prange: _forward_loop, _backward_loop, "
        "_value_and_grad_loop), reading each input once and writing each result once. "
        "forward writes the outputs and each cached stage as arrays of that shape; its "
        "cache holds them in the order a cache of numbers does (a cached input as "
        "given), then every input as given, from which backward sums each gradient "
        "back to its input's shape. backward, given that cache, reads each cached array "
        "and dout (an array or a number) once per element and writes each gradient "
        "once. A number's gradient is its sum over the elements, per block and then "
        "across the blocks (whatever the number of threads). The loops' powers are "
        "numba's own (x**2 is x * x, which rounds a square an ulp otherwise than the C "
        "library's pow now and then), so their results are the scalar listing's with "
        "such squares: a few ulp from the scalar functions', more where the listing "
        "cancels. Arrays of any real dtype are computed in float64 (float32, integer "
        "and boolean arrays give float64 results); an array that is not C-contiguous "
        "float64 is first copied. value_and_grad runs its loop where the arrays have "
        "one shape (numbers and 0-d arrays beside them); given arrays whose shapes "
        "differ (a row against a column) it runs the numpy backend's listing instead "
        "(_numpy_value_and_grad, as Python runs it: each stage at its own operands' "
        "shape, the numpy backend module's values bit for bit, given as float64), "
        "which measured faster than a loop over the broadcast shape. forward and "
        "backward loop over the broadcast shape there: an array that broadcasts is "
        "copied to that shape, and its gradient summed back after the loop, in one "
        "pass in element order (another order of summation than NumPy's). Results of "
        "shape () (0-d arrays alone) are numbers. Shapes that do not broadcast raise "
        "ValueError; arrays of complex numbers TypeError; arrays of Python objects are "
        "not typed by numba (its TypingError). In the loops, as in NumPy's arithmetic "
        "on arrays, a division by zero gives inf or NaN at that element (the functions "
        "given numbers raise ZeroDivisionError)."
    ),
    loop_refuses=(
        "The functions asked for (--with) take numbers only: given an array, each "
        "raises TypeError saying so (the numpy backend's take arrays)."
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
    rounding={
        "math.gamma": "gamma within 8 ulp of CPython's",
        "math.lgamma": "lgamma within 11 ulp of max(1, |lgamma|) of CPython's",
        "math.hypot": "hypot within 1 ulp of CPython's",
    },
    says=(
        "Compiled by numba (nopython mode, fastmath off): the values are bit for bit "
        "those of the math backend's module. The functions compile once per machine "
        "where the module is a file (numba's cache), else at their first call; a "
        "first call compiles in 0.01 to 0.02 s per stage (1.7 s for 158 stages, 12 s "
        "for 638, 29 s for 1,278), and a later process imports a module on disk and "
        "reads a function from the cache at its first call in 0.5 to 0.7 s (158 to "
        "1,278 stages: benchmarks/RESULTS.md). "
        "py_forward, py_backward and py_value_and_grad (and py_ before each function "
        "asked for) are the same listings as Python runs them. Compiled, a domain "
        "error gives NaN or inf where Python raises (a division by zero raises "
        "ZeroDivisionError in both)"
    ),
)

BACKENDS: Mapping[str, Backend] = MappingProxyType({b.name: b for b in (MATH, NUMPY, ARRAY, NUMBA)})

# The input language, for stage formulas in comments, docstrings and diagrams.
SOURCE = Syntax(
    prefix="",
    postfix={"transpose": "{0}.T", "reversed_axes": "{0}.T", "matrix_transpose": "{0}.mT"},
    functions={"permute_dims": "transpose"},  # transpose(x, axes), as NumPy names it
    constants={"pi": "pi", "e": "E"},
    logic={"logical_and": "&", "logical_or": "|", "logical_not": "~"},
)

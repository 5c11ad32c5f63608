"""Array shapes: NumPy broadcasting over declared sizes, and shape inference.

A shape is a tuple of sizes, each an int or a size name from a declaration
(``matrix(n, d)``), or None when unknown (an undeclared input of the numpy
backend may be a scalar or an array of any shape). These are the rules of
shapes only; `lower.infer` applies them over a stage DAG, each gate by its
registry record's `shape` (None: elementwise, the operands broadcast).
"""

from __future__ import annotations

import re

Shape = tuple | None

# a size linear in one size name: c*name + k (``H``, ``4*H``, ``N-1``, ``2*H+1``)
_LINEAR = re.compile(r"(?:(\d+)\*)?([^\W\d]\w*)(?:([+-])(\d+))?")


def linear(size) -> tuple[int, str | None, int] | None:
    """A size as (c, name, k), meaning c*name + k: an integer is (0, None, k), a
    size name (1, name, 0), ``4*H`` (4, "H", 0), ``N-1`` (1, "N", -1); None for
    any other size (a product of names, ``b*c``)."""
    if isinstance(size, int):
        return 0, None, size
    m = _LINEAR.fullmatch(size)
    if m is None:
        return None
    c, name, sign, k = m.groups()
    return int(c or 1), name, (-1 if sign == "-" else 1) * int(k or 0)


def sized(c: int, name: str | None, k: int) -> int | str:
    """The size c*name + k, written as `linear` reads it: an integer where c is 0."""
    if not c or name is None:
        return k
    head = name if c == 1 else f"{c}*{name}"
    return head + (f"+{k}" if k > 0 else f"-{-k}" if k < 0 else "")


def size_value(size, sizes: dict) -> int:
    """A declared size (an integer, a name, ``4*H``) given each name's size."""
    c, name, k = linear(size)
    return c * sizes[name] + k if name is not None else k


def text(shape: Shape) -> str:
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def broadcast(*shapes: Shape) -> Shape:
    """NumPy's broadcasting of `shapes`; ValueError naming them if they do not fit."""
    if any(s is None for s in shapes):
        return None
    out: list = []
    for dims in zip(*[(1,) * (max(map(len, shapes)) - len(s)) + tuple(s) for s in shapes], strict=True):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {' and '.join(text(s) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def drop_axis(shape: Shape, axis: int | tuple, keepdims: bool = False) -> Shape:
    """The shape after reducing over `axis` (an axis, or a tuple of them):
    dropped, or kept with size 1."""
    if shape is None:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    for k in axes:
        if not -len(shape) <= k < len(shape):
            raise ValueError(f"axis {k} is out of range for shape {text(shape)}")
    reduced = {k % len(shape) for k in axes}
    if len(reduced) < len(axes):
        raise ValueError(f"axis {axis} names an axis twice")
    if keepdims:
        return tuple(1 if k in reduced else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in reduced)


def same_shape(shape: Shape, axis: int) -> Shape:
    """A result the shape of its operand, computed along `axis` (softmax)."""
    if shape is not None and not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for shape {text(shape)}")
    return shape


def reductions(operand: Shape, result: Shape) -> list[tuple[tuple[int, ...], bool]]:
    """How to sum a gradient of shape `result` back to shape `operand`, as NumPy
    sums: first the leading axes the operand lacks, then (keeping them) the axes
    where it has size 1. Empty: the shapes agree. LookupError: a shape is unknown
    (the module sums at run time)."""
    if operand is None or result is None:
        raise LookupError("unknown shape")
    lead = len(result) - len(operand)
    steps = []
    if lead:
        steps.append((tuple(range(lead)), False))
    kept = tuple(k for k, d in enumerate(operand) if d == 1 and result[lead + k] != 1)
    if kept:
        steps.append((kept, True))
    return steps


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """The shape of a @ b as NumPy's matmul gives it: a 1-D operand is a row (on
    the left) or a column (on the right) whose axis is then dropped, so a matrix
    times a vector is a vector and a vector times a vector a number; arrays of
    more axes are stacks of matrices, their leading (batch) axes broadcast.
    ValueError naming both shapes if they do not fit."""
    if a is None or b is None:
        # undeclared operands may be anything at run time (a 3-D array's .T reverses
        # every axis): @ is defined here for declared arrays only
        raise ValueError(
            "@ multiplies vectors and matrices of declared shapes; declare both, e.g. A: matrix(n, k)"
        )
    if () in (a, b):
        raise ValueError(
            f"@ multiplies vectors and matrices; got shapes {text(a)} and {text(b)} "
            "(a number multiplies with *)"
        )
    if 1 in (len(a), len(b)) and max(len(a), len(b)) > 2:
        raise ValueError(
            f"@ of a vector and an array of {max(len(a), len(b))} axes is not supported; got shapes "
            f"{text(a)} and {text(b)} (write the vector as an array with an axis of size 1)"
        )
    rows = b[0] if len(b) == 1 else b[-2]
    if a[-1] != rows:
        what = "columns" if len(a) >= 2 else "elements"
        against = "rows" if len(b) >= 2 else "elements"
        raise ValueError(f"shapes {text(a)} @ {text(b)} do not fit: {a[-1]} {what} against {rows} {against}")
    if len(a) <= 2 and len(b) <= 2:
        return a[:-1] + b[1:]
    try:
        batch = broadcast(a[:-2], b[:-2])
    except ValueError:
        raise ValueError(
            f"shapes {text(a)} @ {text(b)}: the batch axes {text(a[:-2])} and {text(b[:-2])} do not broadcast"
        ) from None
    return batch + (a[-2], b[-1])


def outer_shape(a: Shape, b: Shape) -> Shape:
    """The shape of outer(a, b) of vectors: (n,) and (m,) give (n, m)."""
    _vectors("outer", a, b)
    return (a[0], b[0])


def dot_shape(a: Shape, b: Shape) -> Shape:
    """The shape of dot(a, b) of vectors of one length: a number."""
    _vectors("dot", a, b)
    if a[0] != b[0]:
        raise ValueError(f"dot of shapes {text(a)} and {text(b)}: {a[0]} elements against {b[0]}")
    return ()


def _vectors(name: str, a: Shape, b: Shape) -> None:
    if a is None or b is None:
        raise ValueError(f"{name} takes vectors of declared shapes; declare both, e.g. v: vector(n)")
    if len(a) != 1 or len(b) != 1:
        hint = {"dot": " (for matrices write A @ B)", "outer": ""}[name]
        raise ValueError(f"{name} takes vectors; got shapes {text(a)} and {text(b)}{hint}")


def transpose_shape(a: Shape) -> Shape:
    """a.T: every axis reversed, as NumPy's (a matrix's rows and columns trade places)."""
    if a is None:
        raise ValueError(".T transposes an array of a declared shape; declare it, e.g. A: matrix(n, m)")
    if len(a) < 2:
        raise ValueError(f".T transposes an array of 2 or more axes; got shape {text(a)}")
    return tuple(reversed(a))


def swapaxes_shape(a: Shape, axis1: int, axis2: int) -> Shape:
    """swapaxes(a, axis1, axis2), and a.mT (the last two axes)."""
    if a is None:
        raise ValueError(
            "swapaxes and .mT take an array of a declared shape; declare it, e.g. A: array(b, n, m)"
        )
    for axis in (axis1, axis2):
        if not -len(a) <= axis < len(a):
            raise ValueError(f"axis {axis} is out of range for shape {text(a)}")
    out = list(a)
    out[axis1], out[axis2] = a[axis2], a[axis1]
    return tuple(out)


def matrix_transpose_shape(a: Shape) -> Shape:
    if a is not None and len(a) < 2:
        raise ValueError(
            f".mT transposes the last two axes of an array of 2 or more axes; got shape {text(a)}"
        )
    return swapaxes_shape(a, -1, -2)


def _declared(name: str, a: Shape) -> None:
    if a is None:
        raise ValueError(f"{name} takes an array of a declared shape; declare it, e.g. x: matrix(n, m)")


def _count(shape) -> tuple[int, list]:
    """The number of elements of a shape as (the product of its integer sizes,
    its size names sorted): two shapes hold as many elements where these agree."""
    product, names = 1, []
    for d in shape:  # a product size ("b*c", a reshape's -1) counts as its factors
        for part in str(d).split("*"):
            if part.isdigit():
                product *= int(part)
            else:
                names.append(part)
    return product, sorted(names)


def reshape_shape(a: Shape, shape: tuple) -> Shape:
    """reshape(a, shape): sizes that are integers, size names or one -1 (the size
    the others leave); as many elements as a, counted by integers and names."""
    _declared("reshape", a)
    if sum(1 for d in shape if d == -1) > 1:
        raise ValueError("reshape takes at most one -1")
    known = [d for d in shape if d != -1]
    loose = [d for d in shape if not isinstance(d, int) or d == -1]
    for d in known:  # the code writes a size name as the axis of a it is, or as -1
        if isinstance(d, str) and d not in a and d in _count(a)[1] and len(loose) > 1:
            raise ValueError(
                f"reshape of shape {text(a)}: its size {d} is no axis of the array; write -1 for it"
            )
    (have, have_names), (want, want_names) = _count(a), _count(known)
    if -1 not in shape:
        if (have, have_names) != (want, want_names):
            raise ValueError(f"reshape of shape {text(a)} into {text(tuple(shape))}: not as many elements")
        return tuple(shape)
    left = list(have_names)
    for n in want_names:
        if n not in left:
            raise ValueError(f"reshape of shape {text(a)}: its size {n} is none of the array's")
        left.remove(n)
    if have % want:
        raise ValueError(f"reshape of shape {text(a)} into {text(tuple(shape))}: not as many elements")
    # what -1 stands for: a number, a name, or a product of them, a size of its own ("b*c")
    count = have // want
    factors = ([str(count)] if count != 1 else []) + left
    rest = count if not left else "*".join(factors)
    return tuple(rest if d == -1 else d for d in shape)


def permute_shape(a: Shape, axes: tuple) -> Shape:
    """transpose(a, axes): axis k of the result is axis axes[k] of a."""
    _declared("transpose", a)
    if sorted(k % len(a) if -len(a) <= k < len(a) else k for k in axes) != list(range(len(a))):
        raise ValueError(
            f"transpose's axes {tuple(axes)} are not a permutation of the {len(a)} axes of {text(a)}"
        )
    return tuple(a[k] for k in axes)


def concat_shape(*shapes_and_axis) -> Shape:
    """concat([a, b, ...], axis=k): the same shape but along axis k, where the
    sizes add (a sum of names is a size of its own, "n+m")."""
    *shapes, axis = shapes_and_axis
    for s in shapes:
        _declared("concat", s)
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        raise ValueError(f"concat of shapes {' and '.join(text(s) for s in shapes)}: not one rank")
    if not -len(first) <= axis < len(first):
        raise ValueError(f"axis {axis} is out of range for shape {text(first)}")
    axis %= len(first)
    for s in shapes:
        if any(d != e for k, (d, e) in enumerate(zip(s, first, strict=True)) if k != axis):
            raise ValueError(
                f"concat of shapes {' and '.join(text(s) for s in shapes)} along axis {axis}: "
                "the other axes differ"
            )
    sizes = [s[axis] for s in shapes]
    total = sum(sizes) if all(isinstance(d, int) for d in sizes) else "+".join(map(str, sizes))
    return first[:axis] + (total,) + first[axis + 1 :]


def stack_shape(*shapes_and_axis) -> Shape:
    """stack([a, b, ...], axis=k): arrays of one shape, a new axis k of their number."""
    *shapes, axis = shapes_and_axis
    for s in shapes:
        _declared("stack", s)
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack of shapes {' and '.join(text(s) for s in shapes)}: not one shape")
    rank = len(shapes[0]) + 1
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a stack of rank {rank}")
    axis %= rank
    return shapes[0][:axis] + (len(shapes),) + shapes[0][axis:]

"""Subscripts with NumPy's semantics: what ``x[0, 1:3, None, ..., idx]`` means.

A subscript is held as a *spec*, a tuple of items, one per written position:

- ``("at", k)``: the integer k (the axis is dropped);
- ``("slice", start, stop, step)``: a slice, each part an int or None;
- ``("new",)``: None, a new axis of size 1;
- ``("rest",)``: ``...``, the axes no other item takes; ``("rest", "implied")``
  the same where it is not written, added by lowering where the items do not
  name every axis (``x[0]`` of a matrix), so a target that names every axis
  (the array API) writes ``x[0, ...]``;
- ``("take", i)``: the index array that is operand i of the stage (a gather);
- ``("arange", size)``: ``arange(size)``, the positions 0 .. size - 1 of the axis
  it indexes (size written as an int or a size name: ``S[arange(N), y]``).

A spec is a constant parameter of the `subscript` and `gather` gates
(`expr.Const`); this module gives its shape, its form in the generated code
and in the input language, and its meaning on NumPy arrays. Nothing here knows
SymPy or a backend.
"""

from __future__ import annotations

from .expr import Call, Expr, Num, Ref, Slice, Slot, Subscript
from .shapes import Shape, broadcast, text

__all__ = ["axes", "shape", "form", "written", "named", "python", "arrays", "gathers"]

_TAKES_AXIS = ("at", "slice", "take", "arange")


def arrays(spec: tuple) -> tuple[int, ...]:
    """The operands the index arrays are, in written order."""
    return tuple(item[1] for item in spec if item[0] == "take")


def gathers(spec: tuple) -> bool:
    """Whether the subscript selects with arrays (NumPy's advanced indexing)."""
    return any(item[0] in ("take", "arange") for item in spec)


def axes(spec: tuple) -> tuple[int | None, ...]:
    """The operand axis each item indexes, counted from the front before ``...``
    and from the back (negative) after it; None for ``None`` and ``...``."""
    out: list[int | None] = []
    rest = next((k for k, item in enumerate(spec) if item[0] == "rest"), None)
    for k, item in enumerate(spec):
        if item[0] not in _TAKES_AXIS:
            out.append(None)
        elif rest is None or k < rest:
            out.append(sum(1 for i in spec[:k] if i[0] in _TAKES_AXIS))
        else:
            out.append(-sum(1 for i in spec[k:] if i[0] in _TAKES_AXIS))
    return tuple(out)


def shape(spec: tuple, a: Shape, index_shapes: dict[int, Shape]) -> Shape:
    """The shape of ``a[spec]``; `index_shapes`: each index array's (by operand).
    ValueError with the reason where it does not apply."""
    if a is None:
        raise ValueError("a subscript applies to an array of a declared shape; declare it, e.g. x: vector(n)")
    if sum(1 for item in spec if item[0] == "rest") > 1:
        raise ValueError("a subscript has at most one ...")
    taken = sum(1 for item in spec if item[0] in _TAKES_AXIS)
    if taken > len(a):
        raise ValueError(f"{taken} indices for an array of {len(a)} axes, shape {text(a)}")
    items = spec if any(item[0] == "rest" for item in spec) else (*spec, ("rest",))
    advanced = gathers(spec)  # with an index array, an integer is a 0-d index array too
    out: list = []
    picked: list[Shape] = []  # the index arrays' shapes, broadcast together
    where, last, adjacent = None, None, True
    for k, (item, axis) in enumerate(zip(items, axes(items), strict=True)):
        kind = item[0]
        if kind == "new":
            out.append(1)
            continue
        if kind == "rest":
            before = sum(1 for i in items[:k] if i[0] in _TAKES_AXIS)
            after = sum(1 for i in items[k + 1 :] if i[0] in _TAKES_AXIS)
            out.extend(a[before : len(a) - after])
            continue
        size = a[axis]
        if kind == "slice":
            out.append(_sliced(size, item[1:]))
            continue
        if kind == "at":
            if isinstance(size, int) and not -size <= item[1] < size:
                raise ValueError(f"index {item[1]} is out of range for axis {axis % len(a)} of size {size}")
            if not advanced:
                continue
            picked.append(())
        elif kind == "arange":
            if item[1] != size:
                raise ValueError(
                    f"arange({item[1]}) indexes axis {axis % len(a)} of size {size}: "
                    "write arange of that axis's size"
                )
            picked.append((size,))
        else:
            picked.append(index_shapes[item[1]])
        if where is None:
            where = len(out)
        elif last != k - 1:
            adjacent = False
        last = k
    if picked:
        try:
            gathered = broadcast(*picked)
        except ValueError:
            raise ValueError(
                f"the index arrays' shapes {' and '.join(text(s) for s in picked)} do not broadcast"
            ) from None
        # NumPy puts the gathered axes first where other items come between them
        where = where if adjacent else 0
        out[where:where] = list(gathered)
    return tuple(out)


def _sliced(size, parts: tuple):
    """The length of a slice of an axis: exact for a number, a name of its own
    for a size name (``n[1:]``) unless it keeps the whole axis."""
    start, stop, step = parts
    if isinstance(size, int):
        return len(range(size)[slice(start, stop, step)])
    if (start, stop) == (None, None) and step in (None, 1, -1) or (start, stop, step) == (0, None, None):
        return size
    return f"{size}[{_slice_text(parts)}]"


def _slice_text(parts: tuple) -> str:
    start, stop, step = ("" if p is None else str(p) for p in parts)
    return f"{start}:{stop}" + (f":{step}" if step else "")


def _items(spec: tuple, array, arange) -> tuple:
    out = []
    for item, axis in zip(spec, axes(spec), strict=True):
        kind = item[0]
        if kind == "at":
            out.append(Num(item[1]))
        elif kind == "slice":
            out.append(Slice(*(None if p is None else Num(p) for p in item[1:])))
        elif kind == "new":
            out.append(None)
        elif kind == "rest":
            if item[1:] != ("implied",):
                out.append(Ref("..."))
        elif kind == "take":
            out.append(array(item[1]))
        else:
            out.append(arange(item[1], axis))
    return tuple(out)


def form(value: Expr, spec: tuple) -> Subscript:
    """``value[spec]`` in the generated code: an index array is its operand's
    slot, ``arange(N)`` the positions along the axis it indexes."""
    return Subscript(
        value,
        _items(spec, Slot, lambda size, axis: Call("arange", (Call("shape", (Slot(0), Num(axis))),))),
        ("rest", "implied") in spec,
    )


def named(spec: tuple, rank: int) -> tuple:
    """`spec` with ``("rest", "implied")`` at its end where its items name fewer
    than `rank` axes and it has no ``...``."""
    if any(item[0] == "rest" for item in spec) or sum(1 for i in spec if i[0] in _TAKES_AXIS) >= rank:
        return spec
    return (*spec, ("rest", "implied"))


def written(value: Expr, spec: tuple) -> Subscript:
    """``value[spec]`` as the input language writes it (``S[arange(N), y]``)."""
    return Subscript(value, _items(spec, Slot, lambda size, axis: Call("arange", (Ref(str(size)),))))


def python(spec: tuple, value, operands: list):
    """The Python index of `spec` for NumPy arrays: `operands` are the stage's
    (index arrays at their operand positions), `value` the array indexed."""
    import numpy as np  # the reference's arrays only; generated code never imports this module

    out = []
    for item, axis in zip(spec, axes(spec), strict=True):
        kind = item[0]
        if kind == "at":
            out.append(item[1])
        elif kind == "slice":
            out.append(slice(*item[1:]))
        elif kind == "new":
            out.append(None)
        elif kind == "rest":
            out.append(Ellipsis)
        elif kind == "take":
            out.append(np.asarray(operands[item[1]], dtype=np.int64))
        else:
            out.append(np.arange(np.shape(value)[axis]))
    return tuple(out)

"""Subscripts with NumPy's semantics: what ``x[0, 1:3, None, ..., idx]`` means.

A subscript is held as a *spec*, a tuple of items, one per written position:

- ``("at", k)``: the integer k (the axis is dropped);
- ``("slice", start, stop, step)``: a slice, each part an int or None; start
  and stop may also be a size linear in a size name (``"H"``, ``"2*H"``,
  ``"N-1"``: `shapes.linear`), the slice then of an axis whose size is linear
  in the same name, ``("slice", start, stop, step, size)`` once lowering has
  added that size (`resolved`), from which the code reads the bound: ``a[:,
  H : 2 * H]`` of an axis of size ``4*H`` is ``a[:, a.shape[1] // 4 : 2 *
  (a.shape[1] // 4)]``;
- ``("new",)``: None, a new axis of size 1;
- ``("rest",)``: ``...``, the axes no other item takes; ``("rest", "implied")``
  the same where it is not written, added by lowering where the items do not
  name every axis (``x[0]`` of a matrix), so a target that names every axis
  (the array API) writes ``x[0, ...]``;
- ``("take", i)``: the index array that is operand i of the stage (a gather);
- ``("arange", size)``: ``arange(size)``, the positions 0 .. size - 1 of the axis
  it indexes (size written as an int or a size name: ``S[arange(N), y]``);
  ``("arange", size, k)``: ``arange(size)[:, None]`` with k new axes, a column
  that broadcasts against an index array of more axes (take_along_axis:
  ``S[arange(N)[:, None], k]``).

A spec is a constant parameter of the `subscript` and `gather` gates
(`expr.Const`); this module gives its shape, its form in the generated code
and in the input language, and its meaning on NumPy arrays. Nothing here knows
SymPy or a backend.
"""

from __future__ import annotations

from .expr import Call, Expr, Num, Ref, Slice, Slot, Subscript
from .shapes import Shape, broadcast, linear, size_value, sized, text

__all__ = ["axes", "shape", "form", "written", "named", "resolved", "python", "arrays", "gathers"]

BOUNDS = (
    "a slice's bound is an integer, a size name or an integer times one (2*H), "
    "plus or minus an integer (H+1, N-1)"
)

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
            out.append(_sliced(size, item[1:4]))
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
            picked.append((size,) + (1,) * _column(item))
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
    """The length of a slice of an axis: exact for a number; for a size linear
    in a name (``N``, ``4*H``) and bounds linear in the same name (or integers)
    whose order 0 <= start <= stop <= size holds at every size, stop - start
    (``N-1`` of ``x[1:]``, ``H`` of ``a[:, H:2*H]``); otherwise a name of its own
    for integer bounds (``n[2:]``), and an error for a bound that is a size."""
    start, stop, step = parts
    symbolic = any(isinstance(p, str) for p in (start, stop))
    if isinstance(size, int) and not symbolic:
        return len(range(size)[slice(start, stop, step)])
    if not symbolic and (
        (start, stop) == (None, None) and step in (None, 1, -1) or (start, stop, step) == (0, None, None)
    ):
        return size
    length = _linear_length(size, start, stop) if step in (None, 1) else None
    if length is not None:
        return length
    if symbolic:
        why = "with a step" if step not in (None, 1) else f"of an axis of size {size}"
        raise ValueError(
            f"the slice {_slice_text(parts)} {why}: its length is not known from the sizes; "
            f"{BOUNDS}, a slice with a bound that is a size takes no step, and the axis's "
            "size is in the same name, every bound within it (declare it, e.g. matrix(N, 4*H))"
        )
    return f"{size}[{_slice_text(parts)}]"


def _linear_length(size, start, stop):
    """stop - start as a size, where size, start and stop are linear in one name
    (or integers) and 0 <= start <= stop <= size at every size of that name (a
    size is at least 1); None where that cannot be told."""
    axis = linear(size)
    if axis is None:
        return None
    ends = []
    for part, default in ((start, (0, None, 0)), (stop, axis)):
        if part is None:
            ends.append(default)
        elif isinstance(part, int) and part < 0:  # counted from the end
            ends.append((axis[0], axis[1], axis[2] + part))
        else:
            ends.append(linear(part))
    names = {name for _, name, _ in (axis, *ends) if name is not None}
    if len(names) > 1:
        return None
    name = names.pop() if names else None
    (c0, _, k0), (c1, _, k1) = ends
    steps = [(c0, k0), (c1 - c0, k1 - k0), (axis[0] - c1, axis[2] - k1)]
    # c*n + k >= 0 for every n >= 1: c >= 0 and c + k >= 0
    if not all(c >= 0 and c + k >= 0 for c, k in steps):
        return None
    return sized(c1 - c0, name, k1 - k0)


def _slice_text(parts: tuple) -> str:
    start, stop, step = ("" if p is None else str(p) for p in parts)
    return f"{start}:{stop}" + (f":{step}" if step else "")


def _bound(part, size, axis: int, value: Expr) -> Expr:
    """A slice's bound in the code: an integer as itself; a size c*H + k of an
    axis of size s*H + t as c * ((value.shape[axis] - t) // s) + k."""
    if isinstance(part, int):
        return Num(part)
    c, _, k = linear(part)
    s, _, t = linear(size)
    n = Call("shape", (value, Num(axis))) - t
    if c != s:
        n = n if s == 1 else Call("floordiv", (n, Num(s)))
        n = n if c == 1 else Num(c) * n
    return n + k


def _written_bound(part) -> Expr:
    """A slice's bound as the input language writes it (``2 * H + 1``)."""
    if isinstance(part, int):
        return Num(part)
    c, name, k = linear(part)
    return (Ref(name) if c == 1 else Num(c) * Ref(name)) + k


def _items(spec: tuple, array, arange, bound=None) -> tuple:
    """The items as expressions; `bound(part, size, axis)` writes a slice's bound
    that is a size (`size`: the axis's, once `resolved`), else as written."""
    out = []
    for item, axis in zip(spec, axes(spec), strict=True):
        kind = item[0]
        if kind == "at":
            out.append(Num(item[1]))
        elif kind == "slice":
            size = item[4] if len(item) > 4 else None
            out.append(
                Slice(
                    *(
                        (
                            None
                            if p is None
                            else (
                                bound(p, size, axis)
                                if bound is not None and isinstance(p, str)
                                else _written_bound(p)
                            )
                        )
                        for p in item[1:4]
                    )
                )
            )
        elif kind == "new":
            out.append(None)
        elif kind == "rest":
            if item[1:] != ("implied",):
                out.append(Ref("..."))
        elif kind == "take":
            out.append(array(item[1]))
        elif _column(item):  # arange(N)[:, None]: the positions down a column
            out.append(Subscript(arange(item[1], axis), (Slice(None, None, None), *[None] * _column(item))))
        else:
            out.append(arange(item[1], axis))
    return tuple(out)


def _column(item: tuple) -> int:
    """The new axes after an arange (``arange(N)[:, None]``: 1), which broadcast it
    against index arrays of more axes, as NumPy's take_along_axis does."""
    return item[2] if item[0] == "arange" and len(item) > 2 else 0


def form(value: Expr, spec: tuple) -> Subscript:
    """``value[spec]`` in the generated code: an index array is its operand's
    slot, ``arange(N)`` the positions along the axis it indexes."""
    return Subscript(
        value,
        _items(
            spec,
            Slot,
            lambda size, axis: Call("arange", (Call("shape", (Slot(0), Num(axis))),)),
            lambda part, size, axis: _bound(part, size, axis, Slot(0)),
        ),
        ("rest", "implied") in spec,
    )


def named(spec: tuple, rank: int) -> tuple:
    """`spec` with ``("rest", "implied")`` at its end where its items name fewer
    than `rank` axes and it has no ``...``."""
    if any(item[0] == "rest" for item in spec) or sum(1 for i in spec if i[0] in _TAKES_AXIS) >= rank:
        return spec
    return (*spec, ("rest", "implied"))


def resolved(spec: tuple, a: Shape) -> tuple:
    """`spec` made concrete for an operand of shape `a`: `named`, and each slice
    whose bound is a size with the size of the axis it slices added."""
    spec = named(spec, len(a))
    out = []
    for item, axis in zip(spec, axes(spec), strict=True):
        if item[0] == "slice" and len(item) == 4 and any(isinstance(p, str) for p in item[1:3]):
            item = (*item, a[axis])
        out.append(item)
    return tuple(out)


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
            n = np.shape(value)[axis]
            out.append(slice(*(_value(p, item, n) if isinstance(p, str) else p for p in item[1:4])))
        elif kind == "new":
            out.append(None)
        elif kind == "rest":
            out.append(Ellipsis)
        elif kind == "take":
            out.append(np.asarray(operands[item[1]], dtype=np.int64))
        else:
            out.append(np.arange(np.shape(value)[axis])[(slice(None), *[None] * _column(item))])
    return tuple(out)


def _value(part: str, item: tuple, n: int) -> int:
    """A bound c*H + k on an axis of n elements whose size is s*H + t (the
    slice `item` `resolved`)."""
    assert len(item) > 4, f"the slice {item} is not resolved"
    c, _, k = linear(part)
    s, _, t = linear(item[4])
    return c * ((n - t) // s) + k


def numbered(spec: tuple, sizes: dict) -> tuple:
    """`spec` with each slice's bound that is a size as the number it is where
    each size name has its size in `sizes` (an instance at fixed sizes)."""
    out = []
    for item in spec:
        if item[0] == "slice":
            parts = (p if not isinstance(p, str) else size_value(p, sizes) for p in item[1:3])
            item = ("slice", *parts, item[3])
        out.append(item)
    return tuple(out)

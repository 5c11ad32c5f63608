"""Array shapes: NumPy broadcasting over declared sizes, and shape inference.

A shape is a tuple of sizes, each an int or a size name from a declaration
(``matrix(n, d)``), or None when unknown (an undeclared input of the numpy
backend may be a scalar or an array of any shape). Inference runs over the
stage DAG in order (a program that declares no array, only scalars, works
elementwise on inputs of any shape: the numpy backend then takes every input's
shape as unknown); each gate's rule is its registry record's `shape` (None:
elementwise, the operands broadcast). A mismatch is a `ShapeError` at the
stage's place in the source, naming both shapes.
"""

from __future__ import annotations

from .errors import ShapeError

Shape = tuple | None


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


def drop_axis(shape: Shape, axis: int) -> Shape:
    """The shape after reducing over `axis` (NumPy's default, keepdims=False)."""
    if shape is None:
        return None
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for shape {text(shape)}")
    return tuple(d for k, d in enumerate(shape) if k != axis % len(shape))


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


def infer(graph, backend: str) -> tuple[Shape, ...]:
    """The shape of every value of `graph` (inputs as declared)."""
    from .gates import REGISTRY

    for i in graph.inputs:
        if backend == "math" and i.shape:
            raise ShapeError(
                f"'{i.name}' is declared as an array of shape {text(i.shape)}: arrays need "
                "the numpy backend (--backend numpy)",
                i.span,
            )
    if backend == "math":
        shapes: list[Shape] = [() for i in graph.inputs]
    elif any(i.shape for i in graph.inputs):
        shapes = [i.shape for i in graph.inputs]
    else:  # a scalar program applies elementwise to arrays of any shape
        shapes = [None for i in graph.inputs]
    for stage in graph.stages:
        gate = REGISTRY[stage.gate]
        if backend not in gate.backends:
            raise ShapeError(
                f"'{gate.operator or gate.source}' ({gate.name}) needs the numpy backend (--backend numpy)",
                stage.span,
            )
        operand_shapes = [shapes[op] if isinstance(op, int) else () for op in stage.operands]
        try:
            if gate.shape is None:
                shape = broadcast(*operand_shapes)
            else:
                shape = gate.shape(
                    *operand_shapes, **dict(zip(gate.params, map(int, stage.params), strict=True))
                )
        except ValueError as exc:
            raise ShapeError(str(exc), stage.span) from None
        shapes.append(shape)
    return tuple(shapes)


def elementwise(graph) -> bool:
    """A scalar program: no input declared as an array and no array gate (the
    numpy backend applies it to arrays element by element)."""
    from .gates import REGISTRY

    return all(s in ((), None) for s in graph.shapes[: len(graph.inputs)]) and not any(
        REGISTRY[s.gate].structural for s in graph.stages
    )

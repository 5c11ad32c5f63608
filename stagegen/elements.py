"""An array program instantiated at fixed sizes, one scalar node per element:
the SymPy reference of `verify`'s check of array programs.

Each input becomes a NumPy object array of element ids (0, 1, ... in input
order, each input row-major). A gate application maps its operands' arrays to
its output's: an elementwise gate by NumPy's broadcasting, one node per output
element (the gate's meaning applied to the operand elements there); a
structural gate (matmul, a reduction) by its `elements` meaning, NumPy's own
operation on object arrays of SymPy symbols, one symbol per operand element,
so that each output element is a SymPy expression of the elements it reads
(a transpose's element is a node too, the identity of the element it moves:
each stage's adjoint is its own). NumPy defines every shape, broadcast and axis;
stagegen's own shape code is not used. The result is a scalar program in SSA
form (node k defines element id ``n_inputs + k``) that `verify` evaluates at
50 digits and differentiates node by node, as it does a scalar program.

NumPy is imported when an array program is instantiated; stagegen does not
depend on it otherwise.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.symbol import Str

from . import subscripts
from .expr import Expr, parameter
from .gates import BY_FUNCTION, REGISTRY, slot, sympy_number
from .shapes import linear

# Beyond these, the array check uses finite differences only: the input elements
# (checked first: a matmul's elements are sums over a whole row, made before they
# can be counted) and the nodes of one instantiation.
MAX_INPUT_ELEMENTS = 1_000
MAX_ELEMENTS = 20_000


class TooLarge(Exception):
    """The instantiation would have more than MAX_INPUT_ELEMENTS inputs or MAX_ELEMENTS nodes."""


@dataclass(frozen=True)
class Node:
    """One element: a gate's meaning at operand elements (`gate`, `params`), or
    for a structural gate its element's expression over slot(i) (`expr`)."""

    operands: tuple  # element ids (int) or SymPy numbers
    gate: str | None = None
    params: tuple = ()
    expr: sp.Expr | None = None


@dataclass
class Elements:
    """A program at fixed sizes: its nodes, and each value's array of element ids."""

    n_inputs: int
    nodes: list = field(default_factory=list)
    stage: list = field(default_factory=list)  # node k -> the index of the stage (or step) that made it
    arrays: dict = field(default_factory=dict)  # value (graph id or program name) -> its array of element ids


def _np():
    import numpy as np

    return np


class _Builder:
    def __init__(self, shapes: list[tuple], indexes: dict | None = None, declared=()):
        """`indexes`: the index inputs' values by input position (integers, not
        elements); `declared`: the inputs' declared shapes (their size names)."""
        np = _np()
        # each size name's size here: what a reshape's size name stands for
        self.sizes = {
            name: size
            for shape, given in zip(declared, shapes, strict=False)
            for name, size in zip(shape or (), given, strict=False)
            if isinstance(name, str)
        }
        for name, size in list(self.sizes.items()):  # 4*H: H is a quarter of it
            c, base, k = linear(name) or (1, None, 0)
            if base is not None and base != name:
                self.sizes.setdefault(base, (size - k) // c)
        indexes = indexes or {}
        sizes = [math.prod(s) for k, s in enumerate(shapes) if k not in indexes]
        self.elements = Elements(n_inputs=sum(sizes))
        if self.elements.n_inputs > MAX_INPUT_ELEMENTS:
            raise TooLarge
        self.inputs = []
        start = 0
        for k, shape in enumerate(shapes):
            if k in indexes:
                values = np.asarray(indexes[k]).reshape(shape)
                self.inputs.append(np.vectorize(sp.Integer, otypes=[object])(values).reshape(shape))
                continue
            size = math.prod(shape)
            self.inputs.append(np.arange(start, start + size, dtype=object).reshape(shape))
            start += size
        self.symbols: dict[int, sp.Symbol] = {}
        self.ids: dict[sp.Symbol, int] = {}

    def _new(self, node: Node, stage: int) -> int:
        elements = self.elements
        if len(elements.nodes) >= MAX_ELEMENTS:
            raise TooLarge
        elements.nodes.append(node)
        elements.stage.append(stage)
        return elements.n_inputs + len(elements.nodes) - 1

    def _symbol(self, item):
        """An element as SymPy: a symbol for an element id, a constant as itself."""
        if not isinstance(item, int):
            return item
        symbol = self.symbols.get(item)
        if symbol is None:
            symbol = self.symbols[item] = sp.Symbol(f"e{item}", real=True)
            self.ids[symbol] = item
        return symbol

    def apply(self, gate_name: str, params: tuple, operands: list, stage: int):
        """The output array of one gate application; `operands`: object arrays of
        element ids and SymPy numbers (a constant operand is a 0-d array)."""
        np = _np()
        gate = REGISTRY[gate_name]
        if gate.elements is None:  # elementwise: NumPy broadcasts the operands
            spread = np.broadcast_arrays(*operands)
            out = np.empty(spread[0].shape, dtype=object)
            for index in np.ndindex(out.shape):
                items = tuple(a[index] for a in spread)
                if all(not isinstance(i, int) for i in items):
                    out[index] = sp.sympify(gate.meaning(*items, *map(sympy_number, params)))
                else:
                    out[index] = self._new(Node(items, gate=gate_name, params=params), stage)
            return out
        symbolic = [np.frompyfunc(self._symbol, 1, 1)(a) if a.ndim else self._symbol(a[()]) for a in operands]
        plain = [parameter(p) if isinstance(p, Expr) else _plain(p) for p in params]
        if gate.tuples:  # a size name is the size it has here
            plain = [tuple(self.sizes.get(d, d) for d in p) if isinstance(p, tuple) else p for p in plain]
        if gate.subscript:  # and so is a slice's bound that is a size
            plain = [subscripts.numbered(plain[0], self.sizes), *plain[1:]]
        result = np.asarray(
            gate.elements(np, *symbolic, **dict(zip(gate.params, plain, strict=True))), dtype=object
        )
        out = np.empty(result.shape, dtype=object)
        for index in np.ndindex(result.shape):
            out[index] = self._element(sp.sympify(result[index]), stage)
        return out

    def _element(self, expr: sp.Expr, stage: int):
        read = sorted(self.ids[s] for s in expr.free_symbols)
        if not read:
            return expr
        canonical = expr.xreplace({self.symbols[e]: slot(i) for i, e in enumerate(read)})
        return self._new(Node(tuple(read), expr=canonical), stage)


def _plain(value):
    """A parameter as a SymPy argument (a parsed program's) as its Python value."""
    return ast.literal_eval(value.name) if isinstance(value, Str) else int(value)


def _array(np, item):
    return item if isinstance(item, np.ndarray) else np.asarray(item, dtype=object).reshape(())


def of_graph(graph, shapes: list[tuple], indexes: dict | None = None) -> Elements:
    """The lowered program (`ir.Graph`) with its inputs of these shapes (the
    index inputs' values in `indexes`, by position); each value's array by value id."""
    np = _np()
    builder = _Builder(shapes, indexes, [i.shape for i in graph.inputs])
    arrays = builder.elements.arrays
    for k, array in enumerate(builder.inputs):
        arrays[k] = array
    for k, stage in enumerate(graph.stages):
        operands = [
            arrays[op] if isinstance(op, int) else _array(np, sympy_number(op)) for op in stage.operands
        ]
        arrays[stage.out] = builder.apply(stage.gate, stage.params, operands, k)
    return builder.elements


def of_program(program, shapes: list[tuple], indexes: dict | None = None) -> tuple[Elements, list]:
    """The parsed program (its SymPy statements, before lowering) with its
    inputs of these shapes, and its outputs' arrays of element ids."""
    np = _np()
    builder = _Builder(shapes, indexes, [i.shape for i in program.inputs])
    by_name = {i.name: builder.inputs[k] for k, i in enumerate(program.inputs)}
    step = 0
    for statement in program.statements:
        done: dict[int, object] = {}
        stack = [(statement.expr, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in done:
                continue
            if isinstance(node, sp.Symbol):
                done[id(node)] = by_name[node.name]
                continue
            if not node.args or node.is_number:
                done[id(node)] = _array(np, node)
                continue
            gate = BY_FUNCTION.get(node.func)
            if gate is None:
                raise ValueError(f"no array meaning for {node.func}")
            n = gate.arity(len(node.args))
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in reversed(node.args[:n]) if id(a) not in done)
                continue
            operands = [done[id(a)] for a in node.args[:n]]
            done[id(node)] = builder.apply(gate.name, tuple(node.args[n:]), operands, step)
            step += 1
        by_name[statement.name] = done[id(statement.expr)]
    return builder.elements, [by_name[name] for name in program.outputs]

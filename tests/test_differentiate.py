"""The reverse pass: = then +=, pruning to --wrt, the cache, compact aliases."""

import stagegen
from helpers import adjoint_lines, example


def backward(source: str, **options):
    return stagegen.build(source, **options)


def test_forks_get_equals_then_plus_equals():
    text = stagegen.generate("f = x * x + exp(x)")
    ops = [(t, op) for t, op, _, _ in adjoint_lines(text)]
    assert ops.count(("dx", "=")) == 1
    assert ops.index(("dx", "=")) < ops.index(("dx", "+="))


def test_wrt_prunes_lines_and_cache():
    full = backward(example("neuron.txt"))
    weights = backward(example("neuron.txt"), wrt="w0,w1,w2")
    one = backward(example("neuron.txt"), wrt="w2")
    assert len(full.backward.lines) == 9 and len(weights.backward.lines) == 7 and len(one.backward.lines) == 2
    name = lambda b: [b.names.values[v] for v in b.backward.cache]  # noqa: E731
    assert name(full) == ["w0", "w1", "x0", "x1", "f"]
    assert name(weights) == ["x0", "x1", "f"]
    assert name(one) == ["f"]
    module = stagegen.load(example("neuron.txt"), wrt="w2,w0")
    assert module.WRT == ("w0", "w2")  # input order, whatever order --wrt names them in


def test_input_without_influence_gets_zero():
    module = stagegen.load("z: scalar\nf = x * y")
    assert module.INPUTS == ("z", "x", "y")
    assert module.value_and_grad(5.0, 2.0, 3.0) == (6.0, (0.0, 3.0, 2.0))
    assert module.backward(2.0, module.forward(5.0, 2.0, 3.0)[1]) == (0.0, 6.0, 4.0)


def test_compact_aliases_plain_copies_only():
    seed = backward(example("notes.txt"))
    compact = backward(example("notes.txt"), style="compact")
    names = compact.names.values
    aliased = {names[k]: names[v] for k, v in compact.backward.alias.items()}
    assert aliased == {"sigx": "den", "xpysqr": "den", "sigy": "num"}
    assert len(seed.backward.lines) == 12 and len(compact.backward.lines) == 9
    assert seed.backward.cache == compact.backward.cache


def test_compact_keeps_input_gradients_as_lines():
    text = stagegen.generate("f = exp(x + y)", style="compact")
    targets = [t for t, _, _, _ in adjoint_lines(text)]
    assert targets == ["dxpy", "dx", "dy"]
    module = stagegen.load("f = exp(x + y)", style="compact")
    value, (dx, dy) = module.value_and_grad(0.5, 0.25)
    assert dx == dy == value

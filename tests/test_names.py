"""Name hygiene: user names are kept, generated names give way, code stays correct."""

import keyword

import pytest

import stagegen
from helpers import adjoint_lines


def check(source: str, **options) -> str:
    report = stagegen.verify(source, points=4, **options)
    assert report.ok, report.table()
    return stagegen.generate(source, **options)


def test_input_dx_beside_x():
    text = check("f = x * dx + exp(x)")
    module = stagegen.load("f = x * dx + exp(x)")
    assert module.INPUTS == ("x", "dx") and module.WRT == ("x", "dx")
    assert "dx_" in text  # the adjoint of x gives way to the input dx
    assert "ddx" in text  # the adjoint of the input dx


def test_stage_dnum_beside_num():
    text = check("num = x + 1\ndnum = num * y\nf = dnum / num")
    targets = {t for t, _, _, _ in adjoint_lines(text)}
    assert {"dnum_", "ddnum"} <= targets


@pytest.mark.parametrize(
    "name",
    [
        "math",
        "np",
        "cache",
        "dout",
        "forward",
        "backward",
        "value_and_grad",
        "INPUTS",
        "WRT",
        "OUTPUT",
        "print",
        "float",
        "match",
        "case",
        "type",
        "_",
    ],
)
def test_module_names_as_inputs(name):
    source = f"f = {name} * exp(y) + sin({name})"
    text = check(source)
    module = stagegen.load(source)
    assert module.INPUTS == (name, "y")
    if name == "math":
        assert "import math as math_" in text
    if name in ("cache", "dout"):
        assert f"def backward({'dout_' if name == 'dout' else 'dout'}, " in text


def test_names_that_differ_in_case():
    text = check("X = x * 2\nf = X * x + exp(X)")
    assert "dX" in text and "dx" in text


def test_unicode_identifiers():
    check("θ: scalar\nf = sin(θ) * r**2")


def test_keywords_cannot_be_names():
    for word in ("lambda", "def", "None", "True"):
        with pytest.raises(stagegen.ParseError):
            stagegen.generate(f"{word} = x + 1\nf = {word} * 2")
    assert keyword.iskeyword("lambda")


def test_generated_names_are_unique_and_shadow_nothing():
    source = "f = abs(x) * max(x, y) + exp(x) * exp(x) + (x + y) * (x + y)"
    b = stagegen.build(source)
    names = list(b.names.values) + list(b.names.adjoints.values())
    assert len(names) == len(set(names))
    assert not {"abs", "max", "min", "exp", "math"} & set(names)
    check(source)


def test_structural_names_are_short():
    b = stagegen.build("f = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)")
    assert list(b.names.values[2:]) == ["sigy", "num", "sigx", "xpy", "xpysqr", "den", "invden", "f"]
    long = stagegen.build("f = exp(-(w0*x0 + w1*x1 + w2 + w3*x3))")
    assert all(len(n) <= 12 for n in long.names.values)

"""Name hygiene: user names are kept, generated names give way, code stays correct."""

import dis
import keyword

import pytest
import sympy as sp

import stagegen
from gradcheck import RTOL, close, reference
from helpers import adjoint_lines
from stagegen.emit import emit
from stagegen.gates import BY_SOURCE
from stagegen.identifiers import GLOBALS


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


# -- every name the generated module uses, as an input and as a stage -------------

# names the module defines, imports or reads, names an adjoint or a generated
# name would take, Unicode, and names that differ from another only in case
KEPT = [
    *("math", "np", "numpy", "cache", "dout", "forward", "backward", "value_and_grad"),
    *("INPUTS", "WRT", "OUTPUT", "print", "float", "len", "type", "exc", "linecache", "frame"),
    *("f_", "d", "dd", "dx", "dy", "ddy", "dx_", "t1", "t2", "sigy", "xpy", "invden", "num", "den"),
    *("match", "case", "_", "θ", "Θ", "μ1", "X", "Y"),
]
REFUSED = [*GLOBALS, "abs", "max", "exp", "__x__"]
POINTS = [(0.7, -1.3), (-2.1, 0.4)]


def _check_against_sympy(source: str, names: tuple[str, ...], expr: sp.Expr) -> None:
    module = stagegen.load(source)
    assert module.INPUTS == names
    symbols = [sp.Symbol(n, real=True) for n in names]
    for point in POINTS:
        value, grads = module.value_and_grad(*point)
        ref_value, ref_grads = reference(
            expr.subs(dict(zip(sp.symbols("a b", real=True), symbols, strict=True))), symbols, point
        )
        assert close(value, ref_value, RTOL, 1.0)
        for got, want in zip(grads, ref_grads, strict=True):
            assert close(got, want, RTOL, 1.0), (source, point, grads, ref_grads)


@pytest.mark.parametrize("name", KEPT)
def test_name_as_input_is_kept_and_correct(name):
    other = "y" if name != "y" else "z"
    source = f"f = {name} * exp({other}) + sin({name}) * {other}\n"
    a, b = sp.symbols("a b", real=True)
    _check_against_sympy(source, (name, other), a * sp.exp(b) + sp.sin(a) * b)


@pytest.mark.parametrize("name", KEPT)
def test_name_as_stage_is_kept_and_correct(name):
    x, y = ("x", "y") if name not in ("x", "y") else ("u", "v")
    source = f"{name} = {x} * {y} + 1\nf = {name} * exp({x}) + sin({name}) * {y}\n"
    a, b = sp.symbols("a b", real=True)
    s = a * b + 1
    _check_against_sympy(source, (x, y), s * sp.exp(a) + sp.sin(s) * b)
    text = stagegen.generate(source)
    assert f"\n        {name} = " in text  # the user's name, unchanged


@pytest.mark.parametrize("name", KEPT)
def test_name_as_sympy_symbol_is_kept_and_correct(name):
    n, y = sp.Symbol(name, real=True), sp.Symbol("y" if name != "y" else "z", real=True)
    module = stagegen.load(n * sp.exp(y) + sp.sin(n) * y, inputs=[n, y])
    assert module.INPUTS == (name, y.name)
    for point in POINTS:
        value, grads = module.value_and_grad(*point)
        ref_value, ref_grads = reference(n * sp.exp(y) + sp.sin(n) * y, [n, y], point)
        assert close(value, ref_value, RTOL, 1.0)
        assert all(close(g, r, RTOL, 1.0) for g, r in zip(grads, ref_grads, strict=True))


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("where", ["input", "stage", "declaration"])
def test_name_the_module_needs_is_refused_clearly(name, where):
    source = {
        "input": f"f = {name} * y + 1\n",
        "stage": f"{name} = x * y + 1\nf = {name} * 2\n",
        "declaration": f"{name}: scalar\nf = {name} * y\n",
    }[where]
    with pytest.raises(stagegen.ParseError) as info:
        stagegen.generate(source, filename="in.txt")
    first = info.value.render().split("\n")[0]
    assert first.startswith("in.txt:") and f"'{name}'" in first


@pytest.mark.parametrize("name", [*GLOBALS, "lambda", "ℌ", "ｘ"])
def test_symbol_names_python_cannot_read_back_are_refused(name):
    with pytest.raises(stagegen.UnsupportedError, match="cannot be an argument name"):
        stagegen.generate(sp.Symbol(name) * sp.Symbol("y"))


@pytest.mark.parametrize("backend, module", [("math", "math"), ("numpy", "np")])
def test_generated_functions_read_no_global_a_user_name_could_shadow(backend, module):
    """Every global a generated function reads is the backend module's alias, a
    function name of the input language, or listed in identifiers.GLOBALS."""
    gates = [g for g, gate in BY_SOURCE.items() if backend in gate.backends]
    source = "f = " + " + ".join(f"{g}(x)" if g not in ("max", "min") else f"{g}(x, y)" for g in gates)
    b = stagegen.build(source, backend=backend)
    modules = [b.text, emit(b.program, b.graph, b.backward, b.names, b.options, instrument=True)]
    for text in modules:
        code = compile(text, "<generated>", "exec")
        for const in code.co_consts:
            if hasattr(const, "co_code") and const.co_name not in ("_locate", "_unbroadcast"):
                loaded = {i.argval for i in dis.get_instructions(const) if i.opname == "LOAD_GLOBAL"}
                assert loaded <= {module, *BY_SOURCE, *GLOBALS}, loaded

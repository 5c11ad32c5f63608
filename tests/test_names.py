"""Name hygiene: user names are kept, generated names give way, code stays correct."""

import dis
import keyword
import math
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import event, given, note
from hypothesis import strategies as st

import stagegen
from gradcheck import RTOL, close, reference
from helpers import adjoint_lines, run_subprocess
from stagegen.gates import BY_SOURCE
from stagegen.identifiers import GLOBALS
from stagegen.modules import INDEX, PLACED, RECORD, instrument


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
    gates = {g: gate for g, gate in BY_SOURCE.items() if backend in gate.backends}
    arity = {g: 2 if gate.variadic else len(gate.operands) for g, gate in gates.items()}
    calls = {g: f"{g}({', '.join('xyz'[: arity[g]])})" for g in gates}
    calls["where"] = "where((x > y) & ~(x == 0) | (y != 1), x, y)"  # masks too
    if "swapaxes" in calls:  # its axes are constants
        calls["swapaxes"] = "swapaxes(x, 0, 0)"
    # tuples of constants, and lists of operands
    tuples = {"reshape": "reshape(x, (3,))", "transpose": "transpose(x, (0,))"}
    calls.update({g: c for g, c in tuples.items() if g in calls})
    calls.update({g: f"{g}([x, y])[1:4]" for g in ("concat", "stack") if g in calls})
    source = "f = " + " + ".join(calls.values())
    if backend == "numpy":  # dot and outer take declared vectors; subscripts and an index array
        source = "x: vector(3)\ny: vector(3)\nz: vector(3)\ni: index(2)\n" + source + " + x[i][0] + x[-1]"
    b = stagegen.build(source, backend=backend)
    for tree in (b.text, instrument(b.text)):
        code = compile(tree, "<generated>", "exec")
        # the listing's functions (a helper, named _..., has locals of its own: no user name is one)
        for const in code.co_consts:
            if hasattr(const, "co_code") and not const.co_name.startswith("_"):
                loaded = {i.argval for i in dis.get_instructions(const) if i.opname == "LOAD_GLOBAL"}
                # the instrumented rendering also reads its recorder, a dunder name no input can take
                assert loaded <= {module, *BY_SOURCE, *GLOBALS, RECORD, PLACED, INDEX}, loaded


# -- every name that reaches generated code passes one check ---------------------

x_, y_ = sp.symbols("x y", real=True)
MARKER_DIR = Path(tempfile.mkdtemp(prefix="stagegen-names-"))
MARKER = MARKER_DIR / "PWNED"
PAYLOAD = f"y=open({str(MARKER)!r}, 'w')"  # a default value that would create MARKER when run
HOSTILE = [
    PAYLOAD,
    f"y):\n    open({str(MARKER)!r}, 'w')\ndef _(y",
    "lambda",
    "a b",
    "x\n",
    "",
    "ℌ",
    "__x__",
    "exp",
    "pi",
    *GLOBALS,
    "1x",
    "x.y",
]


def _entry_points(options):
    """Every API entry point, called on the same SymPy source with `options`."""
    return {
        "generate": lambda: stagegen.generate(x_ * 2, **options),
        "build": lambda: stagegen.build(x_ * 2, **options),
        "load": lambda: stagegen.load(x_ * 2, **options),
        "trace": lambda: stagegen.trace(x_ * 2, {"x": 1.0, "y": 2.0}, **options),
        "verify": lambda: stagegen.verify(x_ * 2, points=2, **options),
        "diagram": lambda: stagegen.diagram(x_ * 2, **options),
    }


@pytest.mark.parametrize(
    "name, argument",
    [
        (name, argument)
        for argument in ("inputs", "inputs-string", "wrt", "symbol")
        for name in HOSTILE
        # a comma splits a string into other names, blanks into none
        if not (argument == "inputs-string" and ("," in name or not name.strip()))
    ],
    ids=repr,
)
@pytest.mark.parametrize("entry", list(_entry_points({})))
def test_a_bad_name_is_a_clear_error_from_every_entry_point(name, argument, entry):
    options = {
        "inputs": {"inputs": [x_, name]},
        "inputs-string": {"inputs": f"x, {name}"},
        "wrt": {"wrt": [x_, name]},
        "symbol": {},
    }[argument]
    call = _entry_points(options)[entry]
    if argument == "symbol":
        call = {
            "generate": lambda: stagegen.generate(x_ * sp.Symbol(name)),
            "build": lambda: stagegen.build(x_ * sp.Symbol(name)),
            "load": lambda: stagegen.load(x_ * sp.Symbol(name)),
            "trace": lambda: stagegen.trace(x_ * sp.Symbol(name), {"x": 1.0}),
            "verify": lambda: stagegen.verify(x_ * sp.Symbol(name), points=2),
            "diagram": lambda: stagegen.diagram(x_ * sp.Symbol(name)),
        }[entry]
    with pytest.raises(stagegen.StagegenError) as info:
        call()
    message = info.value.render()
    assert "Traceback" not in message and "AssertionError" not in message
    assert not MARKER.exists()


def test_the_payload_is_named_in_the_message():
    with pytest.raises(stagegen.UsageError) as info:
        stagegen.generate(x_ * 2, inputs=[x_, PAYLOAD], wrt=[x_])
    assert info.value.render().split("\n")[0] == (
        f"stagegen: error: {PAYLOAD!r} is not a Python identifier (in inputs=)"
    )
    assert not MARKER.exists()


@pytest.mark.parametrize("inputs", ["y,x", " y , x ", ("y", "x"), [y_, x_], [y_, "x"], (n for n in "yx")])
def test_inputs_as_a_string_or_a_sequence_on_both_paths(inputs):
    materialised = list(inputs) if not isinstance(inputs, (str, tuple, list)) else inputs
    for source in (x_ * sp.exp(y_), "f = x * exp(y)"):
        module = stagegen.load(source, inputs=materialised)
        assert module.INPUTS == ("y", "x")
        value, (dy, dx) = module.value_and_grad(0.5, 2.0)
        assert (value, dx, dy) == (2.0 * math.exp(0.5), math.exp(0.5), 2.0 * math.exp(0.5))


@pytest.mark.parametrize("wrt", ["y", [y_], ("y",), " y, "])
def test_wrt_as_a_string_or_a_sequence_on_both_paths(wrt):
    for source in (x_ * sp.exp(y_), "f = x * exp(y)"):
        assert stagegen.load(source, wrt=wrt).WRT == ("y",)


def test_a_keyword_in_inputs_is_a_usage_error_not_an_assertion():
    with pytest.raises(stagegen.UsageError, match="'lambda' is a Python keyword"):
        stagegen.generate(x_ * y_, inputs=[x_, y_, "lambda"])


JAMO = ("xᄀ", "ᅡy", "x가y")  # the stage xᄀ * ᅡy would be named "x가y", which Python reads as x가y


@pytest.mark.parametrize("backend", ["math", "numpy"])
def test_a_generated_name_never_equals_a_user_name_after_normalisation(backend):
    source = f"f = {JAMO[0]} * {JAMO[1]} + {JAMO[2]}"
    b = stagegen.build(source, backend=backend)
    names = [*b.names.values, *b.names.adjoints.values()]
    folded = [unicodedata.normalize("NFKC", n) for n in names]
    assert len(set(folded)) == len(folded) and folded == names
    module = stagegen.load(source, backend=backend)
    value, grads = module.value_and_grad(2.0, 3.0, 7.0)
    assert (float(value), tuple(map(float, grads))) == (13.0, (3.0, 2.0, 1.0))
    assert stagegen.verify(source, backend=backend, points=4).ok


def test_a_module_written_with_odd_names_imports_and_computes(tmp_path):
    (tmp_path / "in.txt").write_text(f"f = {JAMO[0]} * {JAMO[1]} + {JAMO[2]}\n", encoding="utf-8")
    status, _, err = run_subprocess(["in.txt", "-o", "jamo_module.py"], tmp_path)
    assert status == 0, err
    done = subprocess.run(
        [sys.executable, "-c", "import jamo_module as m; print(m.value_and_grad(2.0, 3.0, 7.0))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "(13.0, (3.0, 2.0, 1.0))", done.stderr


@pytest.mark.parametrize(
    "source, backend, point",
    [
        ("f = erf(_e*rf)", "numpy", (0.5, 0.25)),
        ("f = erf(_e*rf)", "math", (0.5, 0.25)),
        ("f = _unbroad*cast", "numpy", (np.array([1.0, 2.0]), np.array([[3.0], [4.0]]))),
        ("f = log(_loc*ate) + exp(_unbroad*cast)", "math", (0.5, 0.25, 0.5, 0.25)),
    ],
)
def test_a_generated_name_never_shadows_a_global_the_module_reads(source, backend, point):
    b = stagegen.build(source, backend=backend)
    generated = set(b.names.values[len(b.graph.inputs) :]) | set(b.names.adjoints.values())
    assert not generated & set(GLOBALS)
    module = stagegen.load(source, backend=backend)
    value, grads = module.value_and_grad(*point)
    assert all(np.shape(g) == np.shape(p) for g, p in zip(grads, point, strict=True))
    assert stagegen.verify(source, backend=backend, points=4).ok


def test_a_failing_stage_is_located_even_beside_odd_names():
    module = stagegen.load("f = log(_loc*ate)")
    with pytest.raises(ValueError, match=r"stage \(2\)"):
        module.value_and_grad(-1.0, 2.0)


# names a SymPy symbol, an inputs= entry or a wrt= entry may take in the property
# below: valid ones (Unicode, jamo, soft keywords, the module's own and its helpers'
# fragments) and hostile ones (the payload, keywords, spaces, quotes, confusables)
VALID_NAMES = [
    *("x", "y", "z", "θ", "_", "match", "type", "xᄀ", "ᅡy", "x가y", "μ1", "Θ"),
    *("_e", "rf", "_loc", "ate", "_unbroad", "cast", "dx", "dout", "cache", "math", "np", "t1", "f"),
]
BAD_NAMES = [
    *(PAYLOAD, "lambda", "None", "a b", "x'", 'x"', "x(", "x\n", "", " ", "ℌ", "ｘ", "__x__"),
    *("exp", "pi", "E", "_erf", "_locate", "locals", "ValueError", "x=1", "1x"),
]
ODD_NAMES = st.sampled_from(VALID_NAMES + BAD_NAMES) | st.text(
    alphabet="xy가가_ =(',\n", min_size=0, max_size=4
)


OPERATIONS = {
    "add": lambda a, b: sp.Add(a, b, evaluate=False),
    "mul": lambda a, b: sp.Mul(a, b, evaluate=False),
    "sin": lambda a, b: sp.sin(a),
    "sigmoid": lambda a, b: stagegen.sigmoid(a),
    "square": lambda a, b: sp.Pow(a, 2, evaluate=False),
    # unevaluated forms and odd constants
    "reciprocal": lambda a, b: sp.Pow(a, -1, evaluate=False),
    "times-zero": lambda a, b: sp.Mul(a, 0, evaluate=False),
    "over-zero": lambda a, b: sp.Mul(a, sp.Pow(0, -1, evaluate=False), evaluate=False),
    "minus": lambda a, b: sp.Add(a, sp.Mul(-1, b, evaluate=False), evaluate=False),
    "plus-pi": lambda a, b: sp.Add(a, sp.pi, evaluate=False),
    "times-tiny": lambda a, b: sp.Mul(a, sp.Float("1e-400"), evaluate=False),
    "times-huge": lambda a, b: sp.Mul(a, sp.Integer(10) ** 400, evaluate=False),
    "plus-infinity": lambda a, b: sp.Add(a, sp.oo, evaluate=False),
    "constant-gate": lambda a, b: sp.Mul(a, sp.tanh(stagegen.sigmoid(3)), evaluate=False),
    # undefined functions named like gates, with right and wrong numbers of arguments
    **{
        f"named-{name}-{n}": (lambda a, b, name=name, n=n: sp.Function(name)(*[a, b][:n]))
        for name in ("add", "max", "powc", "sum", "sigmoid", "matmul", "log2", "exp", "nowhere")
        for n in (1, 2)
    },
}


@st.composite
def sympy_trees(draw):
    """A random SymPy expression over symbols with odd names (safe on [-3, 3])."""
    names = draw(st.lists(ODD_NAMES, min_size=1, max_size=3, unique=True))
    leaves = [sp.Symbol(n, real=True) for n in names]
    nodes = list(leaves)
    for _ in range(draw(st.integers(1, 5))):
        a, b = draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))
        op = draw(st.sampled_from(list(OPERATIONS)))
        nodes.append(OPERATIONS[op](a, b))
    return nodes[-1], names


@st.composite
def name_arguments(draw, names):
    """An inputs= or wrt= value: None, the names (maybe shuffled, cut, or with odd
    extras) as a comma-separated string or as a list of symbols and strings."""
    if draw(st.booleans()):
        return None
    chosen = draw(st.permutations(names))
    chosen = chosen[: draw(st.integers(0, len(chosen)))] if draw(st.booleans()) else chosen
    if draw(st.integers(0, 3)) == 0:
        chosen = chosen + draw(st.lists(ODD_NAMES, min_size=1, max_size=2))
    if draw(st.booleans()):
        return ", ".join(chosen)
    return [sp.Symbol(n, real=True) if draw(st.booleans()) else n for n in chosen]


@given(data=st.data())
def test_odd_names_give_a_verified_module_or_a_clear_error(data):
    expr, names = data.draw(sympy_trees())
    inputs = data.draw(name_arguments(names), label="inputs")
    wrt = data.draw(name_arguments(names), label="wrt")
    try:
        report = stagegen.verify(expr, inputs=inputs, wrt=wrt, points=3)
    except stagegen.StagegenError as exc:
        event(type(exc).__name__)
        message = exc.render()
        assert message and "Traceback" not in message
    else:
        event("verified" if report.ok else "no valid point")
        note(report.table())
        assert report.ok or (report.points == 0 and all(row.ok for row in report.rows))
    assert not MARKER.exists()

"""Fuzzing the input language: whatever the file holds, stagegen either writes a
module that passes its own SymPy check or reports one clean error.

Two generators of input files:

- random token sequences: names (odd ones included: keywords, dunders,
  module names, Unicode), numbers (huge, tiny, hex, inf-producing), operators,
  brackets, calls, declarations, comments and newlines, in any order;
- random valid-but-odd programs: named stages with names that collide with what
  the generated module uses, Unicode and case-only differences, comments,
  blank lines, parentheses, declarations in odd order, shared and unused
  stages, over well-conditioned operations (so that a correct module must pass
  `stagegen.verify`; the numerically delicate cases belong to test_property).

The outcome must be a module that passes ``stagegen.verify``, or a
`StagegenError` that renders as ``FILE:LINE:COL: error: ...`` (or ``FILE:
error: ...``) plus at most three indented lines; any other exception fails.
One exception: a token program with a huge literal (1e308, 10**100) whose
module overflows float64 in an intermediate at the sampled points is
discarded, not failed (float64 staging cannot hold an adjoint of 1e334).
The ``ci`` hypothesis profile (conftest.py) gives a short run;
``HYPOTHESIS_PROFILE=long`` a long one.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, note, reject, settings
from hypothesis import strategies as st

import stagegen

FIRST_LINE = re.compile(r"^[^\n:]+(:\d+:\d+)?: error: \S[^\n]*$")
VERIFY_POINTS = 3

NAMES = (
    *("x", "y", "z", "t1", "dx", "ddx", "X", "θ", "Θ", "μ", "_", "f", "f_"),
    *("math", "np", "cache", "dout", "forward", "backward", "value_and_grad", "INPUTS", "locals"),
    *("lambda", "None", "True", "def", "import", "__import__", "__class__", "_locate", "print", "os"),
)
HUGE = ("1e308", "10**100")  # numbers whose products and powers may leave float64's range
NUMBERS = ("0", "1", "2", "0.5", "1e308", "1e999", "1e-400", "0x10", "10**100", "1_0", "3j", "2.5e-3")
FUNCTIONS = ("exp", "log", "sqrt", "sin", "tanh", "sigmoid", "relu", "abs", "max", "min", "erf", "foo")
SYMBOLS = (
    *("+", "-", "*", "/", "**", "@", "%", "//", "~", "(", ")", "(", ")", ",", "=", ":", ".", "[", "]"),
    *("\n", "\n", "  ", ";", "#", "'s'", "if", "else", "not", "and", "scalar", "matrix(2, 2)", "\\", "\t"),
)
TOKENS = st.sampled_from(NAMES + NUMBERS + FUNCTIONS + SYMBOLS)


def check(text: str) -> None:
    """The contract: a module that passes verify, or one clean, located error."""
    note(repr(text))
    try:
        stagegen.generate(text, filename="fuzz.txt")
    except stagegen.StagegenError as exc:
        rendered = exc.render()
        lines = rendered.split("\n")
        assert FIRST_LINE.match(lines[0]), rendered
        assert lines[0].startswith("fuzz.txt") or lines[0].startswith("stagegen:"), rendered
        assert len(lines) <= 4 and all(line.startswith("  ") for line in lines[1:]), rendered
        return
    report = stagegen.verify(text, points=VERIFY_POINTS, filename="fuzz.txt")
    if not report.ok and any(h in text for h in HUGE) and _overflowed(report):
        # 10**100 / y**100: an intermediate adjoint (-1e334) is past float64's
        # range while the gradient is not; no float64 staging can hold it
        reject()
    assert report.ok, report.table()


def _overflowed(report) -> bool:
    failing = [row for row in report.rows if not row.ok]
    return all(row.failure.split(" at ")[0] in ("inf", "-inf", "nan") for row in failing)


@given(st.lists(TOKENS, max_size=30), st.sampled_from([" ", ""]))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# x10**10010 underflows to 0.0; verify called that a mismatch with its 1e-3221 reference
@example(["x", "10**100", "1_0"], "")
# 1e-400 reads as 0.0: folding 0.5 / 0.0 raised SymPy's ZeroDivisionError
@example(["0.5", "/", "1e-400"], " ")
def test_random_tokens(tokens, sep):
    check(sep.join(tokens))


@given(st.binary(max_size=60))
def test_random_bytes_through_the_command(data):
    """Bytes as the CLI reads them: decoding errors are located too."""
    from stagegen.files import read_source

    try:
        text = read_source_bytes(read_source, data)
    except stagegen.StagegenError as exc:
        assert FIRST_LINE.match(exc.render().split("\n")[0])
        return
    check(text)


def read_source_bytes(read_source, data: bytes) -> str:
    import io
    import sys

    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        return read_source("-")
    finally:
        sys.stdin = saved


# -- valid but odd programs ----------------------------------------------------------

STAGE_NAMES = (
    *("math", "np", "cache", "dout", "forward", "backward", "value_and_grad", "INPUTS", "WRT"),
    *("dnum", "num", "den", "invden", "sigy", "t1", "t2", "dt1", "X", "x_", "dx_", "θ2", "float", "len"),
)
INPUT_NAMES = ("x", "y", "dx", "X", "θ", "math", "dout", "cache", "float", "d")
# (template, arity): well-conditioned on the whole real line for |operands| <= ~10
OPERATIONS = (
    ("({0} + {1})", 2),
    ("({0} - {1})", 2),
    ("({0} * {1})", 2),
    ("sin({0})", 1),
    ("cos({0})", 1),
    ("tanh({0})", 1),
    ("sigmoid({0})", 1),
    ("atan({0})", 1),
    ("softplus(sin({0}))", 1),
    ("exp(sin({0}))", 1),
    ("sqrt(1 + {0}**2)", 1),
    ("log(2 + cos({0}))", 1),
    ("{0} / (2 + sin({1}))", 2),
    ("-{0}", 1),
    ("(+{0})", 1),
    ("{0}**2", 1),
    ("0.5 * {0}", 1),
    ("(((({0}))))", 1),
)


@st.composite
def odd_programs(draw) -> str:
    inputs = draw(st.lists(st.sampled_from(INPUT_NAMES), min_size=1, max_size=4, unique=True))
    stage_names = draw(
        st.lists(st.sampled_from([n for n in STAGE_NAMES if n not in inputs]), max_size=5, unique=True)
    )
    pool = list(inputs)
    lines = []
    if draw(st.booleans()):
        lines += [f"{n}: scalar" for n in draw(st.permutations(inputs))]
    for name in stage_names:
        lines.append(f"{name} = {_expr(draw, pool)}")
        if draw(st.booleans()):
            lines[-1] += "  # a comment"
        if draw(st.booleans()):
            lines.append("")
        pool.append(name)
    lines.append(_expr(draw, pool) if draw(st.booleans()) else f"out = {_expr(draw, pool)}")
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n# trailing comment\n"]))


def _expr(draw, pool: list[str]) -> str:
    template, arity = draw(st.sampled_from(OPERATIONS))
    operands = []
    for _ in range(arity):
        if draw(st.integers(0, 3)) == 0:
            operands.append(_leaf_op(draw, pool))
        else:
            operands.append(draw(st.sampled_from(pool)))
    text = template.format(*operands)
    if draw(st.integers(0, 2)) == 0:
        inner_t, inner_arity = draw(st.sampled_from(OPERATIONS[:8]))
        text = inner_t.format(text, *[draw(st.sampled_from(pool)) for _ in range(inner_arity - 1)])
    return text


def _leaf_op(draw, pool: list[str]) -> str:
    name = draw(st.sampled_from(pool))
    return draw(st.sampled_from([f"sin({name})", f"({name} * 0.25)", f"tanh({name})", name]))


@given(odd_programs())
def test_valid_but_odd_programs(text):
    check(text)

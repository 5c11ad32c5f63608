"""Every generated module compiles and is in black's style, whatever the lengths.

The emitter writes black's layout itself (emit._bracketed and black for the
few long statements); programs with 1 to 60 inputs and names of 1 to 40
characters put every argument list, tuple and cache unpacking through each of
black's regimes: one line, the bracket's contents on one line of their own,
and one item per line. Each module is compiled, compared with black's own
formatting of it, imported, and its value compared with the program evaluated
directly in Python.
"""

from __future__ import annotations

import math
import string
import sys

import black
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stagegen
from helpers import run_cli
from stagegen.identifiers import problem

COMBOS = [(backend, style) for backend in ("math", "numpy") for style in ("seed", "compact")]
MODE = black.Mode()  # the emitter writes black's default layout (88 columns)
OPERATIONS = ("{a} * {b}", "{a} + sin({b})", "exp({a}) - {b}", "{a} / (1 + {b}**2)")


def _name(length: int, k: int) -> str:
    """A valid name of exactly `length` characters, unique by `k`."""
    tag = "v" + string.ascii_lowercase[k % 26] + str(k)
    name = (tag + "x" * length)[: max(length, len(tag))]
    assert problem(name) is None, name
    return name


def program(n_inputs: int, input_length: int, stage_lengths: list[int]) -> tuple[str, list[str]]:
    """A program whose every input reaches the output, and its input names."""
    inputs = [_name(input_length, k) for k in range(n_inputs)]
    stages = [_name(length, 1000 + k) for k, length in enumerate(stage_lengths)]
    lines, previous = [], inputs[0]
    for k, stage in enumerate(stages):
        operation = OPERATIONS[k % len(OPERATIONS)]
        lines.append(f"{stage} = " + operation.format(a=previous, b=inputs[(k + 1) % n_inputs]))
        previous = stage
    lines.append("f = " + " + ".join([f"{previous} * {inputs[0]}", *inputs[1:]]))
    return "\n".join(lines) + "\n", inputs


def _check(source: str, inputs: list[str]) -> None:
    point = [0.25 + 0.5 * math.sin(k + 1) for k in range(len(inputs))]
    namespace = {"sin": math.sin, "exp": math.exp, **dict(zip(inputs, point, strict=True))}
    for line in source.splitlines():  # the test's own program, evaluated as the Python it is
        name, expr = line.split(" = ", 1)
        namespace[name] = eval(expr, namespace)  # noqa: S307
    expected = namespace["f"]
    for backend, style in COMBOS:
        text = stagegen.generate(source, backend=backend, style=style)
        compile(text, "<generated>", "exec")
        assert black.format_str(text, mode=MODE) == text, (backend, style)
        module = stagegen.load(source, backend=backend, style=style)
        value, grads = module.value_and_grad(*point)
        assert math.isclose(float(value), expected, rel_tol=1e-12), (backend, style)
        _, cache = module.forward(*point)
        assert [float(g) for g in module.backward(1.0, cache)] == [float(g) for g in grads]


@pytest.mark.parametrize(
    "n_inputs, input_length",
    [
        (8, 7),  # def value_and_grad(...) is 90 characters, its arguments alone 71
        (1, 70),  # one long argument: black keeps it on the def line or puts it alone
        (3, 22),
        (60, 1),
    ],
)
def test_argument_list_regimes(n_inputs, input_length):
    _check(*program(n_inputs, input_length, [5, 40]))


@settings(max_examples=max(4, settings.default.max_examples // 12))
@given(
    n_inputs=st.integers(1, 60),
    input_length=st.integers(1, 40),
    stage_lengths=st.lists(st.integers(1, 40), min_size=1, max_size=6),
)
@example(n_inputs=8, input_length=7, stage_lengths=[1])
@example(n_inputs=2, input_length=40, stage_lengths=[40, 40, 40, 40])
def test_every_layout_compiles_and_is_black(n_inputs, input_length, stage_lengths):
    _check(*program(n_inputs, input_length, stage_lengths))


def test_a_module_that_does_not_compile_is_an_internal_error_and_is_not_written(
    tmp_path, monkeypatch, capsys
):
    def broken(text):  # a layout bug: a def without its closing "):"
        return text.replace("\ndef forward(x, y):\n", "\ndef forward(x, y\n", 1)

    monkeypatch.setattr(sys.modules["stagegen.render"], "_format_long_lines", broken)
    (tmp_path / "in.txt").write_text("f = x * y\n")
    out = tmp_path / "out.py"
    status, stdout, stderr = run_cli([str(tmp_path / "in.txt"), "-o", str(out)], capsys)
    assert status == 3 and stdout == ""
    assert stderr.startswith("stagegen: internal error: InternalError: the generated module does not compile")
    assert "please report it" in stderr
    assert not out.exists()
    with pytest.raises(stagegen.InternalError):
        stagegen.generate("f = x * y")

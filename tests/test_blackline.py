"""blackline.format_statement gives black's own output, shape memo or not."""

import black
import pytest

from stagegen.blackline import format_statement

MODE = black.Mode(line_length=88)
LONG = "averyveryverylongname"

STATEMENTS = [
    "def _():\n    if 1:\n        t105 = 1.0 / (1.0 + math.exp(-t104)) if t104 > -700.0 "
    "else math.exp(t104)  # (123)\n",
    "def _():\n    if 1:\n        t9 = 1.0 / (1.0 + math.exp(-t8)) if t8 > -700.0 else math.exp(t8)"
    "  # (12); a much longer note\n",
    f"def forward({', '.join(f'{LONG}{i}' for i in range(6))}):\n    pass\n",
    f"def _():\n    x = {' + '.join(f'{LONG}{i} * 1e-5 * 0xff' for i in range(4))}  # (7)\n",
    f"INPUTS = ({', '.join(repr(f'{LONG}{i}') for i in range(5))})\n",
    f"def _():\n    match = case * type + {' + '.join(f'{LONG}{i}' for i in range(4))}  # (1)\n",
    "def _():\n    y = " + " + ".join(chr(97 + i % 26) * (1 + i // 26) for i in range(60)) + "  # (2)\n",
    f"def _():\n    θ = {' + '.join(f'{LONG}{i}' for i in range(5))}  # (3)\n",
]


@pytest.mark.parametrize("source", STATEMENTS)
def test_same_as_black(source):
    memo = {}
    assert format_statement(source, MODE, memo) == black.format_str(source, mode=MODE)
    assert format_statement(source, MODE, memo) == black.format_str(source, mode=MODE)  # from the memo


def test_one_shape_is_formatted_once():
    memo = {}
    for k in range(50):
        a, b = f"t{k + 101}", f"t{k + 100}"
        body = f"{a} = 1.0 / (1.0 + math.exp(-{b})) if {b} > -700.0 else math.exp({b})"
        line = f"def _():\n    {body}  # ({k + 200})\n"
        assert format_statement(line, MODE, memo) == black.format_str(line, mode=MODE)
    assert len(memo) == 1

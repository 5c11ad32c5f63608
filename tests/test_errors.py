"""Errors in user input: the whole rendered message, exit status 2, nothing else.

Each row of a table is (input, the complete message stagegen prints on stderr).
docs/ARCHITECTURE.md, "Conventions": the first line is
``FILE:LINE:COL: error: ...`` (line and column counted in characters from 1),
or ``FILE: error: ...`` without a position; at most three indented lines follow
(the source line, a caret, a hint); exit status 2; no traceback; nothing on
stdout; an existing output file is left exactly as it was and no temporary file
is left behind. Every case runs with ``-o OUT.py`` where OUT.py already exists.

Most cases call ``stagegen.__main__.main`` in-process (fast); a few run the
real command in a subprocess. A row marked xfail(strict=True) holds the message
the conventions ask for where stagegen prints something else today (a reported bug).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import run_cli as run_in_process
from helpers import run_subprocess
from stagegen.gates import BY_SOURCE

ROOT = Path(__file__).resolve().parent.parent
OUT_TEXT = "# an older generated module; a failed run must leave it alone\nINPUTS = ()\n"
IN = "in.txt"  # every input file of the tables is called this, in the test's folder
KNOWN = ", ".join(sorted(BY_SOURCE))  # the function list of the unknown-function hint
HINT_ANY = "an expression is made of names, numbers, + - * / ** and known functions"
HINT_OPS = "operators are + - * / ** and unary -"
HINT_FILE = "a file holds declarations (x: scalar), stages (name = expression) " "and a final expression"
HINT_NUMBER = "only real numbers are allowed"
HINT_FLOAT = "numbers must fit in a float (about 1.8e308)"
HINT_STAGING = "split it into named stages, one per line (t1 = ..., t2 = ...)"


def bug(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


def case(content, expected: str, id: str, *marks):
    return pytest.param(content, expected, id=id, marks=marks)


# -- the tables ------------------------------------------------------------------

SAFETY = [
    case(
        "f = __import__('os').system('touch canary')\n",
        """\
in.txt:1:5: error: attribute access is not allowed
  f = __import__('os').system('touch canary')
      ^^^^^^^^^^^^^^^^^^^^^^^
  only plain names, numbers and calls of known functions are allowed""",
        "import-system-call",
    ),
    case(
        "f = __import__('os')\n",
        f"""\
in.txt:1:5: error: unknown function '__import__'
  f = __import__('os')
      ^^^^^^^^^^
  known: {KNOWN}""",
        "dunder-import-call",
    ),
    case(
        "f = math.exp(x)\n",
        """\
in.txt:1:5: error: attribute access is not allowed: 'math.exp'
  f = math.exp(x)
      ^^^^^^^^
  write the function by itself, e.g. exp(x)""",
        "math-dot-exp",
    ),
    case(
        "f = x.__class__\n",
        """\
in.txt:1:5: error: attribute access is not allowed
  f = x.__class__
      ^^^^^^^^^^^
  only plain names, numbers and calls of known functions are allowed""",
        "attribute-dunder",
    ),
    case(
        "f = x.T + 1\n",
        """\
in.txt:1:5: error: '.T' (transpose) needs the numpy backend (--backend numpy)
  f = x.T + 1
      ^^^""",
        "attribute-transpose",
    ),
    case(
        "f = __x__ + 1\n",
        """\
in.txt:1:5: error: the name '__x__' is reserved (double underscores)
  f = __x__ + 1
      ^^^^^
  choose another name, such as x or w1""",
        "dunder-name",
    ),
    case(
        "__f__ = x + 1\n",
        """\
in.txt:1:1: error: the name '__f__' is reserved (double underscores)
  __f__ = x + 1
  ^^^^^
  choose another name, such as x or w1""",
        "dunder-stage-name",
    ),
    case(
        "f = lambda x: x\n",
        f"""\
in.txt:1:5: error: a lambda expression is not allowed
  f = lambda x: x
      ^^^^^^^^^^^
  {HINT_ANY}""",
        "lambda",
    ),
    case(
        "f = x[0] + 1\n",
        """\
in.txt:1:5: error: '[]' (subscript) needs the numpy backend (--backend numpy)
  f = x[0] + 1
      ^^^^""",
        "subscript",
    ),
    case(
        "f = x if y else z\n",
        """\
in.txt:1:5: error: a conditional expression is not allowed
  f = x if y else z
      ^^^^^^^^^^^^^
  write where(cond, a, b): e.g. where(x > 0, x, 0)""",
        "conditional",
    ),
    case(
        "f = x < y\n",
        """\
in.txt:1:1: error: the output 'f' is a mask (a comparison): it has no gradient
  f = x < y
  ^^^^^^^^^
  use it in where(mask, a, b), or as a number: 1.0 * mask""",
        "comparison",
    ),
    case(
        "f = x and y\n",
        """\
in.txt:1:5: error: a boolean operation ('and', 'or') is not allowed
  f = x and y
      ^^^^^^^
  join masks with & and |: (x > 0) & (y < 1)""",
        "and",
    ),
    case(
        "f = f'{x}'\n",
        f"""\
in.txt:1:5: error: an f-string is not allowed
  f = f'{{x}}'
      ^^^^^^
  {HINT_ANY}""",
        "f-string",
    ),
    case(
        "f = (y := x) + 1\n",
        f"""\
in.txt:1:6: error: an assignment expression ':=' is not allowed
  f = (y := x) + 1
       ^^^^^^
  {HINT_ANY}""",
        "walrus",
    ),
    case(
        "f = [x]\n",
        f"""\
in.txt:1:5: error: a list is not allowed
  f = [x]
      ^^^
  {HINT_ANY}""",
        "list",
    ),
]

LITERALS = [
    case(
        "f = 'abc' * x\n",
        f"""\
in.txt:1:5: error: a string is not allowed here
  f = 'abc' * x
      ^^^^^
  {HINT_NUMBER}""",
        "string",
    ),
    case(
        "f = b'abc' * x\n",
        f"""\
in.txt:1:5: error: bytes is not allowed here
  f = b'abc' * x
      ^^^^^^
  {HINT_NUMBER}""",
        "bytes",
    ),
    case(
        "f = 2j * x\n",
        f"""\
in.txt:1:5: error: a complex number is not allowed here
  f = 2j * x
      ^^
  {HINT_NUMBER}""",
        "complex",
    ),
    case(
        "f = True * x\n",
        f"""\
in.txt:1:5: error: True is not allowed here
  f = True * x
      ^^^^
  {HINT_NUMBER}""",
        "true",
    ),
    case(
        "f = x + None\n",
        f"""\
in.txt:1:9: error: None is not allowed here
  f = x + None
          ^^^^
  {HINT_NUMBER}""",
        "none",
    ),
]

OPERATORS = (
    [
        case(
            f"f = x {op} y\n",
            f"""\
in.txt:1:5: error: the operator '{op}' is not allowed
  f = x {op} y
      {"^" * (4 + len(op))}
  {HINT_OPS}""",
            f"operator-{name}",
        )
        for op, name in (
            ("//", "floordiv"),
            ("%", "mod"),
            ("^", "xor"),
            ("<<", "lshift"),
            (">>", "rshift"),
        )
    ]
    + [
        case(
            "f = x @ y\n",
            """\
in.txt:1:5: error: '@' (matmul) needs the numpy backend (--backend numpy)
  f = x @ y
      ^^^^^""",
            "operator-matmul",
        ),
        case(
            "f = not x\n",
            """\
in.txt:1:5: error: the operator 'not' is not allowed
  f = not x
      ^^^^^
  negate a mask with ~: ~(x > 0)""",
            "not",
        ),
        *(
            case(
                text + "\n",
                f"""\
in.txt:1:5: error: {what} must be a mask, not a number
  {text}
      {"^" * (len(text) - 4)}
  a mask is a comparison (x > 0) or masks joined with & | ~""",
                name,
            )
            for text, what, name in (
                ("f = ~x", "the operand of ~", "invert"),
                ("f = x | y", "the operands of |", "operator-or"),
                ("f = (x > 0) & y", "the operands of &", "operator-and"),
                ("f = where(x, y, z)", "where's condition", "where-number"),
            )
        ),
        case(
            "f = 0 < x < 1\n",
            """\
in.txt:1:5: error: a chained comparison is not allowed
  f = 0 < x < 1
      ^^^^^^^^^
  join two masks: (a < b) & (b < c)""",
            "chained-comparison",
        ),
        case(
            "f = where(~(2 > 1), x, y)\n",
            """\
in.txt:1:13: error: this mask is a constant: it compares numbers only
  f = where(~(2 > 1), x, y)
              ^^^^^
  compare a value that depends on an input, or write the branch it takes""",
            "constant-mask",
        ),
        case(
            "f = x in y\n",
            """\
in.txt:1:5: error: this comparison is not allowed
  f = x in y
      ^^^^^^
  compare with < <= > >= == !=""",
            "comparison-in",
        ),
        case(
            "m = x > 0\nf, g = m, x\n",
            """\
in.txt:2:1: error: the output 'f' is a mask (a comparison): it has no gradient
  f, g = m, x
  ^^^^^^^^^^^
  use it in where(mask, a, b), or as a number: 1.0 * mask""",
            "mask-output",
        ),
    ]
)

CALLS = [
    case(
        "f = sigmod(w*x + b)\n",
        f"""\
in.txt:1:5: error: unknown function 'sigmod'
  f = sigmod(w*x + b)
      ^^^^^^
  known: {KNOWN} (did you mean 'sigmoid' or 'sign'?)""",
        "unknown-function-close-match",
    ),
    case(
        "f = exp(x, y)\n",
        """\
in.txt:1:5: error: exp() takes 1 argument, got 2
  f = exp(x, y)
      ^^^^^^^^^""",
        "arity-exp",
    ),
    case(
        "f = max(x)\n",
        """\
in.txt:1:5: error: max() of one operand takes every element of an array, which needs the \
numpy backend (--backend numpy); of numbers, max() takes 2 or more
  f = max(x)
      ^^^^^^""",
        "arity-max",
    ),
    case(
        "f = exp(x=1)\n",
        """\
in.txt:1:11: error: exp() takes no keyword argument x
  f = exp(x=1)
            ^""",
        "keyword-argument",
    ),
    case(
        "f = max(*xs)\n",
        """\
in.txt:1:9: error: starred arguments are not allowed
  f = max(*xs)
          ^^^""",
        "starred-argument",
    ),
    case(
        "f = exp + x\n",
        """\
in.txt:1:5: error: 'exp' is a function
  f = exp + x
      ^^^
  call it: exp(...)""",
        "function-not-called",
    ),
    case(
        "f = exp(x)(y)\n",
        """\
in.txt:1:5: error: only known functions can be called
  f = exp(x)(y)
      ^^^^^^""",
        "call-of-call",
    ),
]

SYNTAX = [
    case(
        "f = x +\n",
        """\
in.txt:1:8: error: invalid syntax
  f = x +
         ^""",
        "syntax-error",
    ),
    case(
        "a = (x + y\nf = a * 2\n",
        """\
in.txt:1:5: error: invalid syntax: '(' was never closed
  a = (x + y
      ^""",
        "unclosed-parenthesis",
    ),
    case(
        "f = θθθ + (x\n",
        """\
in.txt:1:11: error: invalid syntax: '(' was never closed
  f = θθθ + (x
            ^""",
        "syntax-column-after-non-ascii",
    ),
    case(
        "",
        """\
in.txt: error: the input is empty: there is nothing to differentiate
  write an expression, e.g. f = (x + y) * z""",
        "empty-file",
    ),
    case(
        "# only a comment\n\n# and another\n",
        """\
in.txt: error: the input is empty: there is nothing to differentiate
  write an expression, e.g. f = (x + y) * z""",
        "only-comments",
    ),
    case(
        "x: scalar\ny: scalar\n",
        """\
in.txt: error: the input declares inputs but computes nothing
  add an expression, e.g. f = x * y""",
        "only-declarations",
    ),
]

NAMES = [
    case(
        "a = b * x\nb = x + 1\nf = a + b\n",
        """\
in.txt:1:5: error: 'b' is used before it is defined (line 2)
  a = b * x
      ^
  stages must be defined before they are used""",
        "stage-used-before-definition",
    ),
    case(
        "a = x + 1\nx = a * 2\n",
        """\
in.txt:1:5: error: 'x' is used before it is defined (line 2)
  a = x + 1
      ^
  stages must be defined before they are used""",
        "free-name-assigned-later",
    ),
    case(
        "x: scalar\nx = 2 * y\n",
        """\
in.txt:2:1: error: assignment to input 'x'
  x = 2 * y
  ^
  'x' is an input (a free name); give this stage another name""",
        "assignment-to-declared-input",
    ),
    case(
        "a = x + 1\na = x * 2\nf = a + 1\n",
        """\
in.txt:2:1: error: duplicate stage name 'a'
  a = x * 2
  ^
  'a' is already defined on line 1; each stage needs its own name""",
        "duplicate-stage",
    ),
    case(
        "t = x * y\ng = t\nf = g + 1\n",
        """\
in.txt:2:5: error: 'g' only renames 't'; a second name for a value is allowed only for an output
  g = t
      ^
  use 't' where 'g' is used, or make 'g' an output: end the file with a tuple of outputs, e.g. f, g""",
        "alias-of-stage",
    ),
    case(
        "g = +x\nf = g * y\n",
        """\
in.txt:1:5: error: 'g' only renames 'x'; a second name for a value is allowed only for an output
  g = +x
      ^^
  use 'x' where 'g' is used, or make 'g' an output: end the file with a tuple of outputs, e.g. f, g""",
        "alias-of-input",
    ),
    case(
        "a = 2 * 3\nf = a * x\n",
        """\
in.txt:1:5: error: this stage is a constant; it does not depend on any input
  a = 2 * 3
      ^^^^^
  write the number where it is used""",
        "constant-stage",
    ),
    case(
        "f = 0.5 / 1e-400\n",
        """\
in.txt:1:5: error: this constant is not a finite real number
  f = 0.5 / 1e-400
      ^^^^^^^^^^^^
  the operation has no real value here (e.g. log(0), sqrt(-1), 1/0)""",
        "constant-divided-by-a-literal-that-underflows",
    ),
    case(
        "exp = x + 1\n",
        """\
in.txt:1:1: error: 'exp' is a function name
  exp = x + 1
  ^^^
  choose another name, such as x or w1""",
        "stage-named-like-function",
    ),
    case(
        "pi = x + 1\n",
        """\
in.txt:1:1: error: 'pi' is a constant
  pi = x + 1
  ^^
  choose another name, such as x or w1""",
        "stage-named-like-constant",
    ),
]

STATEMENTS = [
    case(
        "f = x + 1\nf += 1\n",
        """\
in.txt:2:1: error: augmented assignment is not allowed
  f += 1
  ^^^^^^
  every stage gets a new name: t2 = t1 + x""",
        "augmented-assignment",
    ),
    case(
        "a, b = x, y\nf = a * b\n",
        """\
in.txt:1:1: error: a tuple assignment names the outputs; it must be the last statement
  a, b = x, y
  ^^^^
  assign one stage a line (a = ...), and end the file with a, b = e1, e2 or a, b""",
        "tuple-target",
    ),
    case(
        "a = b = x + 1\n",
        """\
in.txt:1:1: error: assign one stage at a time
  a = b = x + 1
  ^^^^^^^^^^^^^
  write a = ... and b = ... on separate lines""",
        "multiple-targets",
    ),
    case(
        "import math\nf = x + 1\n",
        f"""\
in.txt:1:1: error: an import is not allowed
  import math
  ^^^^^^^^^^^
  {HINT_FILE}""",
        "import",
    ),
    case(
        "from os import system\nf = x + 1\n",
        f"""\
in.txt:1:1: error: an import is not allowed
  from os import system
  ^^^^^^^^^^^^^^^^^^^^^
  {HINT_FILE}""",
        "from-import",
    ),
    case(
        "def f(x):\n    return x\n",
        f"""\
in.txt:1:1: error: a function definition is not allowed
  def f(x):
  ^^^^^^^^^
  {HINT_FILE}""",
        "def",
    ),
    case(
        "for i in x:\n    pass\n",
        f"""\
in.txt:1:1: error: a loop is not allowed
  for i in x:
  ^^^^^^^^^^^
  {HINT_FILE}""",
        "for",
    ),
    case(
        "x + 1\nf = x * 2\n",
        """\
in.txt:1:1: error: a bare expression must be the last statement
  x + 1
  ^^^^^
  name it (t = ...) or move it to the end""",
        "bare-expression-not-last",
    ),
]

DECLARATIONS = [
    case(
        "f1 = x + 1\nx: scalar\nf = f1 * 2\n",
        """\
in.txt:2:1: error: 'x' is declared after its first use on line 1
  x: scalar
  ^
  put declarations at the top of the file""",
        "declaration-after-use",
    ),
    case(
        "x: scalar\nx: scalar\nf = x + 1\n",
        """\
in.txt:2:1: error: input 'x' is declared twice
  x: scalar
  ^""",
        "declared-twice",
    ),
    case(
        "x: matrix(3, 3)\nf = x + 1\n",
        """\
in.txt:1:1: error: 'x' is declared as an array of shape (3, 3): arrays need the numpy backend \
(--backend numpy)
  x: matrix(3, 3)
  ^""",
        "matrix-declaration",
    ),
    case(
        "x: tensor\nf = x + 1\n",
        """\
in.txt:1:4: error: unknown input kind
  x: tensor
     ^^^^^^
  declare x: scalar, v: vector(n), W: matrix(n, m), T: array(b, n, m) or y: index(n) (integers \
for subscripts)""",
        "unknown-declaration-kind",
    ),
    case(
        "x: scalar = 3\nf = x + 1\n",
        """\
in.txt:1:13: error: a declaration cannot give 'x' a value
  x: scalar = 3
              ^
  inputs are arguments of the generated functions; write x: scalar""",
        "declaration-with-value",
    ),
    case(
        "f = x + 1\ny: scalar\n",
        """\
in.txt:2:1: error: the last statement must compute the output, not declare an input
  y: scalar
  ^^^^^^^^^""",
        "declaration-last",
    ),
]

# shapes of arrays (--backend numpy): @ of stacks, swapaxes, .T and .mT, array()
ARRAYS = [
    case(
        "A: array(2, 3, 4)\nB: array(3, 4, 5)\nL = sum(A @ B)\n",
        """\
in.txt:3:9: error: shapes (2, 3, 4) @ (3, 4, 5): the batch axes (2,) and (3,) do not broadcast
  L = sum(A @ B)
          ^^^^^""",
        "matmul-batch-axes",
    ),
    case(
        "A: array(2, 3, 4)\nB: array(2, 3, 4)\nL = sum(A @ B)\n",
        """\
in.txt:3:9: error: shapes (2, 3, 4) @ (2, 3, 4) do not fit: 4 columns against 3 rows
  L = sum(A @ B)
          ^^^^^""",
        "matmul-batched-inner-size",
    ),
    case(
        "A: matrix(2, 3)\nv: vector(2)\nL = sum(A @ v)\n",
        """\
in.txt:3:9: error: shapes (2, 3) @ (2,) do not fit: 3 columns against 2 elements
  L = sum(A @ v)
          ^^^^^""",
        "matvec-size",
    ),
    case(
        "v: vector(4)\nB: array(2, 4, 5)\nL = sum(v @ B)\n",
        """\
in.txt:3:9: error: @ of a vector and an array of 3 axes is not supported; got shapes (4,) and \
(2, 4, 5) (write the vector as an array with an axis of size 1)
  L = sum(v @ B)
          ^^^^^""",
        "matmul-vector-stack",
    ),
    case(
        "u: vector(3)\nv: vector(2)\nL = dot(u, v)\n",
        """\
in.txt:3:5: error: dot of shapes (3,) and (2,): 3 elements against 2
  L = dot(u, v)
      ^^^^^^^^^""",
        "dot-sizes",
    ),
    case(
        "A: array(2, 3, 4)\nL = sum(swapaxes(A, 1, 3))\n",
        """\
in.txt:2:9: error: axis 3 is out of range for shape (2, 3, 4)
  L = sum(swapaxes(A, 1, 3))
          ^^^^^^^^^^^^^^^^^""",
        "swapaxes-axis",
    ),
    case(
        "A: array(2, 3, 4)\nL = sum(swapaxes(A, 1.5, 0))\n",
        """\
in.txt:2:21: error: swapaxes()'s axis1 is an integer, e.g. swapaxes(x, 1, 2)
  L = sum(swapaxes(A, 1.5, 0))
                      ^^^""",
        "swapaxes-float-axis",
    ),
    case(
        "A: array(2, 3, 4)\nL = sum(swapaxes(A, 1))\n",
        """\
in.txt:2:9: error: swapaxes() takes 3 arguments, got 2
  L = sum(swapaxes(A, 1))
          ^^^^^^^^^^^^^^
  swapaxes(a, axis1, axis2)""",
        "swapaxes-arity",
    ),
    case(
        "A: array()\nL = sum(A)\n",
        """\
in.txt:1:4: error: array() takes one or more sizes
  A: array()
     ^^^^^^^
  e.g. array(b, n, d)""",
        "array-no-sizes",
    ),
    case(
        "v: vector(3)\nL = sum(v.mT)\n",
        """\
in.txt:2:9: error: .mT transposes the last two axes of an array of 2 or more axes; got shape (3,)
  L = sum(v.mT)
          ^^^^""",
        "mT-of-a-vector",
    ),
    case(
        "v: vector(3)\nL = sum(v.T)\n",
        """\
in.txt:2:9: error: .T transposes an array of 2 or more axes; got shape (3,)
  L = sum(v.T)
          ^^^""",
        "T-of-a-vector",
    ),
]

_BIG = "9" * 400
NUMBERS = [
    case(
        "f = 1e999 * x\n",
        f"""\
in.txt:1:5: error: this number overflows to infinity
  f = 1e999 * x
      ^^^^^
  {HINT_FLOAT}""",
        "float-literal-overflows",
    ),
    case(
        f"f = {_BIG} * x\n",
        f"""\
in.txt:1:5: error: this integer is too large
  f = {_BIG[:116]}...
      {"^" * 116}
  {HINT_FLOAT}""",
        "integer-400-digits",
    ),
    case(
        "f = x ** 10**100\n",
        """\
in.txt:1:5: error: the exponent 1e+100 is too large
  f = x ** 10**100
      ^^^^^^^^^^^^
  constant exponents are limited to ±1,000,000; beyond that x**n is 0 or inf for almost every x""",
        "exponent-googol",
    ),
    case(
        "f = x ** (10**6 + 1)\n",
        """\
in.txt:1:5: error: the exponent 1000001 is too large
  f = x ** (10**6 + 1)
      ^^^^^^^^^^^^^^^^
  constant exponents are limited to ±1,000,000; beyond that x**n is 0 or inf for almost every x""",
        "exponent-just-over-limit",
    ),
    case(
        "f = 10**10**10 * x\n",
        """\
in.txt:1:5: error: this constant is too large to compute
  f = 10**10**10 * x
      ^^^^^^^^^^
  constants must fit in a float (about 1.8e308)""",
        "power-tower",
    ),
    case(
        "f = x * 10**-400\n",
        """\
in.txt:1:9: error: this constant is too small for a float (it would be 0.0)
  f = x * 10**-400
          ^^^^^^^^
  the smallest positive float is about 4.9e-324""",
        "constant-underflow",
    ),
    case(
        "f = 10**308 * 10 * x\n",
        """\
in.txt:1:5: error: this constant is too large for a float
  f = 10**308 * 10 * x
      ^^^^^^^^^^^^
  constants must fit in a float (about 1.8e308)""",
        "constant-product-overflows",
    ),
    case(
        "f = x / 0\n",
        """\
in.txt:1:5: error: division by zero
  f = x / 0
      ^^^^^""",
        "divide-by-zero",
    ),
    case(
        "f = x / 0.0\n",
        """\
in.txt:1:5: error: division by zero
  f = x / 0.0
      ^^^^^^^""",
        "divide-by-float-zero",
    ),
    case(
        "f = log(0) * x\n",
        """\
in.txt:1:5: error: this constant is not a finite real number
  f = log(0) * x
      ^^^^^^
  the operation has no real value here (e.g. log(0), sqrt(-1), 1/0)""",
        "log-zero",
    ),
    case(
        "f = sqrt(-1) * x\n",
        """\
in.txt:1:5: error: this constant is not a finite real number
  f = sqrt(-1) * x
      ^^^^^^^^
  the operation has no real value here (e.g. log(0), sqrt(-1), 1/0)""",
        "sqrt-minus-one",
    ),
]

ENCODING = [
    case(
        b"x: scalar\nf = x + \xff\xfe y\n",
        """\
in.txt:2:9: error: not UTF-8 text: byte 0xff
  f = x + \ufffd\ufffd y
          ^
  save the file as UTF-8""",
        "not-utf8",
    ),
    case(
        "f = θ + ".encode() + b"\xe9 * y\n",
        """\
in.txt:1:9: error: not UTF-8 text: byte 0xe9
  f = θ + \ufffd * y
          ^
  save the file as UTF-8""",
        "not-utf8-after-non-ascii",
    ),
    case(
        b"f = x\x00 + 1\n",
        """\
in.txt: error: this is a binary file (it contains NUL bytes), not an expression file""",
        "nul-bytes",
    ),
    case(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        """\
in.txt: error: this is a binary file (it contains NUL bytes), not an expression file""",
        "binary-file",
    ),
    case(
        "θ: scalar\nf = θ + sigmod(θ)\n",
        f"""\
in.txt:2:9: error: unknown function 'sigmod'
  f = θ + sigmod(θ)
          ^^^^^^
  known: {KNOWN} (did you mean 'sigmoid' or 'sign'?)""",
        "column-after-theta",
    ),
    case(
        "f = θ * x.y\n",
        """\
in.txt:1:9: error: attribute access is not allowed
  f = θ * x.y
          ^^^
  only plain names, numbers and calls of known functions are allowed""",
        "attribute-after-theta",
    ),
    case(
        "# ünïcödé comment\nf = 'θ' + 1 * x\n",
        f"""\
in.txt:2:5: error: a string is not allowed here
  f = 'θ' + 1 * x
      ^^^
  {HINT_NUMBER}""",
        "non-ascii-string",
    ),
]

TABLE = (
    SAFETY + LITERALS + OPERATORS + CALLS + SYNTAX + NAMES + STATEMENTS + DECLARATIONS + NUMBERS + ENCODING
)


# -- running stagegen --------------------------------------------------------------


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The test's working folder, holding an OUT.py that no failed run may touch."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "OUT.py").write_text(OUT_TEXT, encoding="utf-8")
    return tmp_path


def write_input(folder: Path, content) -> None:
    path = folder / IN
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def assert_reported(result, expected: str, folder: Path) -> None:
    """The whole message, status 2, empty stdout; OUT.py as it was and no temporary file."""
    status, out, err = result
    assert "Traceback" not in err
    assert out == ""
    assert err == expected + "\n"
    assert status == 2
    lines = expected.split("\n")
    assert len(lines) <= 4 and all(line.startswith("  ") for line in lines[1:])
    assert (folder / "OUT.py").read_text(encoding="utf-8") == OUT_TEXT
    assert not list(folder.rglob(".stagegen-*")), "a temporary output file was left behind"


# -- the tests -------------------------------------------------------------------


@pytest.mark.parametrize("content, expected", TABLE)
def test_input_error(folder, capsys, content, expected):
    write_input(folder, content)
    assert_reported(run_in_process([IN, "-o", "OUT.py"], capsys), expected, folder)
    assert not (folder / "canary").exists()


@pytest.mark.parametrize("content, expected", ARRAYS)
def test_array_shape_error(folder, capsys, content, expected):
    write_input(folder, content)
    assert_reported(run_in_process([IN, "--backend", "numpy", "-o", "OUT.py"], capsys), expected, folder)


def test_nothing_in_the_input_is_executed(folder):
    """The real command, in its own process: the call in the file never runs."""
    write_input(folder, "f = __import__('os').system('touch canary')\n")
    assert_reported(run_subprocess([IN, "-o", "OUT.py"], folder), SAFETY[0].values[1], folder)
    assert not (folder / "canary").exists()


def test_error_in_a_subprocess(folder):
    content, expected = CALLS[0].values
    write_input(folder, content)
    assert_reported(run_subprocess([IN, "-o", "OUT.py"], folder), expected, folder)


def test_error_in_standard_input(folder):
    expected = CALLS[0].values[1].replace("in.txt:", "<stdin>:", 1)
    status, out, err = run_subprocess(["-", "-o", "OUT.py"], folder, stdin=b"f = sigmod(w*x + b)\n")
    assert_reported((status, out, err), expected, folder)


# -- statements too deep for Python's parser: located at the statement, and fast ---


def _deep_cases():
    # a source line longer than 120 characters is shown cut around the column
    parens = "f = " + "(" * 1000 + "x" + ")" * 1000
    negations = "f = " + "-(" * 5000 + "x" + ")" * 5000 + " + a"
    minuses = "b = " + "-" * 5000 + "x"
    chain = "b = " + "+".join(["x"] * 5000)
    return [
        pytest.param(
            f"{parens}\n",
            f"""\
in.txt:1:205: error: invalid syntax: too many nested parentheses
  ...{parens[164:284]}...
  {" " * 43}^
  {HINT_STAGING}""",
            id="1000-parentheses",
        ),
        pytest.param(
            f"a = x * 2\n{negations}\n",
            f"""\
in.txt:2:406: error: invalid syntax: too many nested parentheses
  ...{negations[365:485]}...
  {" " * 43}^
  {HINT_STAGING}""",
            id="5000-negations-in-parentheses",
        ),
        pytest.param(
            f"a = x * 2\n{minuses}\nf = a + b\n",
            f"""\
in.txt:2:1: error: this statement is nested too deeply for Python's parser
  {minuses[:120]}...
  ^
  {HINT_STAGING}""",
            id="5000-unary-minus",
        ),
        pytest.param(
            f"a = x * 2\n{chain}\nf = a + b\n",
            f"""\
in.txt:2:1: error: this statement is nested too deeply for Python's parser
  {chain[:120]}...
  ^
  {HINT_STAGING}""",
            id="5000-term-sum",
        ),
    ]


DEEP = _deep_cases()


@pytest.mark.parametrize("content, expected", DEEP)
def test_statement_too_deep(folder, capsys, content, expected):
    write_input(folder, content)
    assert_reported(run_in_process([IN, "-o", "OUT.py"], capsys), expected, folder)


def test_statement_too_deep_in_a_subprocess(folder):
    """A fresh interpreter (default recursion limit, no pytest frames on the stack);
    run_subprocess bounds it with a timeout."""
    content, expected = DEEP[2].values
    write_input(folder, content)
    assert_reported(run_subprocess([IN, "-o", "OUT.py"], folder), expected, folder)


# -- files and options ---------------------------------------------------------------

USAGE = [
    pytest.param(["nope.txt"], "nope.txt: error: no such file", id="missing-file"),
    pytest.param(["adir"], "adir: error: is a directory, not an expression file", id="directory"),
    pytest.param(
        ["in.txt/x"], "in.txt/x: error: cannot read the file: Not a directory", id="path-under-a-file"
    ),
    pytest.param(
        [IN, "--wrt", "z"],
        "stagegen: error: --wrt names 'z', which is not an input; the inputs are x, y",
        id="wrt-not-an-input",
    ),
    pytest.param(
        [IN, "--wrt", "f"],
        "stagegen: error: --wrt names 'f', which is not an input; the inputs are x, y",
        id="wrt-names-the-output",
    ),
    pytest.param(
        [IN, "--wrt", "x,z,w"],
        "stagegen: error: --wrt names 'z', 'w', which are not inputs; the inputs are x, y",
        id="wrt-two-non-inputs",
    ),
    pytest.param(
        [IN, "--wrt", ","],
        "stagegen: error: --wrt needs at least one input name, e.g. --wrt x,y",
        id="wrt-empty",
    ),
    pytest.param(
        [IN, "--frobnicate"],
        """\
stagegen: error: unrecognized arguments: --frobnicate
  (see stagegen --help)""",
        id="unknown-option",
    ),
    pytest.param(
        [IN, "--style", "fancy"],
        """\
stagegen: error: argument --style: invalid choice: 'fancy' (choose from 'seed', 'compact')
  (see stagegen --help)""",
        id="bad-choice",
    ),
    pytest.param(
        [],
        """\
stagegen: error: the following arguments are required: FILE
  (see stagegen --help)""",
        id="no-file",
    ),
    pytest.param([IN, "--points", "0"], "stagegen: error: --points must be at least 1", id="points-zero"),
    pytest.param(
        [IN, "-o", IN],
        "stagegen: error: the output file is the input file; choose another -o",
        id="output-is-input",
    ),
    pytest.param(
        [IN, "-o", "nodir/out.py"],
        "stagegen: error: cannot write nodir/out.py: the folder {folder}/nodir does not exist",
        id="output-folder-missing",
    ),
    pytest.param(
        [IN, "-o", "adir"],
        "stagegen: error: cannot write adir: it is a directory",
        id="output-is-a-directory",
    ),
]


@pytest.mark.parametrize("argv, expected", USAGE)
def test_usage_error(folder, capsys, argv, expected):
    write_input(folder, "f = x * y\n")
    (folder / "adir").mkdir()
    argv = argv if "-o" in argv else [*argv, "-o", "OUT.py"]
    assert_reported(run_in_process(argv, capsys), expected.format(folder=folder), folder)
    assert not (folder / "adir").exists() or not any((folder / "adir").iterdir())
    assert not (folder / "nodir").exists()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a file whatever its mode"
)
def test_unreadable_file(folder, capsys):
    write_input(folder, "f = x * y\n")
    (folder / IN).chmod(0)
    try:
        assert_reported(
            run_in_process([IN, "-o", "OUT.py"], capsys),
            "in.txt: error: permission denied: cannot read the file",
            folder,
        )
    finally:
        (folder / IN).chmod(0o644)


def test_missing_file_in_a_subprocess(folder):
    assert_reported(
        run_subprocess(["nope.txt", "-o", "OUT.py"], folder), "nope.txt: error: no such file", folder
    )


def test_unknown_option_in_a_subprocess(folder):
    write_input(folder, "f = x * y\n")
    assert_reported(run_subprocess([IN, "--frobnicate", "-o", "OUT.py"], folder), USAGE[7].values[1], folder)


def test_a_math_module_given_an_array_names_it_and_the_backend_for_arrays():
    """Detected on the error path only (in _locate): a module of floats given a
    NumPy array says which input and which backend takes arrays."""
    np = pytest.importorskip("numpy")
    import stagegen

    module = stagegen.load("x: scalar\ny: scalar\nf = exp(x) * sin(y)\n")
    for args, name, shape in [((np.ones(3), 1.0), "x", (3,)), ((2.0, np.ones((2, 2))), "y", (2, 2))]:
        for call in (module.value_and_grad, module.forward):
            with pytest.raises(TypeError) as err:
                call(*args)
            message = str(err.value)
            assert f"{name} is an array of shape {shape}" in message and "--backend numpy" in message
    # a 0-d array is a number: it computes as one
    value, _ = module.value_and_grad(np.array(1.0), 2.0)
    assert value == pytest.approx(np.exp(1.0) * np.sin(2.0))

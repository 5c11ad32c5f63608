"""Token-level diagnosis of a line Python's parser refused.

`ast` reports some refusals with a message that names neither the cause in
stagegen's terms nor the place (a keyword used as a name is "invalid syntax";
an integer literal of more than 4,300 digits is reported at column 1). These
helpers look at the tokens of the line to find the place and the cause;
parse.py turns the answer into a located error. Nothing here raises.
"""

from __future__ import annotations

import io
import keyword
import tokenize

_OPENS = {"=", "(", ",", "+", "-", "*", "/", "**", "@", "%", "//"}
_CLOSES = {"=", ":", ")", ",", "+", "-", "*", "/", "**", "@", "%", "//"}


MAX_LINE = 100_000  # a longer line is not diagnosed token by token (Python's tokenizer: ~1 s a MB)


def _tokens(line: str) -> list[tokenize.TokenInfo]:
    found = []
    if len(line) > MAX_LINE:
        return found
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if tok.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
                found.append(tok)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def keyword_as_name(line: str) -> tuple[str, int] | None:
    """A hard keyword standing where a name stands in `line`, as (keyword,
    1-based character column), or None.

    It stands where a name stands when it starts the line and ``=`` or ``:``
    follows (a stage or a declaration), or when an operator, ``(``, ``,`` or
    ``=`` is on its left and an operator, ``)``, ``,`` or the end of the line
    on its right. ``lambda x: ...`` and ``x if c else y`` never match.
    """
    tokens = _tokens(line)
    for k, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or not keyword.iskeyword(tok.string):
            continue
        left = tokens[k - 1].string if k > 0 else None
        right = tokens[k + 1].string if k + 1 < len(tokens) else None
        if (left is None and right in ("=", ":")) or (left in _OPENS and (right is None or right in _CLOSES)):
            return tok.string, tok.start[1] + 1
    return None


def longest_number(line: str) -> tuple[int, int, int] | None:
    """The longest numeric literal of `line`: (1-based column, end column, digits)."""
    numbers = [t for t in _tokens(line) if t.type == tokenize.NUMBER]
    if not numbers:
        return None
    tok = max(numbers, key=lambda t: len(t.string))
    return tok.start[1] + 1, tok.end[1] + 1, sum(c.isdigit() for c in tok.string)

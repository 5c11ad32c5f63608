"""black for one statement at a time, memoised by the statement's shape.

A generated module repeats a few statement shapes thousands of times with
different names (``t105 = 1.0 / (1.0 + math.exp(-t104)) if ...  # (123)``), and
black's layout of a statement depends on its tokens and their widths, not on
which identifiers they spell. So each identifier is replaced by a placeholder of
the same length and each comment by one of the same length, black formats that
shape once, and the names and comments are put back into its output by
position. Text that is not ASCII (where black measures display width, not
length) or that has more distinct names than placeholders goes to black as it
is. black stays the formatter; this only avoids asking it the same question
twice.
"""

from __future__ import annotations

import keyword
import re
import string

_LETTERS = string.ascii_letters
# Numbers first, so that the e of 1e-5 or the x of 0xff is not read as a name.
_TOKEN = re.compile(
    r"(?P<number>\.?\d[\w.]*)|(?P<string>\"[^\"\n]*\"|'[^'\n]*')|(?P<comment>#[^\n]*)|(?P<name>[A-Za-z_]\w*)"
)


def format_statement(source: str, mode, memo: dict) -> str:
    """``black.format_str(source, mode=mode)``, memoised in `memo` (one per
    module) by the shape of `source`."""
    import black

    shaped = _shape(source) if source.isascii() else None
    if shaped is None:
        return black.format_str(source, mode=mode)
    text, names, comments = shaped
    if text not in memo:
        memo[text] = black.format_str(text, mode=mode)
    restored = _restore(memo[text], names, comments)
    return restored if restored is not None else black.format_str(source, mode=mode)


def _placeholder(k: int, length: int) -> str | None:
    word = ""
    while True:
        word = _LETTERS[k % len(_LETTERS)] + word
        k //= len(_LETTERS)
        if k == 0:
            break
    if len(word) > length:
        return None
    return word + "0" * (length - len(word))


def _shape(source: str) -> tuple[str, dict[str, str], list[str]] | None:
    if "\\" in source:
        return None  # escapes in strings: not worth a tokenizer here
    names: dict[str, str] = {}  # original -> placeholder
    comments: list[str] = []

    def swap(m: re.Match) -> str:
        word = m.group("name")
        if word is not None and not keyword.iskeyword(word):
            if word not in names:
                names[word] = _placeholder(len(names), len(word)) or word
            return names[word]
        comment = m.group("comment")
        if comment is not None:
            comments.append(comment)
            return "# " + "c" * (len(comment) - 2)
        return m.group(0)

    shaped = _TOKEN.sub(swap, source)
    marks = list(names.values())
    if len(set(marks)) != len(marks) or any(keyword.iskeyword(w) or keyword.issoftkeyword(w) for w in marks):
        return None  # too many short names for short placeholders
    if any(not c.startswith("# ") or len(c) < 3 for c in comments):
        return None  # black would respace it
    return shaped, {v: k for k, v in names.items()}, comments


def _restore(formatted: str, names: dict[str, str], comments: list[str]) -> str | None:
    pending = list(reversed(comments))
    failed = []

    def swap(m: re.Match) -> str:
        word = m.group("name")
        if word is not None:
            return names.get(word, word)
        if m.group("comment") is not None:
            if not pending or len(pending[-1]) != len(m.group(0)):
                failed.append(m.group(0))
                return m.group(0)
            return pending.pop()
        return m.group(0)

    restored = _TOKEN.sub(swap, formatted)
    return None if failed or pending else restored

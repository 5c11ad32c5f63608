"""Errors stagegen reports to its users, and how they are rendered.

Owns `Span` (a place in an input file), the error hierarchy and the one
rendering of a diagnostic: ``FILE:LINE:COL: error: ...`` followed by at most
three indented lines (the source line, a caret, a hint). Lines and columns are
counted in characters from 1. Nothing here knows about gates or passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NEWLINE = re.compile(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)")


def python_lines(text: str, keepends: bool = False) -> list[str]:
    """`text`'s lines as Python counts them: ended by \\n, \\r\\n or \\r only
    (`str.splitlines` also splits at \\x0c, \\x1c-\\x1e, \\x85 and U+2028/9,
    which Python's tokenizer reads as ordinary characters)."""
    lines = [line for line in _NEWLINE.split(text) if line]
    return lines if keepends else [line.rstrip("\r\n") for line in lines]


@dataclass(frozen=True)
class Span:
    """A range of characters on one line of an input file (1-based)."""

    file: str
    line: int
    col: int
    end_col: int
    text: str = ""  # the whole source line, for the caret display

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class StagegenError(Exception):
    """Base class of every error stagegen reports to a user (exit status 2)."""

    def __init__(self, message: str, span: Span | None = None, hint: str = "", file: str = ""):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.file = file

    def render(self) -> str:
        """The diagnostic as printed on stderr, without a trailing newline."""
        if self.span is None:
            lines = [f"{self.file or 'stagegen'}: error: {self.message}"]
        else:
            lines = [f"{self.span}: error: {self.message}"]
            if self.span.text:
                source, col, end = _window(self.span.text.rstrip("\n"), self.span.col, self.span.end_col)
                width = max(1, min(end, len(source) + 1) - col)
                lines.append("  " + source)
                # the caret lines up under tabs too
                pad = "".join(c if c == "\t" else " " for c in source[: col - 1])
                lines.append("  " + pad + "^" * width)
        if self.hint:
            lines.append("  " + self.hint)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


SHOWN = 120  # characters of a source line shown under a diagnostic; a longer line is cut
_CONTEXT = 40  # characters shown before the reported column of a cut line


def _window(source: str, col: int, end: int) -> tuple[str, int, int]:
    """The part of a long source line around columns col..end (1-based), cut
    with '...' marks, and the columns within it: a one-line file of megabytes
    gives a diagnostic of a few lines, not two copies of the file."""
    if len(source) <= SHOWN:
        return source, col, end
    start = max(0, min(col - 1 - _CONTEXT, len(source) - SHOWN))
    stop = min(len(source), start + SHOWN)
    head = "..." if start > 0 else ""
    tail = "..." if stop < len(source) else ""
    shift = len(head) - start
    return head + source[start:stop] + tail, col + shift, min(end, stop + 1) + shift


class ParseError(StagegenError):
    """The input is not a program of stagegen's input language."""


class UnsupportedError(StagegenError):
    """The input is well formed but uses something stagegen has no gate for."""


class UsageError(StagegenError):
    """An option or argument of the CLI or the API is not valid."""


class ShapeError(StagegenError):
    """Array shapes that do not fit together."""


class ToolError(StagegenError):
    """A program stagegen runs for the user (Graphviz's dot) is missing or failed."""


class InternalError(Exception):
    """stagegen made something it must not (a module that does not compile): a bug
    to report, not a user's mistake (the CLI exits with status 3)."""


class GateDefinitionError(Exception):
    """A gate record in the registry is inconsistent (a stagegen bug)."""

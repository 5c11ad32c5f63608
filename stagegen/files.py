"""Files stagegen writes, whole or not at all, and file names as stagegen shows them.

The CLI writes modules (-o) and diagrams (--diagram), and `Diagram.render`
writes images, all through `write_atomically`; `check_target` refuses what
must not be written (a pipe, a socket, a block device, a write-protected
file, a loop of links) before anything is generated, and `same_file` tells
when two names reach one file. `shown` is a file name as messages and
generated docstrings print it.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import unicodedata

from .errors import UsageError

REPLACEMENT = "\ufffd"
# control characters, line and paragraph separators (str.splitlines breaks a line at each), and the
# lone surrogates that stand for bytes of a name that is not UTF-8 (they cannot be written as UTF-8)
_UNSHOWN = frozenset({"Cc", "Cs", "Zl", "Zp"})


def shown(name: str) -> str:
    """`name` as messages and generated docstrings show it: each character that would break a line,
    or that stands for a byte that is not UTF-8, is U+FFFD (a diagnostic stays one line, a module
    stays UTF-8)."""
    return "".join(REPLACEMENT if unicodedata.category(c) in _UNSHOWN else c for c in name)


def same_file(a: str, b: str) -> bool:
    """Whether the paths `a` and `b` reach one file: through symbolic links, whether it exists yet or
    not, or as hard links of one file."""
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them does not exist (yet), or cannot be looked up
        return False


def check_target(path: str) -> os.stat_result | None:
    """Refuse to write `path` unless it is a regular file that may be replaced, a character device
    (written in place), or a new file in an existing folder; its status, None when it does not exist."""
    name = shown(path)
    if "\0" in path:  # no file has such a name; os functions would raise ValueError
        raise UsageError(f"cannot write {name}: a file name cannot hold a NUL character")
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {name}: the folder {shown(folder)} does not exist")
    try:
        status = os.stat(real)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"cannot write {name}: it is a loop of symbolic links") from None
        raise UsageError(f"cannot write {name}: {exc.strerror or exc}") from None
    mode = status.st_mode
    # replacing any of these with a regular file would break what uses it, and opening a pipe
    # for writing waits for a reader that may never come
    for test, what in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            hint = "" if what == "a directory" else "stagegen writes regular files (and character devices)"
            raise UsageError(f"cannot write {name}: it is {what}", hint=hint)
    # the atomic rename needs only a writable folder, so it would replace a read-only file
    if not os.access(real, os.W_OK):
        raise UsageError(
            f"cannot write {name}: it is write-protected",
            hint="make it writable (chmod u+w), or choose another file",
        )
    return status


def write_atomically(path: str, data: str | bytes) -> None:
    """Write `data` (text is written as UTF-8) to `path`: readers see the old file or the new one,
    never a part. A symbolic link is written through: its target is replaced, the link stays. A
    character device (/dev/null, a terminal) is written in place: it cannot be replaced."""
    status = check_target(path)
    name, real = shown(path), os.path.realpath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if status is not None and stat.S_ISCHR(status.st_mode):
        _write_in_place(real, payload, name)
        return
    if status is not None:
        mode = status.st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stagegen-", suffix=".tmp", dir=os.path.dirname(real))
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as exc:
        raise UsageError(f"cannot write {name}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _write_in_place(real: str, payload: bytes, name: str) -> None:
    # neither created nor truncated: a device that went away is an error, not a new regular file
    try:
        fd = os.open(real, os.O_WRONLY)
        try:
            rest = memoryview(payload)
            while rest:
                rest = rest[os.write(fd, rest) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise UsageError(f"cannot write {name}: {exc.strerror or exc}") from None

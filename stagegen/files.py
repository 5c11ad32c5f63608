"""Files stagegen writes: whole or not at all.

The CLI writes modules (-o) and diagrams (--diagram), and `Diagram.render`
writes images, all through `write_atomically`.
"""

from __future__ import annotations

import os
import tempfile

from .errors import UsageError


def write_atomically(path: str, data: str | bytes) -> None:
    """Write `data` (text is written as UTF-8) to `path`: readers see the old file or the new one,
    never a part. A symbolic link is written through: its target is replaced, the link stays."""
    shown, path = path, os.path.realpath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {shown}: the folder {folder} does not exist")
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    if os.path.isdir(path):
        raise UsageError(f"cannot write {shown}: it is a directory")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".stagegen-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)

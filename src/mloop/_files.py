"""A file a command writes for people to open (a report, an archive), whole or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mloop.errors import MalformedInput


def write_text(path: str | os.PathLike[str], text: str, *, what: str, option: str) -> Path:
    """Write ``text`` to ``path`` atomically: a reader sees the old file or the new one, whole (a
    temporary file beside it, fsynced, then renamed). ``what`` and ``option`` name the file and the
    command's option in the error a missing folder gets.

    The file is created with mode 0666 less the umask (0644 under the usual 022), like any file a
    command writes for others to open."""
    return write_bytes(path, text.encode("utf-8"), what=what, option=option)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, what: str, option: str) -> Path:
    """:func:`write_text` for bytes (an archive)."""
    target = Path(path)
    if not target.parent.is_dir():
        raise MalformedInput(
            f"Cannot write the {what} to {target}: the folder {target.parent} does not exist; create it, "
            f"or pass {option} with an existing folder."
        )
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target

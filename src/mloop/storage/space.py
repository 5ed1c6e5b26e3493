"""A full disk, said once and clearly: ``ENOSPC`` (or SQLite's "database or disk is full") becomes
:class:`~mloop.errors.DiskFull` naming the folder and the setting that points there.

A full disk surfaces from many libraries (``os.write``, pyarrow, DuckDB, SQLite through SQLAlchemy), each
with its own exception type and wording; this module recognises them all and picks which of the project's
places is full (the one the error names, else the one with the least room left), so that the user reads
"no space left on /srv/mloop/data: free space there, or move data_url to a disk with room" instead of a
library's traceback. The service layer wraps its writes in :func:`guarded`; nothing else translates.

>>> with guarded(places(project.settings)):                # doctest: +SKIP
...     write_the_files()
DiskFull: no space left on /srv/mloop/data (data_url): free space there, or move data_url ...
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.errors import DiskFull

if TYPE_CHECKING:
    from mloop.config import Settings

Place = tuple[str, str]  # (a local folder or file, the setting that points there)

# How the libraries say it: the OS's strerror (also in pyarrow's and DuckDB's messages), SQLite's
# SQLITE_FULL, and a user's quota (EDQUOT), which is the same to the user.
_SAID = ("no space left on device", "database or disk is full", "disk quota exceeded")
_CODES = {errno.ENOSPC, errno.EDQUOT}


def is_full(exc: BaseException) -> bool:
    """Does ``exc`` (or an error it was raised from) say that a disk is full?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _CODES:
            return True
        if any(said in str(current).lower() for said in _SAID):
            return True
        current = current.__cause__ or current.__context__
    return False


SETTINGS = ("data_url", "artifact_url", "metadata_url", "online_url", "prediction_spool", "scratch_dir")


def places(settings: Settings, *first: str) -> list[Place]:
    """The project's local places that mloop writes to, each with its setting, the settings ``first``
    (what the operation writes to) ahead: of places on the same full disk, the first is named. Remote
    stores are left out: a full bucket is the store's error (:class:`~mloop.errors.StorageUnavailable`)."""
    found: list[Place] = []
    for setting in sorted(SETTINGS, key=lambda name: name not in first):
        value = str(getattr(settings, setting))
        if value.startswith("sqlite:///"):
            value = value[len("sqlite:///") :]
        elif value.startswith("file://"):
            value = value[len("file://") :]
        if "://" in value or value in ("", ":memory:"):
            continue
        found.append((value, setting))
    return found


def disk_full(exc: BaseException, where: Sequence[Place]) -> DiskFull:
    """The :class:`DiskFull` to raise for ``exc`` (a full disk) among ``where``."""
    path, setting = _which(exc, where)
    return DiskFull(
        f"no space left on {path} ({setting}): free space there, or move {setting} to a disk with room "
        f"(mloop.yaml, or MLOOP_{setting.upper()}); nothing was half-written, so run it again once there is"
    )


@contextlib.contextmanager
def guarded(where: Sequence[Place]) -> Iterator[None]:
    """Turn a full disk raised by the body into :class:`DiskFull` naming the place among ``where``."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if not is_full(exc):
            raise
        raise disk_full(exc, where) from exc


def _which(exc: BaseException, where: Sequence[Place]) -> Place:
    named = _filename(exc)
    if named:
        for path, setting in where:
            if _inside(named, path):
                return path, setting
    if not where:
        return (named or "the disk", "the setting that points there")
    # The error did not say which file: the place with the least room is the full one (of places with the
    # same room, the first: what the operation writes to).
    return min(where, key=lambda place: _free(place[0]))


def _filename(exc: BaseException) -> str | None:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.filename:
            return str(current.filename)
        current = current.__cause__ or current.__context__
    return None


def _inside(filename: str, place: str) -> bool:
    file, folder = Path(filename).absolute(), Path(place).absolute()
    return file == folder or folder in file.parents


def _free(path: str) -> int:
    """Bytes free to this user on ``path``'s file system (its nearest existing folder); huge if unknown."""
    current = Path(path).absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    try:
        stat = os.statvfs(current)
    except OSError:
        return 1 << 62
    return stat.f_bavail * stat.f_frsize

"""Data files in a local folder: what ``data_url`` is by default. Publishing is a rename in the same
file system, so a reader sees a whole file or none."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow.fs as pafs

from mloop.storage import space


class LocalDataStorage:
    remote = False

    def __init__(self, url: str, scratch: str | Path | None = None) -> None:
        self.url = url
        self.root = str(Path(url))
        self.filesystem = pafs.LocalFileSystem()

    def join(self, location: str, *parts: str) -> str:
        return os.path.join(location, *parts)

    def path(self, location: str) -> str:
        return location

    def list(self, location: str, suffix: str = ".parquet") -> list[str]:
        folder = Path(location)
        if not folder.is_dir():
            return []
        return sorted(str(p) for p in folder.rglob(f"*{suffix}") if p.is_file())

    def exists(self, location: str) -> bool:
        return os.path.exists(location)

    def size(self, location: str) -> int:
        return os.stat(location).st_size

    def delete(self, location: str) -> None:
        Path(location).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # a partition folder only this file had filled
            Path(location).parent.rmdir()

    def publish(self, local: Path, location: str) -> None:
        os.makedirs(os.path.dirname(location), exist_ok=True)
        os.replace(local, location)

    def staging(self, location: str) -> Path:
        return Path(location) / "_staging"

    def reaching(self) -> contextlib.AbstractContextManager[None]:
        return space.guarded([(self.root, "data_url")])  # a folder is always reached; it may be full

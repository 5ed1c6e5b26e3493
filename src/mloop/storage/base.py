"""The seam between mloop's data files and where they are kept: a local folder or an object store.

A *location* is a string: an absolute path for a folder, ``s3://bucket/key`` on S3. Every backend moves
whole files and lists them; Parquet is written and read above it (:class:`mloop.crypto.ParquetFiles`,
through :attr:`DataStorage.filesystem`, the pyarrow filesystem the locations live on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pyarrow.fs as pafs


class DataStorage(Protocol):
    """Where ``data_url`` keeps datasets, quarantine, the push log and the prediction log's Parquet."""

    url: str  # data_url as configured
    root: str  # the location of data_url itself
    remote: bool  # an object store: no rename, no flock, staging and spill on local disk
    filesystem: pafs.FileSystem

    def join(self, location: str, *parts: str) -> str:
        """``location`` / ``parts``."""
        ...

    def path(self, location: str) -> str:
        """The path of ``location`` on :attr:`filesystem` (what pyarrow calls take)."""
        ...

    def list(self, location: str, suffix: str = ".parquet") -> list[str]:
        """Every file under ``location`` (recursively) whose name ends in ``suffix``, sorted."""
        ...

    def exists(self, location: str) -> bool: ...

    def size(self, location: str) -> int: ...

    def delete(self, location: str) -> None:
        """Remove the file (a missing one is no error)."""
        ...

    def publish(self, local: Path, location: str) -> None:
        """Move the complete local file ``local`` to ``location`` so that readers see all of it or
        nothing: a rename in a folder, one upload to an object store (which shows nothing until done)."""
        ...

    def staging(self, location: str) -> Path:
        """A local folder where work for ``location`` is staged: beside it for a folder (a rename then
        publishes), on local scratch disk for an object store."""
        ...

    def reaching(self) -> contextlib.AbstractContextManager[None]:
        """Turn "cannot reach the store" into :class:`~mloop.errors.StorageUnavailable`, naming where."""
        ...


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield

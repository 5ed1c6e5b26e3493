"""Where ``data_url`` keeps mloop's data files: a local folder (default) or S3.

>>> storage = open_data_storage("/srv/mloop/data")                  # doctest: +SKIP
>>> storage = open_data_storage("s3://bucket/mloop", scratch=".mloop/tmp")   # doctest: +SKIP
>>> storage.publish(Path("staged.parquet"), storage.join(storage.root, "d", "part-0.parquet"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from mloop.plugins import Plugins
from mloop.storage.base import DataStorage

BACKENDS = Plugins(
    "data store",
    {
        "file": "mloop.storage.local:LocalDataStorage",
        "s3": "mloop.storage.s3:S3DataStorage",
    },
    unknown="data_url scheme {name!r} is not supported; choose one of {choices} (a folder is file).",
)


def open_data_storage(url: str, scratch: str | Path | None = None) -> DataStorage:
    """A folder (or ``file://``) → local; ``s3://bucket/prefix`` → S3. ``scratch``: the local folder for
    staging and spill when the store is remote."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    backend = BACKENDS.load(scheme)
    storage: DataStorage = backend(url, scratch)
    return storage


def remote_files(storage: DataStorage) -> tuple[str, pafs.FileSystem] | None:
    """What :class:`mloop.crypto.ParquetFiles` needs to read and write ``storage``'s objects: the prefix
    of their locations and their filesystem (None for a folder: local paths)."""
    if not storage.remote:
        return None
    return storage.root.split("://", 1)[0] + "://", storage.filesystem


__all__ = ["BACKENDS", "DataStorage", "open_data_storage", "remote_files"]

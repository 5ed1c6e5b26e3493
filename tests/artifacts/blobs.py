"""Reach behind a blob backend, to corrupt blobs and to find leftovers the backend would hide."""

from __future__ import annotations

import os

from mloop.artifacts import BlobBackend, LocalBlobBackend
from mloop.artifacts.fsspec import FsspecBlobBackend


def overwrite(backend: BlobBackend, key: str, data: bytes) -> None:
    """Change a stored blob behind the store's back, as a bad disk or a careless hand would."""
    if isinstance(backend, LocalBlobBackend):
        (backend.root / key).write_bytes(data)
    else:
        assert isinstance(backend, FsspecBlobBackend)
        backend.fs.pipe_file(f"{backend.root}/{key}", data)


def every_file(backend: BlobBackend) -> list[str]:
    """Every file under the backend's root, hidden and temporary ones included."""
    if isinstance(backend, LocalBlobBackend):
        return sorted(
            os.path.relpath(os.path.join(folder, name), backend.root)
            for folder, _, names in os.walk(backend.root)
            for name in names
        )
    assert isinstance(backend, FsspecBlobBackend)
    if not backend.fs.exists(backend.root):
        return []
    return sorted(path[len(backend.root) + 1 :] for path in backend.fs.find(backend.root))

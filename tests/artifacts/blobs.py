"""Reach behind a blob backend, to corrupt blobs and to find leftovers the backend would hide."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator

from mloop.artifacts import BlobBackend, LocalBlobBackend
from mloop.artifacts.fsspec import UPLOADS, FsspecBlobBackend


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
    backend.fs.invalidate_cache()
    uploads = _multipart_uploads(backend) if backend.object_store else []
    if not backend.fs.exists(backend.root):
        return uploads
    return sorted([path[len(backend.root) + 1 :] for path in backend.fs.find(backend.root)] + uploads)


def _multipart_uploads(backend: FsspecBlobBackend) -> list[str]:
    """Incomplete multipart uploads under the root, asked of S3 directly, named as ``temps`` names them."""
    bucket, _, prefix = f"{backend.root}/".partition("/")
    listing = backend.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
    return [f"{UPLOADS}/{u['UploadId']}/{u['Key'][len(prefix) :]}" for u in listing.get("Uploads", [])]


def stuck_size(backend: BlobBackend) -> int:
    """How much a stuck upload sends: on S3, more than a part, so that the server holds something."""
    if isinstance(backend, FsspecBlobBackend) and backend.object_store:
        return backend.upload_block_size + 1000
    return 1000


class StuckSource(io.RawIOBase):
    """Hands out ``size`` bytes, then blocks until ``release`` is set and fails: an upload that hangs
    midway, its temp file written in part, as when the process doing it is killed."""

    def __init__(self, size: int = 1000) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self._left = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left:
            chunk = min(self._left, size if size and size > 0 else self._left)
            self._left -= chunk
            return b"x" * chunk
        self.started.set()
        self.release.wait(10)
        raise OSError("upload abandoned")


@contextlib.contextmanager
def stuck_upload(backend: BlobBackend, key: str) -> Iterator[None]:
    """Inside the block, a put of ``key`` hangs with its temp file on disk; it fails (and cleans up) after."""
    source = StuckSource(stuck_size(backend))
    thread = threading.Thread(target=lambda: _put(backend, key, source), daemon=True)
    thread.start()
    assert source.started.wait(10)
    try:
        yield
    finally:
        source.release.set()
        thread.join(10)


def _put(backend: BlobBackend, key: str, source: StuckSource) -> None:
    with contextlib.suppress(OSError):
        backend.put(key, source)  # type: ignore[arg-type]

"""Artifact store: content-addressed blobs (sha256), atomic writes, checked on every read.

The backend is chosen from ``artifact_url``: a folder (default) or any fsspec URL.
"""

from __future__ import annotations

from mloop.artifacts.base import BlobBackend
from mloop.artifacts.local import LocalBlobBackend
from mloop.artifacts.store import ArtifactStore


def open_artifact_store(url: str) -> ArtifactStore:
    """``/abs/folder`` or ``file:///folder`` → local; ``s3://``, ``gs://``, ``memory://`` ... → fsspec."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" not in url:
        return ArtifactStore(LocalBlobBackend(url))
    from mloop.artifacts.fsspec import FsspecBlobBackend

    return ArtifactStore(FsspecBlobBackend(url))


__all__ = ["ArtifactStore", "BlobBackend", "LocalBlobBackend", "open_artifact_store"]

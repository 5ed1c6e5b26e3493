"""Artifact store: content-addressed blobs (sha256), atomic writes, checked on every read.

The backend is chosen from ``artifact_url``: a folder (default) or any fsspec URL.
"""

from __future__ import annotations

from mloop.artifacts.base import BlobBackend
from mloop.artifacts.local import LocalBlobBackend
from mloop.artifacts.store import ArtifactStore
from mloop.crypto import BlobCipher
from mloop.plugins import Plugins

BACKENDS = Plugins(
    "artifact store",
    {
        "local": "mloop.artifacts.local:LocalBlobBackend",
        "fsspec": "mloop.artifacts.fsspec:FsspecBlobBackend",
    },
)


def open_artifact_store(url: str, cipher: BlobCipher | None = None) -> ArtifactStore:
    """``/abs/folder`` or ``file:///folder`` → local; ``s3://``, ``gs://``, ``memory://`` ... → fsspec.
    With ``cipher`` blobs are sealed at rest."""
    if url.startswith("file://"):
        url = url[len("file://") :]
    backend = BACKENDS.load("fsspec" if "://" in url else "local")
    return ArtifactStore(backend(url), cipher)


__all__ = ["BACKENDS", "ArtifactStore", "BlobBackend", "LocalBlobBackend", "open_artifact_store"]

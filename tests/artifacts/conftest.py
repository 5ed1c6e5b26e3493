"""Every blob backend, for one behavioural suite: a local folder, fsspec in memory, fsspec on disk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.artifacts import ArtifactStore, BlobBackend, LocalBlobBackend
from mloop.artifacts.fsspec import FsspecBlobBackend


@pytest.fixture(params=["local", "fsspec-memory", "fsspec-file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobBackend]:
    if request.param == "local":
        yield LocalBlobBackend(tmp_path / "blobs")
    elif request.param == "fsspec-file":
        yield FsspecBlobBackend(f"file://{tmp_path / 'blobs'}")
    else:
        memory = FsspecBlobBackend(f"memory://mloop-tests-{uuid.uuid4().hex}")
        yield memory
        if memory.fs.exists(memory.root):
            memory.fs.rm(memory.root, recursive=True)


@pytest.fixture
def artifacts(backend: BlobBackend) -> ArtifactStore:
    return ArtifactStore(backend)

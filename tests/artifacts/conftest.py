"""Every blob backend, for one behavioural suite: a local folder, fsspec in memory, fsspec on disk, and
fsspec on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.artifacts import ArtifactStore, BlobBackend, LocalBlobBackend
from mloop.artifacts.fsspec import FsspecBlobBackend


@pytest.fixture(params=["local", "fsspec-memory", "fsspec-file", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobBackend]:
    if request.param == "local":
        yield LocalBlobBackend(tmp_path / "blobs")
    elif request.param == "s3":
        s3 = FsspecBlobBackend(request.getfixturevalue("s3_url"))
        s3.upload_block_size = 5 << 20  # S3's smallest part: tests reach a multipart upload with little data
        yield s3
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

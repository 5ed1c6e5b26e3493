"""The BlobBackend seam: every backend moves bytes by key, atomically, and lists only whole blobs."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fsspec.core
import pytest

from mloop.artifacts import BlobBackend, LocalBlobBackend, open_artifact_store
from mloop.artifacts.fsspec import FsspecBlobBackend
from mloop.errors import BackendNotInstalled
from tests.artifacts.blobs import every_file, stuck_size, stuck_upload
from tests.artifacts.test_store import FailingSource


def test_put_then_open_exists_keys_and_delete(backend: BlobBackend) -> None:
    backend.put("sha256/ab/one", io.BytesIO(b"one"))
    backend.put("sha256/cd/two", io.BytesIO(b"two"))
    backend.put("other/three", io.BytesIO(b"three"))
    with backend.open("sha256/ab/one") as handle:
        assert handle.read() == b"one"
    assert backend.exists("sha256/cd/two")
    assert not backend.exists("sha256/cd/none")
    assert list(backend.keys("sha256")) == ["sha256/ab/one", "sha256/cd/two"]
    assert list(backend.keys()) == ["other/three", "sha256/ab/one", "sha256/cd/two"]
    assert list(backend.keys("empty")) == []
    backend.delete("sha256/ab/one")
    backend.delete("sha256/ab/one")
    assert not backend.exists("sha256/ab/one")


def test_opening_a_missing_key_raises_file_not_found(backend: BlobBackend) -> None:
    with pytest.raises(FileNotFoundError):
        backend.open("sha256/00/missing")


def test_put_replaces_the_whole_blob(backend: BlobBackend) -> None:
    backend.put("k", io.BytesIO(b"a long first version"))
    backend.put("k", io.BytesIO(b"short"))
    with backend.open("k") as handle:
        assert handle.read() == b"short"


def test_a_put_that_fails_midway_leaves_no_blob_and_no_temp_file(backend: BlobBackend) -> None:
    with pytest.raises(OSError, match="network went away"):
        backend.put("sha256/ab/blob", FailingSource(b"x" * 10_000, fail_after=3))
    assert not backend.exists("sha256/ab/blob")
    assert list(backend.keys()) == []
    assert every_file(backend) == []


def test_a_put_that_fails_after_several_parts_leaves_nothing(backend: BlobBackend) -> None:
    # On S3 this upload is multipart: its first parts are on the server when the source fails.
    with pytest.raises(OSError, match="network went away"):
        backend.put("sha256/ab/big", FailingSource(b"z" * (12 << 20), fail_after=9, chunk=1 << 20))
    assert not backend.exists("sha256/ab/big")
    assert every_file(backend) == []
    assert list(backend.temps()) == []


def test_a_put_that_fails_keeps_the_previous_blob(backend: BlobBackend) -> None:
    backend.put("k", io.BytesIO(b"intact"))
    with pytest.raises(OSError):
        backend.put("k", FailingSource(b"y" * 10_000, fail_after=3))
    with backend.open("k") as handle:
        assert handle.read() == b"intact"
    assert every_file(backend) == ["k"]


# ---- choosing a backend from artifact_url ---------------------------------------------------------------


def test_a_folder_or_file_url_is_a_local_backend(tmp_path: pytest.TempPathFactory) -> None:
    assert isinstance(open_artifact_store(str(tmp_path)).backend, LocalBlobBackend)
    assert isinstance(open_artifact_store(f"file://{tmp_path}").backend, LocalBlobBackend)
    assert open_artifact_store(f"file://{tmp_path}").url == str(tmp_path)


def test_other_urls_go_to_fsspec() -> None:
    assert isinstance(open_artifact_store("memory://mloop-tests-choice").backend, FsspecBlobBackend)


def test_an_unknown_protocol_names_the_url_and_the_fix() -> None:
    with pytest.raises(BackendNotInstalled, match=r"artifact_url 'nosuchproto://bucket/x'.*local folder"):
        open_artifact_store("nosuchproto://bucket/x")


def test_s3_without_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing_driver(url: str, **options: object) -> None:
        raise ImportError("Install s3fs to access S3")  # what fsspec raises when s3fs is not installed

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing_driver)
    with pytest.raises(BackendNotInstalled, match=r"pip install 'mloop\[s3\]'"):
        open_artifact_store("s3://bucket/mloop")


def test_temps_lists_the_temp_file_of_an_upload_and_delete_removes_it(backend: BlobBackend) -> None:
    backend.put("sha256/ab/whole", io.BytesIO(b"whole"))
    assert list(backend.temps()) == []
    with stuck_upload(backend, "sha256/cd/partial"):
        (temp,) = backend.temps()
        assert temp.key in every_file(backend) and temp.key not in list(backend.keys())
        assert temp.size in (0, stuck_size(backend))  # an object store may not say how much it holds
        assert abs((datetime.now(UTC) - temp.modified).total_seconds()) < 60
        backend.delete(temp.key)
        assert list(backend.temps()) == []
    assert list(backend.keys()) == ["sha256/ab/whole"]

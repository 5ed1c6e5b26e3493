"""Content addressing over every blob backend: digests, dedupe, and a check on every read."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.artifacts import ArtifactStore, BlobBackend
from mloop.errors import IntegrityError, MloopError, NotFound
from tests.artifacts.blobs import every_file, overwrite, stuck_upload

# Bigger than the store's 1 MiB chunk, so streaming reads and writes take several rounds.
DATA = bytes(range(256)) * 10_000 + b"tail"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_in_chunks(artifacts: ArtifactStore, digest: str, _dest: Path) -> bytes:
    with artifacts.open(digest) as handle:
        return b"".join(iter(lambda: handle.read(4096), b""))


def read_whole(artifacts: ArtifactStore, digest: str, _dest: Path) -> bytes:
    with artifacts.open(digest) as handle:
        return handle.read()


def get_bytes(artifacts: ArtifactStore, digest: str, _dest: Path) -> bytes:
    return artifacts.get_bytes(digest)


def get_file(artifacts: ArtifactStore, digest: str, dest: Path) -> bytes:
    return artifacts.get_file(digest, dest).read_bytes()


READERS = [get_bytes, read_whole, read_in_chunks, get_file]


# ---- put and get ---------------------------------------------------------------------------------------


def test_every_put_returns_the_sha256_of_the_bytes(artifacts: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(DATA)
    assert artifacts.put_bytes(DATA) == sha256(DATA)
    assert artifacts.put_file(source) == sha256(DATA)
    assert artifacts.put_stream(io.BytesIO(DATA)) == sha256(DATA)


@pytest.mark.parametrize("reader", READERS)
def test_reads_return_the_bytes_that_were_put(
    artifacts: ArtifactStore, tmp_path: Path, reader: Callable[..., bytes]
) -> None:
    digest = artifacts.put_bytes(DATA)
    assert reader(artifacts, digest, tmp_path / "out" / "model.bin") == DATA


def test_the_same_bytes_are_stored_once(
    artifacts: ArtifactStore, backend: BlobBackend, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(DATA)
    digests = {
        artifacts.put_bytes(DATA),
        artifacts.put_file(source),
        artifacts.put_stream(io.BytesIO(DATA)),
        artifacts.put_bytes(DATA),
    }
    assert digests == {sha256(DATA)}
    assert list(artifacts.digests()) == [sha256(DATA)]
    assert every_file(backend) == [ArtifactStore.key(sha256(DATA))]


def test_digests_lists_every_blob(artifacts: ArtifactStore) -> None:
    blobs = [b"", b"a", b"b" * 3000]
    assert sorted(artifacts.digests()) == []
    for blob in blobs:
        artifacts.put_bytes(blob)
    assert sorted(artifacts.digests()) == sorted(sha256(b) for b in blobs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000))
def test_any_bytes_round_trip(artifacts: ArtifactStore, data: bytes) -> None:
    digest = artifacts.put_stream(io.BytesIO(data))
    assert digest == sha256(data)
    assert artifacts.exists(digest)
    assert artifacts.get_bytes(digest) == data


def test_put_file_of_a_missing_file_is_not_found(artifacts: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no-such\.bin"):
        artifacts.put_file(tmp_path / "no-such.bin")


def test_delete_removes_the_blob(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(DATA)
    artifacts.delete(digest)
    assert not artifacts.exists(digest)
    with pytest.raises(NotFound):
        artifacts.get_bytes(digest)
    artifacts.delete(digest)  # deleting what is gone already is not an error


# ---- corruption ----------------------------------------------------------------------------------------

CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "one byte flipped": lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],
    "truncated": lambda data: data[:-1],
    "emptied": lambda data: b"",
    "extended": lambda data: data + b"!",
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupt_blob_raises_integrity_error_naming_its_digest(
    artifacts: ArtifactStore,
    backend: BlobBackend,
    tmp_path: Path,
    reader: Callable[..., bytes],
    corruption: str,
) -> None:
    digest = artifacts.put_bytes(DATA)
    overwrite(backend, ArtifactStore.key(digest), CORRUPTIONS[corruption](DATA))
    with pytest.raises(IntegrityError, match=f"sha256:{digest}"):
        reader(artifacts, digest, tmp_path / "out" / "model.bin")


def test_get_file_of_a_corrupt_blob_leaves_nothing_at_dest(
    artifacts: ArtifactStore, backend: BlobBackend, tmp_path: Path
) -> None:
    digest = artifacts.put_bytes(DATA)
    overwrite(backend, ArtifactStore.key(digest), b"tampered")
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "kept.bin"
    kept.write_bytes(b"the previous model")
    with pytest.raises(IntegrityError):
        artifacts.get_file(digest, out / "model.bin")
    with pytest.raises(IntegrityError):
        artifacts.get_file(digest, kept)
    assert sorted(p.name for p in out.iterdir()) == ["kept.bin"]  # no temp file, no partial model
    assert kept.read_bytes() == b"the previous model"


def test_verify_and_corrupt_find_the_corrupt_blob(artifacts: ArtifactStore, backend: BlobBackend) -> None:
    good, bad = artifacts.put_bytes(b"good"), artifacts.put_bytes(b"bad")
    assert artifacts.corrupt() == []
    overwrite(backend, ArtifactStore.key(bad), b"bad, but changed")
    assert artifacts.verify(good)
    assert not artifacts.verify(bad)
    assert artifacts.corrupt() == [bad]


def test_put_file_refuses_a_file_that_changes_while_it_is_stored(
    artifacts: ArtifactStore, backend: BlobBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(DATA)
    put = backend.put

    def put_while_someone_writes(key: str, stream: BinaryIO) -> None:
        with source.open("ab") as handle:
            handle.write(b"appended after hashing")
        put(key, stream)

    monkeypatch.setattr(backend, "put", put_while_someone_writes)
    with pytest.raises(
        IntegrityError, match=f"The file {re.escape(str(source))} changed while it was being stored"
    ):
        artifacts.put_file(source)
    assert list(artifacts.digests()) == []
    assert every_file(backend) == []


# ---- bad input -----------------------------------------------------------------------------------------


def test_a_missing_digest_is_not_found(artifacts: ArtifactStore, tmp_path: Path) -> None:
    missing = sha256(b"never stored")
    for read in READERS:
        with pytest.raises(NotFound, match=missing):
            read(artifacts, missing, tmp_path / "out.bin")
    with pytest.raises(NotFound):
        artifacts.verify(missing)
    assert not artifacts.exists(missing)
    assert not (tmp_path / "out.bin").exists()


MALFORMED = [
    "",
    "abc123",
    sha256(b"x").upper(),
    f"sha256:{sha256(b'x')}",
    sha256(b"x") + "0",
    "g" * 64,
    "../" * 21 + "e",
    None,
]


@pytest.mark.parametrize("digest", MALFORMED)
@pytest.mark.parametrize("call", ["get_bytes", "open", "exists", "delete", "verify"])
def test_a_malformed_digest_is_refused_clearly(artifacts: ArtifactStore, digest: Any, call: str) -> None:
    with pytest.raises(MloopError, match="is not an artifact digest: expected 64 lowercase hex") as error:
        getattr(artifacts, call)(digest)
    assert type(error.value) is MloopError
    assert repr(digest) in str(error.value)


def test_a_failing_source_stores_nothing(artifacts: ArtifactStore, backend: BlobBackend) -> None:
    with pytest.raises(OSError, match="network went away"):
        artifacts.put_stream(FailingSource(DATA, fail_after=2))
    assert list(artifacts.digests()) == []
    assert every_file(backend) == []


class FailingSource(io.RawIOBase):
    """Hands out ``data`` a chunk at a time, then fails, as a dropped network stream would."""

    def __init__(self, data: bytes, fail_after: int, chunk: int = 1000) -> None:
        self._data = io.BytesIO(data)
        self._reads_left = fail_after
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._reads_left == 0:
            raise OSError("network went away")
        self._reads_left -= 1
        return self._data.read(min(size, self._chunk) if size and size > 0 else self._chunk)


def test_cleaning_removes_temp_files_older_than_the_age_and_no_blob(artifacts: ArtifactStore) -> None:
    from datetime import UTC, datetime, timedelta

    digest = artifacts.put_bytes(b"kept")
    with stuck_upload(artifacts.backend, artifacts.key(sha256(b"partial"))):
        (temp,) = artifacts.temp_files()
        assert artifacts.clean_temp_files() == []  # an hour has not passed: it may be an upload in flight
        assert artifacts.temp_files() == [temp]
        later = datetime.now(UTC) + timedelta(hours=2)
        assert [t.key for t in artifacts.clean_temp_files(now=later)] == [temp.key]
        assert artifacts.temp_files() == []
    assert list(artifacts.digests()) == [digest] and artifacts.verify(digest)
    with pytest.raises(MloopError, match="must not be negative"):
        artifacts.clean_temp_files(timedelta(seconds=-1))

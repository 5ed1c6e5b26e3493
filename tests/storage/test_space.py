"""A full disk is recognised from every library's wording and named with its setting."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy.exc

from mloop.config import load_settings
from mloop.errors import DiskFull
from mloop.storage import space


def _chained(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError('IO Error: Could not write file "x.parquet": No space left on device'),  # DuckDB, pyarrow
        _chained(
            sqlalchemy.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("x")),
            sqlite3.OperationalError("database or disk is full"),
        ),
        _chained(RuntimeError("the chunk failed"), OSError(errno.ENOSPC, "No space left on device")),
    ],
)
def test_a_full_disk_is_recognised_however_a_library_says_it(exc: BaseException) -> None:
    assert space.is_full(exc)


@pytest.mark.parametrize("exc", [OSError(errno.EIO, "Input/output error"), ValueError("no space in name")])
def test_other_errors_are_not_a_full_disk(exc: BaseException) -> None:
    assert not space.is_full(exc)


def test_the_error_names_the_file_s_place_else_what_the_operation_writes_first(tmp_path: Path) -> None:
    where = [(str(tmp_path / "artifacts"), "artifact_url"), (str(tmp_path / "data"), "data_url")]
    named = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "data" / "d" / "part-0.parquet"))
    with (
        pytest.raises(
            DiskFull, match=rf"no space left on {tmp_path / 'data'} \(data_url\): free space"
        ) as got,
        space.guarded(where),
    ):
        raise named
    assert got.value.__cause__ is named
    unnamed = sqlite3.OperationalError("database or disk is full")  # the same disk: the first place
    with (
        pytest.raises(DiskFull, match=r"artifacts \(artifact_url\).*MLOOP_ARTIFACT_URL"),
        space.guarded(where),
    ):
        raise unnamed
    with pytest.raises(ValueError), space.guarded(where):  # anything else goes through as it was
        raise ValueError("not a disk")


def test_places_are_the_local_settings_with_the_written_one_first(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={}).resolved(tmp_path)
    found = space.places(settings, "online_url")
    assert found[0] == (str(tmp_path.resolve() / ".mloop" / "online.db"), "online_url")
    assert {setting for _, setting in found} >= {"data_url", "artifact_url", "metadata_url"}
    remote = load_settings(tmp_path, env={"MLOOP_ONLINE_URL": "redis://localhost:6379/0"})
    assert "online_url" not in {setting for _, setting in space.places(remote)}

"""Encrypted Parquet: nothing readable on disk, the same rows back through pyarrow and DuckDB, and files
written before encryption read as they are."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.crypto import PLAIN, DataKeyError, Keyring, ParquetFiles
from mloop.crypto.parquet import key_id_of

MARKER = "CONFIDENTIAL-7f3a"
TABLE = pa.table({"id": [1, 2, 3], "note": [MARKER, "b", "c"]})


def files(active: str = "dk-a") -> ParquetFiles:
    return ParquetFiles(Keyring.fixed({"dk-a": bytes(range(32)), "dk-b": bytes(32)}, active))


def test_encrypted_files_hide_their_content_and_name_their_key(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    files().write_table(TABLE, path)
    assert MARKER.encode() not in path.read_bytes()
    assert key_id_of(path) == "dk-a"
    assert files().read_table(path).equals(TABLE)
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's own error: no key to decrypt with
        pq.read_table(path)


def test_duckdb_reads_encrypted_and_plain_files_together(tmp_path: Path) -> None:
    files().write_table(TABLE, tmp_path / "a.parquet")
    PLAIN.write_table(TABLE, tmp_path / "b.parquet")
    assert key_id_of(tmp_path / "b.parquet") is None
    with duckdb.connect() as con:
        relation = files().scan(con, [tmp_path / "a.parquet", tmp_path / "b.parquet"])
        count = con.sql(f"SELECT count(*) FROM {relation} WHERE note = '{MARKER}'").fetchall()
    assert count == [(2,)]


def test_plain_files_keep_read_parquet_when_encryption_is_off(tmp_path: Path) -> None:
    PLAIN.write_table(TABLE, tmp_path / "a.parquet")
    with duckdb.connect() as con:
        assert PLAIN.scan(con, [tmp_path / "a.parquet"]).startswith("read_parquet(")


def test_seal_and_rewrite_move_a_file_under_the_active_key(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    PLAIN.write_table(TABLE, path)
    files().seal(path)
    assert key_id_of(path) == "dk-a"
    files("dk-b").rewrite(path)
    assert key_id_of(path) == "dk-b"
    only_new = ParquetFiles(Keyring.fixed({"dk-b": bytes(32)}, "dk-b"))
    assert only_new.read_table(path).equals(TABLE)
    assert not list(tmp_path.glob(".*"))  # no temp file left


def test_a_file_of_a_key_we_do_not_have_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    files().write_table(TABLE, path)
    stranger = ParquetFiles(Keyring.fixed({"dk-z": bytes(32)}, "dk-z"))
    with pytest.raises(DataKeyError, match="dk-a"):
        stranger.read_table(path)

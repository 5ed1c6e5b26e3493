"""Erasure in datasets: rewrite each Parquet file that holds a subject's rows without them, and the
retention of quarantine files.

Every file is replaced whole (a temporary file in the same folder, fsynced, then ``os.replace``; on S3 one
upload of the whole new object), so a reader, or a kill at any moment, sees the old file or the new one,
never a mix. The dataset's manifest
(each ingestion's file list with its row and byte counts, and its accepted rows) is then brought in line
with the files in one metadata transaction, from what the files hold: a run killed between the two leaves
new files under old counts, and the next run (which finds nothing more to remove) corrects the counts.

Every Parquet read and write of erasure goes through :func:`_read_table` and :func:`_write_table`, the one
place to route them through another layer (encryption at rest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from mloop.crypto import ParquetFiles
from mloop.data.queries import DatasetCatalog
from mloop.data.service import DataService
from mloop.security.pii import canonical
from mloop.store.schema import DatasetRow, IngestionRow

Predicate = Callable[[pa.Table], Any]  # a table -> a boolean mask of the rows to remove


def _read_table(path: str | Path, parquet: ParquetFiles) -> pa.Table:
    return parquet.read_table(path)


def _write_table(table: pa.Table, path: str | Path, parquet: ParquetFiles) -> None:
    """Replace ``path`` by ``table`` atomically and durably, encrypted when encryption at rest is on."""
    parquet.replace(table, path)


def equals(column: pa.ChunkedArray | pa.Array, value: Any) -> pa.Array:
    """Which cells of ``column`` hold ``value``, compared as the column's type (``"42"`` finds the integer
    42 and the text ``"42"``); null cells never match."""
    text = canonical(value)
    kind = column.type
    target: Any
    numeric = text == text.strip()  # " 3" is text, not the number 3
    try:
        if pa.types.is_integer(kind) and numeric:
            number = float(text)
            if not number.is_integer():
                return pa.array([False] * len(column))
            target = pa.scalar(int(number), kind)
        elif pa.types.is_floating(kind) and numeric:
            target = pa.scalar(float(text), kind)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            target = text
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return pa.array([False] * len(column))
        else:
            column, target = pc.cast(column, pa.string()), text
    except (ValueError, OverflowError, pa.ArrowInvalid):
        return pa.array([False] * len(column))
    return pc.fill_null(pc.equal(column, target), False)


def column_equals(name: str, value: Any) -> Predicate:
    """The rows whose ``name`` is ``value`` (none when the table has no such column)."""

    def predicate(table: pa.Table) -> Any:
        if name not in table.column_names:
            return pa.array([False] * table.num_rows)
        return equals(table[name], value)

    return predicate


def filter_file(
    path: str | Path, remove: Predicate, *, dry_run: bool, parquet: ParquetFiles
) -> tuple[int, int]:
    """Remove the rows ``remove`` selects from the Parquet file ``path``; answers (removed, rows left).
    A file with nothing to remove is left untouched."""
    table = _read_table(path, parquet)
    mask = remove(table)
    removed = int(pc.sum(mask).as_py() or 0)
    if removed and not dry_run:
        _write_table(table.filter(pc.invert(mask)), path, parquet)
    return removed, table.num_rows - removed


@dataclass
class DatasetErasure:
    """What erasure found (or removed) in one dataset."""

    dataset: str
    rows: int = 0  # removed from its files
    files: int = 0  # files rewritten
    quarantined: int = 0  # removed from its quarantine files
    recounted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ingestion id -> new file list

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "files": self.files,
            "quarantined": self.quarantined,
        }


class DatasetEraser(DataService):
    """Removes a subject's rows from every dataset; the caller checks the permission and commits
    :meth:`record` in its audited transaction."""

    def erase(self, column: str, value: Any, *, dry_run: bool) -> list[DatasetErasure]:
        """Rewrite every file of every dataset that has ``column`` without the rows where it is ``value``
        (each dataset under its ingestion lock); datasets without the column are skipped."""
        out = []
        remove = column_equals(column, value)
        with self._ctx.store.read() as session:
            datasets = session.scalars(
                select(DatasetRow).where(DatasetRow.project_id == self._ctx.project_id)
            )
            names = sorted(row.name for row in datasets)
        for name in names:
            stored, _ = self._stored_schema(name)
            if stored is None or column not in stored.column_names:
                continue  # files carry the columns of their schema version; a dataset never had it otherwise
            with self._ctx.data.reaching(), self._locked(name, exclusive=not dry_run):
                out.append(self._erase_one(name, remove, dry_run=dry_run))
        return out

    def _erase_one(self, name: str, remove: Predicate, *, dry_run: bool) -> DatasetErasure:
        found = DatasetErasure(name)
        folder, storage = self.folder(name), self._ctx.data
        with self._ctx.store.read() as session:
            ingestions = session.scalars(
                select(IngestionRow).join(DatasetRow).where(*self._where(name))
            ).all()
            listed = [(row.id, list(row.files), row.quarantine) for row in ingestions]
        for ingest_id, files, quarantine in listed:
            entries, changed = [], False
            for entry in files:
                path = storage.join(folder, str(entry["path"]))
                removed, left = filter_file(path, remove, dry_run=dry_run, parquet=self._ctx.parquet)
                found.rows += removed
                found.files += bool(removed)
                size = entry["bytes"] if dry_run or not removed else storage.size(path)
                changed |= left != entry["rows"] or size != entry["bytes"]
                entries.append({**entry, "rows": left, "bytes": size})
            if changed:  # this run's rewrite, or one a killed run left uncounted
                found.recounted[ingest_id] = entries
            if quarantine and storage.exists(storage.join(folder, quarantine)):
                found.quarantined += filter_file(
                    storage.join(folder, quarantine), remove, dry_run=dry_run, parquet=self._ctx.parquet
                )[0]
        return found

    @staticmethod
    def record(session: Session, erased: list[DatasetErasure]) -> None:
        """Bring the manifests in line with the rewritten files, in the caller's transaction."""
        for dataset in erased:
            for ingest_id, entries in dataset.recounted.items():
                row = session.get(IngestionRow, ingest_id)
                if row is None:
                    continue
                before = sum(int(e["rows"]) for e in row.files)
                row.rows_accepted -= before - sum(int(e["rows"]) for e in entries)
                row.files = entries  # a new list: the JSON column is replaced, not changed in place


@dataclass(frozen=True)
class QuarantinePurge:
    dataset: str
    ingest_id: str
    path: str  # a file's path, or its s3:// URL
    rows: int


class QuarantineRetention(DatasetCatalog):
    """Quarantine files older than a number of days: listed, then deleted with their manifest entry."""

    def expired(self, days: int, now: datetime) -> list[QuarantinePurge]:
        cutoff = now - timedelta(days=days)
        with self._ctx.store.read() as session:
            rows = session.execute(
                select(
                    DatasetRow.name, IngestionRow.id, IngestionRow.quarantine, IngestionRow.rows_quarantined
                )
                .join(DatasetRow)
                .where(
                    DatasetRow.project_id == self._ctx.project_id,
                    IngestionRow.quarantine.is_not(None),
                    IngestionRow.finished_at < cutoff,
                )
            ).all()
        join = self._ctx.data.join
        return [QuarantinePurge(n, i, join(self.folder(n), str(q)), r) for n, i, q, r in rows]

    @staticmethod
    def forget(session: Session, purged: list[QuarantinePurge]) -> None:
        """Drop the files' manifest entries in the caller's transaction (the files go after it commits:
        a file whose entry is gone is an orphan the next ingestion removes)."""
        for item in purged:
            row = session.get(IngestionRow, item.ingest_id)
            if row is not None:
                row.quarantine = None

    def delete(self, purged: list[QuarantinePurge]) -> None:
        storage = self._ctx.data
        with storage.reaching():
            for item in purged:
                storage.delete(item.path)

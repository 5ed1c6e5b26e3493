"""The read side of ``project.data`` and its SQL: datasets, their schemas, ingestions, files, rows and quarantine.

Readers see only the files listed by committed ingestions (the manifest), never a half-written one.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._service import Service
from mloop._time import as_utc
from mloop.data import listing, tensors
from mloop.data.listing import DatasetSummary
from mloop.data.report import IngestReport
from mloop.data.schema import Dataset
from mloop.data.sql import literal, quote
from mloop.errors import NotFound, SchemaError
from mloop.store.schema import DatasetRow, DatasetSchemaRow, IngestionRow


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    schema_version: int
    rows: int
    quarantined: int
    files: int
    bytes: int
    ingestions: int
    min_ts: datetime | None
    max_ts: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


class DatasetCatalog(Service):
    """Datasets of the project, for reading. Every method checks ``data.read``."""

    @property
    def root(self) -> str:
        """Where ``data_url`` is: a folder's path, or ``s3://bucket/prefix``."""
        return self._ctx.data.root

    def folder(self, name: str) -> str:
        """Where dataset ``name``'s files are (a folder's path, or an S3 prefix)."""
        return self._ctx.data.join(self.root, name)

    # ---- schema ---------------------------------------------------------------------------------------

    def schema(self, name: str) -> Dataset:
        self._authorize("data.read", f"dataset:{name}")
        stored, _ = self._stored_schema(name)
        if stored is None:
            raise NotFound(self._missing(name))
        return stored

    # ---- read -----------------------------------------------------------------------------------------

    def list(self) -> builtins.list[DatasetInfo]:
        self._authorize("data.read", "dataset:*")
        with self._ctx.store.read() as session:
            names = session.scalars(
                select(DatasetRow.name)
                .where(DatasetRow.project_id == self._ctx.project_id)
                .order_by(DatasetRow.name)
            ).all()
        return [self.info(n) for n in names]

    def info(self, name: str) -> DatasetInfo:
        self._authorize("data.read", f"dataset:{name}")
        with self._ctx.store.read() as session:
            row = session.scalar(select(DatasetRow).where(*self._where(name)))
            if row is None:
                raise NotFound(self._missing(name))
            ingestions = session.scalars(select(IngestionRow).where(IngestionRow.dataset_id == row.id)).all()
            version = session.scalar(
                select(func.max(DatasetSchemaRow.version)).where(DatasetSchemaRow.dataset_id == row.id)
            )
        stamps = [i.min_ts for i in ingestions if i.min_ts] + [i.max_ts for i in ingestions if i.max_ts]
        return DatasetInfo(
            name=name,
            schema_version=version or 0,
            rows=sum(i.rows_accepted for i in ingestions),
            quarantined=sum(i.rows_quarantined for i in ingestions),
            files=sum(len(i.files) for i in ingestions),
            bytes=sum(int(f["bytes"]) for i in ingestions for f in i.files),
            ingestions=len(ingestions),
            min_ts=min(stamps) if stamps else None,
            max_ts=max(stamps) if stamps else None,
            created_at=row.created_at,
        )

    def ingestions(self, name: str) -> builtins.list[IngestReport]:
        self._authorize("data.read", f"dataset:{name}")
        with self._ctx.store.read() as session:
            rows = session.scalars(
                select(IngestionRow)
                .join(DatasetRow)
                .where(*self._where(name))
                .order_by(IngestionRow.finished_at)
            ).all()
        if not rows:
            self._require(name)
        return [self._report(r, name) for r in rows]

    def files(self, name: str) -> builtins.list[str]:
        """The Parquet files of every committed ingestion (what readers and the feature store scan):
        paths, or ``s3://`` URLs when data_url is on S3."""
        self._authorize("data.read", f"dataset:{name}")
        files = self._committed_files(name)
        if not files:
            self._require(name)
        folder = self.folder(name)
        return [self._ctx.data.join(folder, f) for f in files]

    def read(
        self,
        name: str,
        *,
        columns: builtins.list[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows of ``name``, optionally only ``columns`` and timestamps in ``[start, end)``.

        A tensor column comes back as an object column of per-row NumPy arrays of its shape (None for a
        null row): ``np.stack(frame["image"].to_numpy())`` is the batch; :meth:`tensor` reads it whole.
        """
        dataset = self.schema(name)
        wanted = columns or dataset.column_names
        table = self._arrow(dataset, wanted, start, end, limit)
        if table is None:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in wanted})
        tensor_columns = [c for c in wanted if dataset.column(c).is_tensor]
        frame = table.drop_columns(tensor_columns).to_pandas()
        for column in tensor_columns:
            position = wanted.index(column)
            cells = tensors.cells(dataset.column(column), table[column])
            frame.insert(position, column, pd.Series(cells, dtype=object, index=frame.index))
        return frame

    def tensor(
        self,
        name: str,
        column: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> np.ndarray:
        """A fixed-shape tensor column as one NumPy array of shape ``(rows, *shape)``, in the order
        :meth:`read` gives the rows; zero-copy from the Arrow data DuckDB reads (one chunk, no nulls).

        >>> images = project.data.tensor("digits", "image")        # doctest: +SKIP
        >>> images.shape
        (60000, 1, 28, 28)
        >>> batch = torch.from_numpy(images)                       # doctest: +SKIP

        ``torch.from_numpy`` shares the memory (no copy); a variable-length column has no single array:
        read it with :meth:`read` (per-row arrays) instead.
        """
        dataset = self.schema(name)
        spec = dataset.column(column)
        if not spec.is_tensor or not spec.fixed:
            what = "variable-length tensor" if spec.is_tensor else spec.dtype
            raise SchemaError(
                f"Column {column!r} of {name!r} is a {what} column, not a fixed-shape tensor, so it has no "
                f"single array; read it with project.data.read({name!r}, columns=[{column!r}])."
            )
        table = self._arrow(dataset, [column], start, end, limit)
        if table is None:
            return np.zeros((0, *(spec.shape or ())), dtype=spec.element)
        try:
            return tensors.to_numpy(spec, table[column])
        except ValueError as exc:
            raise SchemaError(f"Dataset {name!r}: {exc}.") from None

    def _arrow(
        self,
        dataset: Dataset,
        columns: builtins.list[str],
        start: datetime | None,
        end: datetime | None,
        limit: int | None,
    ) -> pa.Table | None:
        """The rows as Arrow (None when the dataset has no files yet)."""
        name = dataset.name
        for column in columns:
            dataset.column(column)
        if dataset.timestamp is None and (start is not None or end is not None):
            raise SchemaError(
                f"Dataset {name!r} has no timestamp column, so start/end cannot select its rows. Read it "
                "without them, or declare a timestamp column in its schema."
            )
        files = self.files(name)
        if not files:
            return None
        cols = ", ".join(quote(c) for c in columns)
        where = []
        if dataset.timestamp and start is not None:
            where.append(f"{quote(dataset.timestamp)} >= {literal(as_utc(start).isoformat())}::TIMESTAMPTZ")
        if dataset.timestamp and end is not None:
            where.append(f"{quote(dataset.timestamp)} < {literal(as_utc(end).isoformat())}::TIMESTAMPTZ")
        import duckdb

        with duckdb.connect() as con, self._ctx.data.reaching():
            con.execute("SET TimeZone = 'UTC'")
            sql = f"SELECT {cols} FROM {self._ctx.parquet.scan(con, files)}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            return con.sql(sql).to_arrow_table()

    def quarantine(self, name: str, ingest_id: str | None = None) -> pd.DataFrame:
        """Quarantined rows with their ``_reason`` (all of them, or one ingestion's)."""
        reports = [
            r
            for r in self.ingestions(name)
            if r.quarantine and (ingest_id is None or r.ingest_id == ingest_id)
        ]
        if not reports:
            return pd.DataFrame(columns=["_reason"])
        import duckdb

        paths = [r.quarantine for r in reports if r.quarantine]
        with duckdb.connect() as con, self._ctx.data.reaching():
            return (
                con.sql(f"SELECT * FROM {self._ctx.parquet.scan(con, paths, union=True)}")
                .to_arrow_table()
                .to_pandas()
            )

    # ---- pages (counted and cut in the database) ------------------------------------------------------

    def dataset_page(self, *, offset: int = 0, limit: int = 50) -> tuple[builtins.list[DatasetSummary], int]:
        """Datasets by name, ``limit`` from ``offset``, and how many there are.

        >>> page, total = project.data.dataset_page(offset=0, limit=50)     # doctest: +SKIP
        """
        self._authorize("data.read", "dataset:*")
        with self._ctx.store.read() as session:
            return listing.datasets(session, self._ctx.project_id, *listing.bounds(offset, limit))

    def ingestion_page(
        self, name: str, *, offset: int = 0, limit: int = 50
    ) -> tuple[builtins.list[IngestReport], int]:
        """The dataset's ingestions, newest first, ``limit`` from ``offset``, and how many there are."""
        self._authorize("data.read", f"dataset:{name}")
        self._require(name)
        with self._ctx.store.read() as session:
            rows, total = listing.ingestions(
                session, self._ctx.project_id, name, *listing.bounds(offset, limit)
            )
            return [self._report(r, name) for r in rows], total

    def quarantine_page(self, name: str, *, offset: int = 0, limit: int = 50) -> tuple[pd.DataFrame, int]:
        """Quarantined rows with their reasons (oldest ingestion first), ``limit`` from ``offset``, and how
        many there are; :meth:`quarantine` reads them all."""
        paths = self._quarantine_paths(name)
        if not paths:
            return pd.DataFrame(columns=["_reason"]), 0
        import duckdb

        with duckdb.connect() as con, self._ctx.data.reaching():
            relation = self._ctx.parquet.scan(con, paths, union=True)
            table, total = listing.quarantine_page(con, relation, *listing.bounds(offset, limit))
        return table.to_pandas(), total

    def quarantine_batches(self, name: str, *, size: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Every quarantined row of the dataset, ``size`` at a time, read as the caller consumes them (a
        download streams them). The permission is checked now, before the first batch is asked for."""
        paths = self._quarantine_paths(name)
        return self._stream(paths, size) if paths else iter(())

    def _stream(self, paths: builtins.list[str], size: int) -> Iterator[pa.RecordBatch]:
        import duckdb

        with duckdb.connect() as con, self._ctx.data.reaching():
            yield from listing.batches(con, self._ctx.parquet.scan(con, paths, union=True), size)

    def _quarantine_paths(self, name: str) -> builtins.list[str]:
        self._authorize("data.read", f"dataset:{name}")
        self._require(name)
        with self._ctx.store.read() as session:
            relative = listing.quarantine_files(session, self._ctx.project_id, name)
        folder = self.folder(name)
        return [self._ctx.data.join(folder, q) for q in relative]

    # ---- helpers --------------------------------------------------------------------------------------

    def _where(self, name: str) -> tuple[Any, ...]:
        return (DatasetRow.project_id == self._ctx.project_id, DatasetRow.name == name)

    def _stored_schema(self, name: str) -> tuple[Dataset | None, int]:
        with self._ctx.store.read() as session:
            row = session.execute(
                select(DatasetSchemaRow.spec, DatasetSchemaRow.version)
                .join(DatasetRow)
                .where(*self._where(name))
                .order_by(DatasetSchemaRow.version.desc())
                .limit(1)
            ).first()
        if row is None:
            return None, 0
        return Dataset.from_dict(row.spec, origin=f"stored schema of {name!r}"), row.version

    def _ingestion_by_fingerprint(self, name: str, fingerprint: str) -> IngestionRow | None:
        with self._ctx.store.read() as session:
            return session.scalar(
                select(IngestionRow)
                .join(DatasetRow)
                .where(*self._where(name), IngestionRow.fingerprint == fingerprint)
            )

    def _committed_files(self, name: str) -> builtins.list[str]:
        with self._ctx.store.read() as session:
            lists = session.scalars(
                select(IngestionRow.files)
                .join(DatasetRow)
                .where(*self._where(name))
                .order_by(IngestionRow.finished_at)
            ).all()
        return [str(f["path"]) for files in lists for f in files]

    def _key_ranges(self, name: str) -> dict[str, dict[str, dict[str, str]]]:
        """Each committed file's key ranges (:mod:`mloop.data.keyrange`), where its entry records them."""
        with self._ctx.store.read() as session:
            lists = session.scalars(
                select(IngestionRow.files).join(DatasetRow).where(*self._where(name))
            ).all()
        folder, join = self.folder(name), self._ctx.data.join
        return {
            join(folder, str(f["path"])): dict(f["keys"]) for files in lists for f in files if f.get("keys")
        }

    def _report(self, row: IngestionRow, name: str, *, skipped: bool = False) -> IngestReport:
        folder, join = self.folder(name), self._ctx.data.join
        return IngestReport(
            dataset=name,
            source=row.source,
            fingerprint=row.fingerprint,
            rows_read=row.rows_read,
            rows_accepted=row.rows_accepted,
            rows_quarantined=row.rows_quarantined,
            by_reason=dict(row.reasons),
            ingest_id=row.id,
            files=[join(folder, str(f["path"])) for f in row.files],
            quarantine=join(folder, row.quarantine) if row.quarantine else None,
            schema_version=row.schema_version,
            min_ts=row.min_ts,
            max_ts=row.max_ts,
            skipped=skipped,
        )

    def _require(self, name: str) -> None:
        """An unknown name is an error, not an empty answer: a typo must not look like an empty dataset."""
        with self._ctx.store.read() as session:
            found = session.scalar(select(DatasetRow.id).where(*self._where(name)))
        if found is None:
            raise NotFound(self._missing(name))

    def _missing(self, name: str) -> str:
        with self._ctx.store.read() as session:
            names = session.scalars(
                select(DatasetRow.name).where(DatasetRow.project_id == self._ctx.project_id)
            ).all()
        return (
            f"No dataset named {name!r}"
            + (f" (datasets: {', '.join(names)})" if names else "")
            + ". Create it by ingesting a file: mloop data ingest FILE --dataset NAME."
        )


def dataset(session: Session, project_id: int, name: str) -> DatasetRow | None:
    return session.scalar(
        select(DatasetRow).where(DatasetRow.project_id == project_id, DatasetRow.name == name)
    )


def newest_schema_version(session: Session, dataset_id: int) -> int | None:
    return session.scalar(
        select(func.max(DatasetSchemaRow.version)).where(DatasetSchemaRow.dataset_id == dataset_id)
    )


def quarantine_files(session: Session, project_id: int, name: str) -> list[str]:
    """The quarantine files of the dataset's committed ingestions, relative to its folder."""
    return [
        q
        for q in session.scalars(
            select(IngestionRow.quarantine)
            .join(DatasetRow)
            .where(
                DatasetRow.project_id == project_id,
                DatasetRow.name == name,
                IngestionRow.quarantine.is_not(None),
            )
        )
        if q is not None
    ]

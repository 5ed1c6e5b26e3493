"""Pages of datasets, ingestions and quarantined rows, counted and cut in the database (SQL ``LIMIT``/
``OFFSET`` for the metadata, DuckDB over the quarantine files), for lists that must not load everything:
the dashboard's Data page. :class:`~mloop.data.queries.DatasetCatalog` exposes them with their permission
checks (``dataset_page``, ``ingestion_page``, ``quarantine_page``, ``quarantine_batches``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop.store.schema import DatasetRow, DatasetSchemaRow, IngestionRow

MAX_PAGE = 500  # rows a page may ask for: a larger ``limit`` is cut to this


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset in a list: its totals and its newest ingestion, from the metadata alone."""

    name: str
    schema_version: int
    rows: int
    quarantined: int
    ingestions: int
    last_ingestion: datetime | None
    created_at: datetime


def bounds(offset: int, limit: int) -> tuple[int, int]:
    """``offset`` and ``limit`` made safe for SQL: not negative, a limit of 1 to :data:`MAX_PAGE`."""
    return max(0, int(offset)), min(max(1, int(limit)), MAX_PAGE)


def datasets(session: Session, project_id: int, offset: int, limit: int) -> tuple[list[DatasetSummary], int]:
    """A page of the project's datasets by name, with the number of datasets."""
    totals = (
        select(
            IngestionRow.dataset_id.label("id"),
            func.sum(IngestionRow.rows_accepted).label("rows"),
            func.sum(IngestionRow.rows_quarantined).label("quarantined"),
            func.count(IngestionRow.id).label("ingestions"),
            func.max(IngestionRow.finished_at).label("last"),
        )
        .group_by(IngestionRow.dataset_id)
        .subquery()
    )
    versions = (
        select(DatasetSchemaRow.dataset_id.label("id"), func.max(DatasetSchemaRow.version).label("version"))
        .group_by(DatasetSchemaRow.dataset_id)
        .subquery()
    )
    where = DatasetRow.project_id == project_id
    query = (
        select(DatasetRow.name, DatasetRow.created_at, versions.c.version, totals.c.rows, totals.c.quarantined,
               totals.c.ingestions, totals.c.last)
        .outerjoin(totals, totals.c.id == DatasetRow.id)
        .outerjoin(versions, versions.c.id == DatasetRow.id)
        .where(where)
        .order_by(DatasetRow.name)
        .offset(offset)
        .limit(limit)
    )  # fmt: skip
    rows = [
        DatasetSummary(name=r.name, schema_version=r.version or 0, rows=int(r.rows or 0),
                       quarantined=int(r.quarantined or 0), ingestions=int(r.ingestions or 0),
                       last_ingestion=r.last, created_at=r.created_at)
        for r in session.execute(query)
    ]  # fmt: skip
    total = session.scalar(select(func.count(DatasetRow.id)).where(where)) or 0
    return rows, int(total)


def ingestions(
    session: Session, project_id: int, name: str, offset: int, limit: int
) -> tuple[list[IngestionRow], int]:
    """A page of a dataset's ingestions, newest first, with their number."""
    where = (DatasetRow.project_id == project_id, DatasetRow.name == name)
    rows = session.scalars(
        select(IngestionRow)
        .join(DatasetRow)
        .where(*where)
        .order_by(IngestionRow.finished_at.desc(), IngestionRow.id)
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.scalar(select(func.count(IngestionRow.id)).join(DatasetRow).where(*where)) or 0
    return list(rows), int(total)


def quarantine_page(con: Any, relation: str, offset: int, limit: int) -> tuple[pa.Table, int]:
    """Rows ``offset`` to ``offset + limit`` of the quarantine files in ``relation`` (in file order, then
    row order: DuckDB keeps the order it reads), and how many there are."""
    total = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    table = con.sql(f"SELECT * FROM {relation} LIMIT {int(limit)} OFFSET {int(offset)}").to_arrow_table()
    return table, int(total)


def batches(con: Any, relation: str, size: int) -> Iterator[pa.RecordBatch]:
    """Every row of ``relation``, ``size`` rows at a time."""
    reader = con.sql(f"SELECT * FROM {relation}").to_arrow_reader(size)
    yield from reader


def quarantine_files(session: Session, project_id: int, name: str) -> list[str]:
    """The dataset's quarantine files (relative to its folder), oldest ingestion first."""
    return [
        q
        for q in session.scalars(
            select(IngestionRow.quarantine)
            .join(DatasetRow)
            .where(DatasetRow.project_id == project_id, DatasetRow.name == name,
                   IngestionRow.quarantine.is_not(None))
            .order_by(IngestionRow.finished_at, IngestionRow.id)
        )
        if q is not None
    ]  # fmt: skip

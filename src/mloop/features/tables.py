"""Where each feature view's rows are, as DuckDB relations (:class:`~mloop.features.offline.Table`).

Parquet sources are read where they lie; dataset sources through the dataset's committed file list (so
a half-written ingestion is never seen); push sources through their offline log, each event once.
"""

from __future__ import annotations

from pathlib import Path

from mloop.crypto import PLAIN, ParquetFiles
from mloop.data.schema import DTYPES
from mloop.data.service import DataService
from mloop.data.sql import quote
from mloop.errors import SchemaError
from mloop.features.definitions import DatasetSource, FeatureView, Field, PushSource
from mloop.features.offline import Table

EVENT_ID = "_event_id"
PUSHED_AT = "_pushed_at"


def push_log(data_root: Path, source: str) -> Path:
    return data_root / "_push" / source


def table_for(view: FeatureView, data: DataService, data_root: Path, parquet: ParquetFiles = PLAIN) -> Table:
    """``parquet`` reads the files mloop keeps (datasets, the push log), encrypted or not."""
    source = view.source
    if isinstance(source, PushSource):
        return push_table(source, data_root, parquet)
    if isinstance(source, DatasetSource):
        files = data.files(source.dataset)
        if not files:
            raise SchemaError(
                f"Feature view {view.name!r} reads dataset {source.dataset!r}, which has no data yet; "
                f"ingest some: mloop data ingest FILE --dataset {source.dataset}."
            )
        timestamp = source.timestamp or data.schema(source.dataset).timestamp
        if not timestamp:
            raise SchemaError(
                f"Dataset {source.dataset!r} has no timestamp column, so view {view.name!r} cannot be point-in-time "
                "joined; declare one in its schema or pass DatasetSource(..., timestamp=...)."
            )
        relation, arrow = parquet.relation(files, union=True)
        return Table(relation, timestamp, source.created_timestamp, arrow)
    files = source.files()  # type: ignore[union-attr]  # the user's own files: read as they are
    assert source is not None and source.timestamp is not None
    return Table(PLAIN.relation(files, union=True)[0], source.timestamp, source.created_timestamp)


def push_table(source: PushSource, data_root: Path, parquet: ParquetFiles = PLAIN) -> Table:
    """The push log, each event once (a retried push is stored once)."""
    folder = push_log(data_root, source.name)
    files = sorted(folder.rglob("*.parquet")) if folder.exists() else []
    columns = ", ".join(quote(f.name) for f in source.schema)
    arrow: dict[str, object] = {}
    if not files:
        empty = ", ".join(f"CAST(NULL AS {_sql_type(f)}) AS {quote(f.name)}" for f in source.schema)
        relation = f"(SELECT {empty}, NULL::VARCHAR AS {EVENT_ID} WHERE false)"
    else:
        read, arrow = parquet.relation(files, union=True)
        relation = (
            f"(SELECT {columns}, {EVENT_ID} FROM {read} "
            f"QUALIFY row_number() OVER (PARTITION BY {EVENT_ID} ORDER BY {PUSHED_AT}) = 1)"
        )
    assert source.timestamp is not None
    return Table(relation, source.timestamp, source.created_timestamp, arrow)


def _sql_type(field: Field) -> str:
    if field.shape is None:
        return DTYPES[field.dtype]
    return ("UTINYINT" if field.dtype == "uint8" else DTYPES[field.dtype]) + "[]"

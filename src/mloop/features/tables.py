"""Where each feature view's rows are, as DuckDB relations (:class:`~mloop.features.offline.Table`).

Parquet sources are read where they lie; dataset sources through the dataset's committed file list (so
a half-written ingestion is never seen); push sources through their offline log, each event once.
"""

from __future__ import annotations

from mloop.crypto import PLAIN, ParquetFiles
from mloop.data.schema import DTYPES
from mloop.data.service import DataService
from mloop.data.sql import quote
from mloop.errors import SchemaError
from mloop.features.definitions import DatasetSource, FeatureView, Field, PushSource
from mloop.features.offline import Table
from mloop.storage import DataStorage

EVENT_ID = "_event_id"
PUSHED_AT = "_pushed_at"


def push_log(storage: DataStorage, source: str) -> str:
    """Where push source ``source``'s offline log is (``<data_url>/_push/<source>``)."""
    return storage.join(storage.root, "_push", source) if source else storage.join(storage.root, "_push")


def table_for(
    view: FeatureView, data: DataService, storage: DataStorage, parquet: ParquetFiles = PLAIN
) -> Table:
    """``parquet`` reads the files mloop keeps (datasets, the push log), encrypted or not, where
    ``storage`` keeps them (a folder, or S3: then scanned in place through pyarrow)."""
    source = view.source
    if isinstance(source, PushSource):
        return push_table(source, storage, parquet)
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


def push_table(source: PushSource, storage: DataStorage, parquet: ParquetFiles = PLAIN) -> Table:
    """The push log, each event once (a retried push is stored once)."""
    files = storage.list(push_log(storage, source.name))
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

"""Push: rows from applications, readable online at once and appended to an offline log.

Every pushed row gets an event id (a hash of its content and its position among identical rows in the
same push), so a retried push is one event online and, through the log's de-duplication, offline too.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from mloop._time import utcnow
from mloop.crypto import PLAIN, ParquetFiles
from mloop.data import tensors
from mloop.data.schema import Column
from mloop.errors import SchemaError
from mloop.features.aggregate import to_micros
from mloop.features.definitions import FeatureView, Field, PushSource
from mloop.features.keys import typed_array
from mloop.features.online.base import OnlineEvent, OnlineRow, entity_key
from mloop.features.tables import EVENT_ID, PUSHED_AT
from mloop.storage import DataStorage


def prepare(source: PushSource, rows: Any) -> pa.Table:
    """Check ``rows`` against the push source's schema and return them typed, with their event ids."""
    frame = _frame(rows, source)
    names = [f.name for f in source.schema]
    missing = [n for n in names if n not in frame.columns]
    extra = [c for c in frame.columns if c not in names]
    if missing or extra:
        raise SchemaError(
            f"Rows pushed to {source.name!r} do not match its schema {names}: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unknown {extra}" if extra else "")
            + ". Send exactly the schema's fields."
        )
    columns = {}
    for field in source.schema:
        if field.shape is not None:
            columns[field.name] = _tensor(frame[field.name], field, source.name)
        else:
            columns[field.name] = _column(frame[field.name], field.name, field.dtype, source.name)
    table = pa.table(columns)
    assert source.timestamp is not None
    if table[source.timestamp].null_count:
        raise SchemaError(
            f"Rows pushed to {source.name!r} need a time in {source.timestamp!r}; some are empty."
        )
    return table.append_column(EVENT_ID, pa.array(event_ids(table.to_pylist()), pa.string()))


def check_keys(view: FeatureView, table: pa.Table, source: str) -> None:
    """Every pushed row has ``view``'s join keys: a row without one would be stored online under an
    empty key, where no lookup finds it."""
    for key in view.join_keys:
        nulls = table[key].is_null().to_pylist() if key in table.column_names else []
        empty = [i for i, null in enumerate(nulls) if null]
        if empty:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
            raise SchemaError(
                f"Push to {source!r}: {key!r}, the join key of feature view {view.name!r}, is empty in "
                f"row(s) {shown}; every row needs it. Nothing was written."
            )


def event_ids(rows: list[dict[str, Any]]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for row in rows:
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=_text).encode()).hexdigest()[:24]
        out.append(f"{digest}-{seen[digest]}")
        seen[digest] += 1
    return out


def append_log(table: pa.Table, folder: str, storage: DataStorage, parquet: ParquetFiles = PLAIN) -> str:
    """Write one Parquet file of pushed rows into the log at ``folder``, atomically: a local file written
    and fsynced, then published (renamed into the folder, or uploaded whole to S3)."""
    now = utcnow()
    table = table.append_column(PUSHED_AT, pa.array([now] * table.num_rows, pa.timestamp("us", tz="UTC")))
    name = f"{now:%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
    target = storage.join(folder, f"date={now:%Y-%m-%d}", name)
    staging = Path(target).parent if not storage.remote else storage.staging(folder)
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f".{name}.tmp"
    try:
        with tmp.open("wb") as handle:
            parquet.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        with storage.reaching():
            storage.publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def online_records(view: FeatureView, table: pa.Table) -> tuple[list[OnlineRow], list[OnlineEvent]]:
    """What a push writes to the online store for ``view``: its latest row per entity, and its events."""
    assert isinstance(view.source, PushSource) and view.source.timestamp is not None
    ts_name, created_name = view.source.timestamp, view.source.created_timestamp
    rows: dict[str, OnlineRow] = {}
    events: list[OnlineEvent] = []
    agg_columns = sorted({a.column for a in view.aggregations})
    plain = [f.name for f in view.features]
    for record in table.to_pylist():
        key = entity_key([record[k] for k in view.join_keys])
        ts = to_micros(record[ts_name])
        created = to_micros(record[created_name]) if created_name and record.get(created_name) else 0
        if plain:
            row = OnlineRow(key, ts, created, {n: plain_value(record[n]) for n in plain})
            current = rows.get(key)
            if current is None or (ts, created) >= (current.event_ts, current.created_ts):
                rows[key] = row
        if agg_columns:
            values = {c: plain_value(record[c]) for c in agg_columns}
            values["_created"] = created
            events.append(OnlineEvent(key, ts, record[EVENT_ID], values))
    return list(rows.values()), events


def plain_value(value: Any) -> Any:
    """A feature value as the online store keeps it: times as epoch microseconds, dates as ISO text."""
    if isinstance(value, datetime | pd.Timestamp):
        return to_micros(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _frame(rows: Any, source: PushSource) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, pa.Table):
        return rows.to_pandas()
    if isinstance(rows, dict):
        rows = [rows] if not any(isinstance(v, list | tuple) for v in rows.values()) else rows
        return pd.DataFrame(rows)
    if isinstance(rows, list | tuple):
        if not all(isinstance(r, dict) for r in rows):
            raise SchemaError(f"Push to {source.name!r}: give rows as a DataFrame or a list of dicts.")
        return pd.DataFrame(list(rows))
    raise SchemaError(f"Push to {source.name!r}: cannot read rows from a {type(rows).__name__}.")


def _column(series: pd.Series, name: str, dtype: str, source: str) -> pa.Array:
    if dtype != "timestamp":
        return typed_array(series, dtype, f"Push to {source!r}: field {name!r}")
    try:
        parsed = series if pd.api.types.is_datetime64_any_dtype(series) else _parse_times(series)
    except (ValueError, TypeError) as exc:
        raise SchemaError(
            f"Push to {source!r}: field {name!r} does not hold {dtype} values ({exc})."
        ) from None
    if getattr(parsed.dt, "tz", None) is None:
        raise SchemaError(
            f"Push to {source!r}: {name!r} holds naive timestamps; send them with a time zone "
            "(e.g. 2026-01-01T10:00:00Z), or localize them: df[col].dt.tz_localize('UTC')."
        )
    return typed_array(parsed.dt.tz_convert("UTC"), dtype, f"Push to {source!r}: field {name!r}")


def _tensor(series: pd.Series, field: Field, source: str) -> pa.Array:
    """Pushed arrays or nested lists of the field's shape, checked as a dataset's tensor column is; the
    first bad row refuses the push (naming the field, the expected and the got shape)."""
    column = Column(field.name, "tensor", shape=field.shape, element=field.dtype)
    checked = tensors.check(column, tensors.arrow_column(series.tolist()), required=False)
    bad = [(i, r) for i, r in enumerate(checked.reasons) if r is not None]
    if bad:
        row, reason = bad[0]
        raise SchemaError(
            f"Push to {source!r}: row {row}: {reason}"
            + (f" ({len(bad)} rows are wrong)" if len(bad) > 1 else "")
            + "."
        )
    return checked.values.storage  # a flat fixed-size list: what the push log and the online store keep


def _parse_times(series: pd.Series) -> pd.Series:
    try:
        return pd.to_datetime(series, format="ISO8601")
    except ValueError:  # several UTC offsets in one column: only possible when every value has one
        return pd.to_datetime(series, format="ISO8601", utc=True)


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

"""Materialization: compute what the online store should hold from a view's offline rows, in chunks.

Plain features: the latest row per entity in each chunk, written forward-only. Aggregations: every event
whose time could still fall in a window at the end of the run, with a stable event id (a hash of the whole
source row and its position among identical rows), so re-running a chunk after a crash adds nothing twice.
Values are encoded to JSON by DuckDB, vectorised; only keys are built in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mloop.data.sql import literal, quote
from mloop.errors import SchemaError
from mloop.features.definitions import MAX_TENSOR_ELEMENTS, FeatureView, PushSource
from mloop.features.offline import Table
from mloop.features.online.base import OnlineEvent, OnlineRow, OnlineStore, entity_key
from mloop.features.tables import EVENT_ID

BATCH = 50_000


@dataclass
class Chunk:
    start: datetime
    end: datetime
    rows: int = 0
    values: int = 0
    last_event_ts: datetime | None = None


def chunks(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    cursor = start
    while cursor < end:
        nxt = min(cursor + size, end)
        yield cursor, nxt
        cursor = nxt


def materialize_chunk(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    table: Table,
    store: OnlineStore,
    namespace: str,
    chunk: Chunk,
    events_after: datetime | None,
) -> Chunk:
    """Write one chunk ``(start, end]`` of ``view`` to the online store; returns what was written."""
    ts = quote(table.timestamp)
    window = f"{ts} > {_at(chunk.start)} AND {ts} <= {_at(chunk.end)}"
    created = f"COALESCE(epoch_us({quote(table.created_timestamp)}), 0)" if table.created_timestamp else "0"
    keys = ", ".join(quote(k) for k in view.join_keys)
    if view.features:
        fields = ", ".join(f"{quote(f.name)} := {_json_value(f.name, f.dtype)}" for f in view.features)
        # Exact ties (same keys, event and created time) go to the row with the largest feature values, in
        # declared order, nulls first: the rule the offline store applies, so both pick the same row.
        ties = ", ".join(f"{quote(f.name)} DESC NULLS FIRST" for f in view.features)
        result = con.sql(
            f"SELECT {keys}, epoch_us({ts}) AS __ts, {created} AS __created, to_json(struct_pack({fields})) AS __v "
            f"FROM {table.relation} WHERE {window} "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {ts} DESC, {created} DESC, {ties}) = 1"
        ).to_arrow_table()
        rows = [
            OnlineRow(k, t, c, v)  # values pre-encoded as JSON text by DuckDB
            for k, t, c, v in zip(
                _keys(result, view.join_keys),
                result["__ts"].to_pylist(),
                result["__created"].to_pylist(),
                result["__v"].to_pylist(),
                strict=True,
            )
        ]
        for start in range(0, len(rows), BATCH):
            store.write(namespace, rows[start : start + BATCH])
        chunk.rows += len(rows)
        chunk.values += len(rows) * len(view.features)
        _latest(chunk, result["__ts"])
    if view.aggregations:
        lower = max(chunk.start, events_after) if events_after else chunk.start
        if lower < chunk.end:
            window = f"{ts} > {_at(lower)} AND {ts} <= {_at(chunk.end)}"
            columns = sorted({a.column for a in view.aggregations})
            fields = ", ".join(f"{quote(c)} := {quote(c)}" for c in columns)
            if isinstance(view.source, PushSource):
                ident = EVENT_ID
            else:
                ident = "printf('%016x', hash(src)) || '-' || CAST(row_number() OVER (PARTITION BY hash(src)) - 1 AS VARCHAR)"
            result = con.sql(
                f"SELECT {keys}, epoch_us({ts}) AS __ts, {ident} AS __id, "
                f"to_json(struct_pack({fields}, _created := {created})) AS __v "
                f"FROM {table.relation} AS src WHERE {window}"
            ).to_arrow_table()
            events = [
                OnlineEvent(k, t, i, v)
                for k, t, i, v in zip(
                    _keys(result, view.join_keys),
                    result["__ts"].to_pylist(),
                    result["__id"].to_pylist(),
                    result["__v"].to_pylist(),
                    strict=True,
                )
            ]
            for start in range(0, len(events), BATCH):
                store.add_events(namespace, events[start : start + BATCH])
            chunk.values += len(events) * len(columns)
            if not view.features:
                chunk.rows += len(events)
            _latest(chunk, result["__ts"])
    return chunk


def check_timestamps(con: duckdb.DuckDBPyConnection, view: FeatureView, table: Table) -> None:
    types = {
        name: str(kind)
        for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {table.relation}").fetchall()
    }
    needed = [*view.join_keys, table.timestamp, *(f.name for f in view.features),
              *(a.column for a in view.aggregations)]  # fmt: skip
    missing = [c for c in needed if c not in types]
    if missing:
        raise SchemaError(
            f"The source of feature view {view.name!r} has no column(s) {sorted(set(missing))} "
            f"(it has {sorted(types)}); fix the view's fields or the source."
        )
    for f in view.features:
        if f.shape is not None:
            check_tensor(con, view, table, f.name, f.size, types[f.name])
    if types[table.timestamp] == "TIMESTAMPTZ_NS":
        raise SchemaError(
            f"Feature view {view.name!r}: source column {table.timestamp!r} has nanosecond precision; the feature "
            "store keeps microseconds. Write it as microseconds (pandas: df[col] = "
            "df[col].astype('datetime64[us, UTC]'))."
        )
    if types[table.timestamp] != "TIMESTAMP WITH TIME ZONE":
        raise SchemaError(
            f"Feature view {view.name!r}: source column {table.timestamp!r} is {types[table.timestamp]}, not a "
            "timezone-aware timestamp. Write it as UTC (pandas: df[col] = df[col].dt.tz_localize('UTC'))."
        )


def check_tensor(
    con: duckdb.DuckDBPyConnection, view: FeatureView, table: Table, name: str, size: int, kind: str
) -> None:
    """A tensor feature's source column holds lists of exactly ``size`` values (nested lists are counted
    flat): the online store keeps each value whole, so a larger one is refused here, before anything is
    written, and a smaller one would serve a wrong shape."""
    where = f"Feature view {view.name!r}: feature {name!r}"
    if not kind.endswith("]"):
        raise SchemaError(f"{where} is a tensor but its source column is {kind}; give it lists or arrays.")
    column = quote(name)
    leaves = column
    for _ in range(kind.count("[") - 1):
        leaves = f"flatten({leaves})"
    found = con.sql(
        f"SELECT count(*), max(len({leaves})) FROM {table.relation} "
        f"WHERE {column} IS NOT NULL AND len({leaves}) <> {size}"
    ).fetchall()[0]
    if found[0]:
        raise SchemaError(
            f"{where} holds {size} values per row (its shape), but {found[0]} source row(s) hold another number "
            f"(up to {found[1]}). Fix the source rows, or the feature's shape (at most {MAX_TENSOR_ELEMENTS})."
        )


def span(con: duckdb.DuckDBPyConnection, table: Table) -> tuple[datetime | None, datetime | None]:
    """The first and last event time in the source."""
    result = con.sql(
        f"SELECT min({quote(table.timestamp)}) AS lo, max({quote(table.timestamp)}) AS hi FROM {table.relation}"
    ).to_arrow_table()
    lo, hi = result["lo"][0].as_py(), result["hi"][0].as_py()
    return lo, hi


def connect(workdir: Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if workdir is not None:
        con.execute(f"SET temp_directory = {literal(str(workdir))}")
    return con


Progress = Callable[[str, float], None]


def _keys(result: pa.Table, join_keys: list[str]) -> list[str]:
    if len(join_keys) == 1 and pa.types.is_integer(result[join_keys[0]].type):
        return pc.cast(result[join_keys[0]], pa.string()).to_pylist()
    columns = [result[k].to_pylist() for k in join_keys]
    return [entity_key(values) for values in zip(*columns, strict=True)]


def _json_value(name: str, dtype: str) -> str:
    column = quote(name)
    if dtype == "timestamp":
        return f"epoch_us({column})"
    if dtype == "date":
        return f"CAST({column} AS VARCHAR)"
    return column


def _at(value: datetime) -> str:
    return f"TIMESTAMPTZ {literal(value.isoformat())}"


def _latest(chunk: Chunk, column: pa.ChunkedArray) -> None:
    if len(column) == 0:
        return
    from datetime import UTC

    newest = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=pc.max(column).as_py())
    if chunk.last_event_ts is None or newest > chunk.last_event_ts:
        chunk.last_event_ts = newest

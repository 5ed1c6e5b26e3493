"""The offline store: point-in-time correct training sets, computed by DuckDB.

For each entity row (join keys k, time t) a plain feature takes the source row with keys k and the
latest event time <= t, and >= t - ttl when the view has a ttl; ties on event time go to the latest
created time. A window aggregation covers the events of k in (t - window, t]. Every time is compared at
microsecond precision, in UTC (the online side, :mod:`mloop.features.aggregate`, computes the same
values from the same definitions).

>>> train = historical(                                                       # doctest: +SKIP
...     labels_df, [(txn_stats, ["amount_mean_1h", "amount_count_24h"])],
...     {"customer_txn_stats": Table("read_parquet(['txns.parquet'])", "ts", "created")},
...     timestamp="event_time",
... )
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop.data.sql import quote
from mloop.errors import MalformedInput, SchemaError
from mloop.features.aggregation import NUMERIC
from mloop.features.definitions import Aggregation, FeatureView
from mloop.features.window_sql import (
    FLOATS,
    INTEGERS,
    Source,
    interval,
    sql_time,
    window_filter,
    window_queries,
)


@dataclass(frozen=True)
class Table:
    """Where a feature view's rows live, for DuckDB: ``relation`` is anything that can follow ``FROM``
    (``read_parquet([...])``, a view name); ``timestamp`` and ``created_timestamp`` name its columns."""

    relation: str
    timestamp: str
    created_timestamp: str | None = None
    arrow: Mapping[str, Any] = field(
        default_factory=dict
    )  # Arrow datasets the relation names (encrypted files)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Register the Arrow datasets the relation reads on ``con`` (nothing for plain Parquet)."""
        for name, dataset in self.arrow.items():
            con.register(name, dataset)


_STRINGS = {"VARCHAR"}
NULLED = "nulled_windows"  # the frame.attrs key of the rows nulled by min_count, per feature
log = logging.getLogger(__name__)
_LOCALIZE = 'df[{col!r}] = df[{col!r}].dt.tz_localize("UTC")'


def historical(
    entity_df: pd.DataFrame,
    requests: Sequence[tuple[FeatureView, Sequence[str]]],
    tables: Mapping[str, Table],
    *,
    timestamp: str,
    full_feature_names: bool = False,
    workdir: Path | None = None,
    memory_limit: str | None = None,
) -> pd.DataFrame:
    """``entity_df`` with the requested features of each view as of each row's ``timestamp``.

    One output row per input row, in input order (duplicates kept, the index unchanged): every
    ``entity_df`` column, then each requested feature, named ``feature`` or, with ``full_feature_names``,
    ``view__feature``. DuckDB spills to ``workdir`` when the data outgrows ``memory_limit``. Aggregations
    with a ``min_count`` report how many of their rows are null for too few readings in
    ``frame.attrs["nulled_windows"]`` (``{output name: rows}``), and a warning is logged when any are.

    >>> train = historical(labels, [(stats, ["amount_sum_1h"])],                # doctest: +SKIP
    ...                    {"stats": Table("read_parquet(['t.parquet'])", "ts")}, timestamp="ts")
    """
    plans = _plan(entity_df, requests, tables, full_feature_names)
    config: dict[str, Any] = {}
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(workdir)
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    keys = sorted({key for plan in plans for key in plan.view.join_keys})
    entities = _entity_table(entity_df, timestamp, keys)
    entity_keys = {key: f"_e{i}" for i, key in enumerate(keys)}
    bounds = _bounds(entities.column("_t"))
    names: list[str] = []
    columns: list[pa.ChunkedArray] = []
    nulled: dict[str, int] = {}
    with duckdb.connect(config=config) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_entities", entities)
        for plan in plans:
            plan.table.attach(con)
        described = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE _entities)").fetchall())
        entity_types = {key: described[internal] for key, internal in entity_keys.items()}
        for plan in plans:
            plan.source_types = _describe(con, plan)
            _check_source(plan, entity_types)
            found: dict[str, pa.ChunkedArray] = {}
            for query in _queries(plan, entity_keys, bounds):
                result = _run(con, query, entities.num_rows)
                found.update((name, result.column(column)) for column, name in query.outputs)
                nulled.update(
                    (name, int(pc.sum(result.column(column)).as_py() or 0)) for column, name in query.sparse
                )
            names += plan.outputs
            columns += [found[name] for name in plan.outputs]
    features = pa.Table.from_arrays(columns, names=names).to_pandas() if names else pd.DataFrame()
    features.index = entity_df.index
    frame = pd.concat([entity_df, features], axis=1) if names else entity_df.copy()
    if nulled:
        frame.attrs[NULLED] = nulled
        sparse = {name: n for name, n in nulled.items() if n}
        if sparse:
            log.warning("Null for too few readings (under min_count), rows per feature: %s", sparse)
    return frame


@dataclass
class _Plan:
    view: FeatureView
    table: Table
    plain: list[tuple[str, str]]  # (feature, output column)
    aggregations: list[tuple[Aggregation, str]]
    outputs: list[str]  # in the order requested
    source_types: dict[str, str] | None = None


def _plan(
    entity_df: pd.DataFrame,
    requests: Sequence[tuple[FeatureView, Sequence[str]]],
    tables: Mapping[str, Table],
    full_feature_names: bool,
) -> list[_Plan]:
    plans: list[_Plan] = []
    taken = {str(c): "a column of entity_df" for c in entity_df.columns}
    for view, wanted in requests:
        if isinstance(wanted, str):
            raise SchemaError(f"Features of view {view.name!r} must be a list of names, like [{wanted!r}].")
        if view.name not in tables:
            raise SchemaError(
                f"No table for feature view {view.name!r}: pass tables={{{view.name!r}: Table(...)}}."
            )
        plan = _Plan(view, tables[view.name], [], [], [])
        by_name = {a.feature: a for a in view.aggregations}
        plain = {f.name for f in view.features}
        for feature in wanted:
            output = f"{view.name}__{feature}" if full_feature_names else feature
            if feature in plain:
                plan.plain.append((feature, output))
            elif feature in by_name:
                plan.aggregations.append((by_name[feature], output))
            else:
                raise SchemaError(
                    f"Feature view {view.name!r} has no feature {feature!r}; it has {view.feature_names}."
                )
            if output in taken:
                fix = "" if full_feature_names else " Pass full_feature_names=True to name it view__feature."
                raise SchemaError(
                    f"Output column {output!r} of view {view.name!r} clashes with {taken[output]}.{fix}"
                )
            taken[output] = f"a feature of view {view.name!r}"
            plan.outputs.append(output)
        plans.append(plan)
    return plans


def _entity_table(entity_df: pd.DataFrame, timestamp: str, keys: list[str]) -> pa.Table:
    """The columns DuckDB needs: the join keys as _e0.., the time as _t (microseconds, UTC), and _rid."""
    columns = list(entity_df.columns)
    for name in [timestamp, *keys]:
        if name not in columns:
            what = "the timestamp column" if name == timestamp else "a join key of a requested view"
            raise SchemaError(
                f"entity_df has no column {name!r} ({what}); add it, or rename yours: "
                f"df = df.rename(columns={{'<yours>': {name!r}}}). It has {columns}."
            )
        if columns.count(name) > 1:
            raise SchemaError(f"entity_df has two columns named {name!r}; keep one.")
    arrays = {f"_e{i}": _arrow(entity_df[key], key) for i, key in enumerate(keys)}
    times = _arrow(entity_df[timestamp], timestamp)
    if not pa.types.is_timestamp(times.type):
        raise SchemaError(
            f"entity_df column {timestamp!r} must hold UTC timestamps, not {times.type}: "
            f"df[{timestamp!r}] = pd.to_datetime(df[{timestamp!r}], utc=True)."
        )
    if times.type.tz is None:
        raise SchemaError(
            f"entity_df column {timestamp!r} holds naive timestamps; mloop needs them UTC-aware: "
            + _LOCALIZE.format(col=timestamp)
            + " (if they are in UTC)."
        )
    if times.null_count:
        raise SchemaError(
            f"entity_df column {timestamp!r} has {times.null_count} empty value(s); every row needs a time: "
            f"df = df.dropna(subset=[{timestamp!r}])."
        )
    arrays["_t"] = pc.cast(times, pa.timestamp("us", "UTC"), safe=False)
    arrays["_rid"] = pa.array(np.arange(len(entity_df), dtype=np.int64))
    return pa.table(arrays)


def _arrow(series: pd.Series, name: str) -> pa.Array:
    try:
        return pa.Array.from_pandas(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"entity_df column {name!r} mixes value types ({exc}); give it one type.") from None


def _bounds(times: pa.ChunkedArray) -> tuple[int, int] | None:
    """The first and last entity time, in microseconds: source rows far outside them cannot matter."""
    if len(times) == 0:
        return None
    low, high = pc.min_max(times.cast(pa.int64())).values()
    return low.as_py(), high.as_py()


def _describe(con: duckdb.DuckDBPyConnection, plan: _Plan) -> dict[str, str]:
    try:
        rows = con.sql(f"DESCRIBE SELECT * FROM {plan.table.relation}").fetchall()
    except duckdb.Error as exc:
        raise MalformedInput(
            f"The source of feature view {plan.view.name!r} ({plan.table.relation}) cannot be read: {exc}"
        ) from None
    return {str(row[0]): str(row[1]) for row in rows}


def _check_source(plan: _Plan, entity_types: Mapping[str, str]) -> None:
    view, table, types = plan.view, plan.table, plan.source_types
    assert types is not None
    where = f"the source of feature view {view.name!r} ({table.relation})"
    declared = [*view.join_keys, table.timestamp, *(f.name for f in view.features)]
    declared += [a.column for a in view.aggregations]
    if table.created_timestamp:
        declared.append(table.created_timestamp)
    missing = [c for c in dict.fromkeys(declared) if c not in types]
    if missing:
        raise SchemaError(
            f"{where} has no column(s) {missing}; it has {list(types)}. "
            "Add them to the data, or fix the feature view's definition."
        )
    for column in filter(None, [table.timestamp, table.created_timestamp]):
        kind = types[column].upper()
        if not kind.startswith("TIMESTAMP"):
            raise SchemaError(f"Column {column!r} of {where} is {kind}, not a timestamp.")
        if not _aware(kind):
            raise SchemaError(
                f"Column {column!r} of {where} holds naive timestamps ({kind}); mloop needs them UTC-aware. "
                f"Write it so: {_LOCALIZE.format(col=column)} before df.to_parquet(...)."
            )
    for aggregation, _ in plan.aggregations:
        kind = types[aggregation.column].upper()
        if aggregation.fn in NUMERIC and not _numeric(kind):
            raise SchemaError(
                f"Aggregation {aggregation.feature!r} of view {view.name!r}: {aggregation.fn} needs numbers, "
                f"but column {aggregation.column!r} is {kind}. Use count, min, max, last or distinct_count."
            )
    for key in view.join_keys:
        ours, theirs = entity_types[key].upper(), types[key].upper()
        if ours != '"NULL"' and _family(ours) != _family(theirs):
            raise SchemaError(
                f"Join key {key!r} is {theirs} in {where} but {ours} in entity_df; give both one type, "
                f"for example df[{key!r}] = df[{key!r}].astype({'str' if _family(theirs) == 'text' else 'int'!r})."
            )


def _aware(kind: str) -> bool:
    return "TIME ZONE" in kind or kind.startswith("TIMESTAMPTZ")


def _numeric(kind: str) -> bool:
    return kind in INTEGERS or kind in FLOATS or kind.startswith("DECIMAL")


def _family(kind: str) -> str:
    if _numeric(kind):
        return "number"
    if kind in _STRINGS:
        return "text"
    return kind


# SQL. Every name DuckDB sees is internal (_k0, _ts, _v0, ...) so user column names never clash.


@dataclass(frozen=True)
class _Query:
    """Rows with _rid; ``outputs`` maps result columns to output names. One row per entity row, or
    several where candidate rows tie, to be settled in ``tie_order``."""

    sql: str
    outputs: list[tuple[str, str]]
    checks_nan: bool = False
    tie_order: str | None = None
    sparse: list[tuple[str, str]] = field(default_factory=list)  # (flag column, output): nulled by min_count


def _run(con: duckdb.DuckDBPyConnection, query: _Query, rows: int) -> pa.Table:
    """The query's result, one row per entity row, in entity row order."""
    # DuckDB trusts Parquet statistics, which leave NaN out, and folds isnan() to false on them: the
    # aggregations, where NaN counts as null, run without that optimization.
    con.execute(f"SET disabled_optimizers = '{'statistics_propagation' if query.checks_nan else ''}'")
    result = con.sql(query.sql).to_arrow_table()
    if result.num_rows > rows and query.tie_order:  # ties are rare: settled only when there are some
        con.register("_ties", result)
        result = con.sql(
            f"SELECT * FROM _ties QUALIFY row_number() OVER (PARTITION BY _rid ORDER BY {query.tie_order}) = 1"
        ).to_arrow_table()
        con.unregister("_ties")
    assert result.num_rows == rows, (result.num_rows, rows)
    # _rid is a permutation of 0..rows-1: putting rows back in order is a take, cheaper than a sort.
    position = np.empty(rows, dtype=np.int64)
    position[result.column("_rid").to_numpy()] = np.arange(rows, dtype=np.int64)
    return result.take(position)


def _queries(plan: _Plan, entity_keys: Mapping[str, str], bounds: tuple[int, int] | None) -> list[_Query]:
    """One query for the view's plain features, one for its aggregations."""
    queries = []
    if plan.plain:
        queries.append(_plain_sql(plan, entity_keys, bounds))
    if plan.aggregations:
        assert plan.source_types is not None
        source = Source(plan.table.relation, plan.table.timestamp, plan.table.created_timestamp,
                        plan.view.join_keys, plan.source_types)  # fmt: skip
        queries.extend(
            _Query(q.sql, q.outputs, checks_nan=q.checks_nan, sparse=q.sparse)
            for q in window_queries(source, plan.aggregations, entity_keys, bounds)
        )
    return queries


def _source_keys(plan: _Plan) -> str:
    return ", ".join(f"{quote(key)} AS _k{i}" for i, key in enumerate(plan.view.join_keys))


def _plain_sql(plan: _Plan, entity_keys: Mapping[str, str], bounds: tuple[int, int] | None) -> _Query:
    # The ASOF join finds each entity row's latest event time from keys and times alone (a light sort);
    # the source rows at that time are then joined in full. Where several are (rare), the latest created
    # wins and, on a complete tie, the largest values (nulls first), so the answer is deterministic.
    view, table, types = plan.view, plan.table, plan.source_types
    assert types is not None
    ks = [f"_k{i}" for i in range(len(view.join_keys))]
    ts = sql_time(table.timestamp, types[table.timestamp])
    ttl = view.ttl if isinstance(view.ttl, timedelta) else None
    where = window_filter(table.timestamp, types[table.timestamp], bounds, ttl)
    on = " AND ".join(f"e.{entity_keys[key]} = s._k{i}" for i, key in enumerate(view.join_keys))
    fresh = f"s._ts >= e._t - {interval(ttl)}" if ttl is not None else "TRUE"
    values = [f"{quote(f.name)} AS _f{j}" for j, f in enumerate(view.features)]
    order = [f"_f{j} DESC NULLS FIRST" for j in range(len(view.features))]
    if table.created_timestamp:
        values.insert(0, f"{sql_time(table.created_timestamp, types[table.created_timestamp])} AS _c")
        order.insert(0, "_c DESC NULLS LAST")
    index = {f.name: j for j, f in enumerate(view.features)}
    outputs = [(f"_f{index[feature]}", output) for feature, output in plan.plain]
    sql = f"""
WITH s AS (SELECT {_source_keys(plan)}, {ts} AS _ts FROM {table.relation} WHERE {where}),
a AS (
    SELECT e._rid, {", ".join(f"s.{k}" for k in ks)}, CASE WHEN {fresh} THEN s._ts END AS _ts
    FROM _entities e ASOF LEFT JOIN s ON {on} AND e._t >= s._ts
),
r AS (SELECT {_source_keys(plan)}, {ts} AS _ts, {", ".join(values)} FROM {table.relation} WHERE {where})
SELECT a._rid, r.* EXCLUDE ({", ".join([*ks, "_ts"])})
FROM a LEFT JOIN r ON {" AND ".join(f"a.{k} = r.{k}" for k in [*ks, "_ts"])}"""
    return _Query(sql, outputs, tie_order=", ".join(order))

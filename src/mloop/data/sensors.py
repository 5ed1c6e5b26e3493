"""Sensor checks: rules on a series of readings per sensor, not on one row alone.

A dataset of sensor readings declares them with :class:`SensorChecks`; the ingestion evaluates them in its
DuckDB pass, after the column rules and the key check, with window functions over each sensor's readings
in time order. A reading that fails one is quarantined with its reason, like a row failing a column rule,
so it reaches no feature built on the dataset and the ingestion report counts it by reason:

- **range**: the value is outside the sensor's physical range (``moisture: outside physical range [0, 100]``);
- **stuck**: the value is part of a run of at least ``stuck`` identical readings (the whole run is
  quarantined, its first readings too: they cannot be told from a steady value, but they are the same fault);
- **spike**: the value is more than ``spike_z`` robust z-scores from the median of the sensor's previous
  ``spike_window`` clean readings (z = |x - median| / (1.4826 * MAD), the MAD floored at ``resolution``)
  and as many from one of its previous two readings and one of its next two, and one of the next two is
  back within ``spike_z / 2`` of the median: a spike stands out on both sides and comes back, the
  readings around a step (rain, irrigation) do not. So a sensor's last reading in a batch is never
  called a spike.

Silence (no reading for ``silence``) is not a fault of any reading: monitoring raises it
(:mod:`mloop.monitoring.sensors`), with one incident per sensor and rule for the faults above.

At a batch boundary the windows see history: the last readings of each sensor before its first new one
(accepted ones, and those quarantined as stuck, so a run that goes on across batches is still one run),
and any stored reading inside the new readings' span (late data). Only new readings are judged: an
accepted reading is never taken back.

>>> import mloop as ml
>>> soil = ml.Dataset("soil", columns=[
...     ml.Column("field_id", "int64"), ml.Column("sensor_id", "int64"), ml.Column("ts", "timestamp"),
...     ml.Column("moisture", "float64"),
... ], timestamp="ts", sensors=ml.SensorChecks(key=["field_id", "sensor_id"], value="moisture",
...     range=(0, 100), stuck=12, spike_z=6, silence="6h"))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from mloop.data.sensor_spec import SensorChecks
from mloop.data.sql import literal, quote

if TYPE_CHECKING:
    from mloop.crypto import ParquetFiles
    from mloop.data.schema import Dataset


def faults_query(
    checks: SensorChecks,
    *,
    batch: str,
    history: str | None,
    columns: dict[str, str],
    row_key: tuple[str, ...],
    timestamp: str,
) -> str:
    """SQL of the new readings failing ``checks``: their row key and ``_reason``.

    ``batch`` selects the new readings (row key, then the typed columns under their names); ``history``
    (or None) the stored ones as ``k..., _ts, _v, _clean`` (``_clean`` false for readings quarantined as
    stuck, which count in runs but not in spike baselines). ``columns`` maps a column name to the SQL of
    its typed value in ``batch``.
    """
    keys = [quote(k) for k in checks.key]
    k = ", ".join(keys)
    rk = ", ".join(quote(c) for c in row_key)
    nulls = ", ".join(f"NULL AS {quote(c)}" for c in row_key)
    picked = ", ".join(f"{columns[c]} AS {quote(c)}" for c in checks.key)
    order = f"_ts, _new, {rk}"
    parts = [
        f"new AS (SELECT {rk}, {picked}, {columns[timestamp]} AS _ts, CAST({columns[checks.value]} AS DOUBLE) "
        f"AS _v, true AS _new, true AS _clean FROM {batch} WHERE {columns[checks.value]} IS NOT NULL)",
    ]
    union = "SELECT * FROM new"
    if history is not None:
        n = max(checks.history, 1)
        parts.append(f"span AS (SELECT {k}, min(_ts) AS _lo, max(_ts) AS _hi FROM new GROUP BY {k})")
        # per sensor: the last n readings before its first new one, and any inside the new readings' span
        parts.append(
            f"old AS (SELECT {nulls}, {k}, _ts, _v, false AS _new, _clean FROM (SELECT h.*, s._lo, "
            f"row_number() OVER (PARTITION BY {', '.join(f'h.{c}' for c in keys)}, h._ts < s._lo "
            f"ORDER BY h._ts DESC) AS _n FROM ({history}) h JOIN span s USING ({k}) WHERE h._ts <= s._hi) "
            f"WHERE _ts >= _lo OR _n <= {n})"
        )
        union += " UNION ALL BY NAME SELECT * FROM old"
    parts.append(f"u AS ({union})")
    if checks.range is not None:
        low, high = (literal(float(b)) for b in checks.range)
        parts.append(f"r AS (SELECT *, (_v < {low} OR _v > {high} OR isnan(_v)) AS _oor FROM u)")
    else:
        parts.append("r AS (SELECT *, isnan(_v) AS _oor FROM u)")
    # _chg: the reading differs from the sensor's previous one (runs of repeats are stuck candidates, and
    # count once in a spike baseline: a plateau of repeats would shrink the MAD to nothing)
    parts.append(
        f"c AS (SELECT *, CASE WHEN _v IS DISTINCT FROM lag(_v) OVER (PARTITION BY {k} ORDER BY {order}) "
        f"THEN 1 ELSE 0 END AS _chg FROM r WHERE NOT _oor)"
    )
    if checks.stuck is not None:
        parts.append(
            f"s AS (SELECT *, count(*) OVER (PARTITION BY {k}, _run) >= {int(checks.stuck)} AS _stuck FROM "
            f"(SELECT *, sum(_chg) OVER (PARTITION BY {k} ORDER BY {order} ROWS UNBOUNDED PRECEDING) AS _run FROM c))"
        )
    else:
        parts.append("s AS (SELECT *, false AS _stuck FROM c)")
    reasons = []
    if checks.range is not None:
        reasons.append(
            f"SELECT {rk}, {literal(checks.reason('range'))} AS _reason FROM r WHERE _new AND _oor"
        )
    if checks.stuck is not None:
        reasons.append(
            f"SELECT {rk}, {literal(checks.reason('stuck'))} AS _reason FROM s WHERE _new AND _stuck"
        )
    if checks.spike_z is not None:
        w, z, back = (
            int(checks.spike_window),
            literal(float(checks.spike_z)),
            literal(float(checks.spike_z) / 2),
        )
        scale = f"greatest(_mad, _noise, {literal(float(checks.resolution))})"
        # The scale is the larger of the baseline's MAD and the noise, from the MAD of the steps between
        # readings over 4 windows (/ sqrt 2): a MAD of 48 readings alone is low often enough for z = 6 to
        # fire on plain noise, while steps barely move the MAD of differences.
        # A spike stands out from its neighbours on both sides too (from one of the previous two readings
        # and one of the next two: a spike of two readings is still one), and comes back (one of the next
        # two within spike_z / 2 of the baseline): the readings after a step (rain, irrigation) are far
        # from the old baseline until the median catches up, but not from the readings after them; those
        # between two steps do not come back. So the last reading of a batch is not judged (no next one).
        parts.append(f"d AS (SELECT *, _v - lag(_v) OVER (PARTITION BY {k} ORDER BY {order}) AS _d FROM s "
                     "WHERE _clean AND NOT _stuck)")  # fmt: skip
        parts.append(
            f"p AS (SELECT *, median(_v) FILTER (WHERE _chg = 1) OVER w AS _med, "
            f"1.4826 * mad(_v) FILTER (WHERE _chg = 1) OVER w AS _mad, count(*) OVER w AS _n, "
            f"1.4826 * mad(_d) OVER l / sqrt(2) AS _noise, "
            f"greatest(abs(_v - lag(_v, 1) OVER n), abs(_v - lag(_v, 2) OVER n)) AS _left, "
            f"greatest(abs(_v - lead(_v, 1) OVER n), abs(_v - lead(_v, 2) OVER n)) AS _right, "
            f"least(abs(lead(_v, 1) OVER n - _med), abs(lead(_v, 2) OVER n - _med)) AS _back FROM d "
            f"WINDOW w AS (PARTITION BY {k} ORDER BY {order} ROWS BETWEEN {w} PRECEDING AND 1 PRECEDING), "
            f"l AS (PARTITION BY {k} ORDER BY {order} ROWS BETWEEN {4 * w} PRECEDING AND 1 PRECEDING), "
            f"n AS (PARTITION BY {k} ORDER BY {order}))"
        )
        reasons.append(
            f"SELECT {rk}, {literal(checks.reason('spike'))} AS _reason FROM p WHERE _new AND _n >= {w} "
            f"AND {scale} > 0 AND abs(_v - _med) / {scale} > {z} "
            f"AND _left / {scale} > {z} AND _right / {scale} > {z} AND _back / {scale} <= {back}"
        )
    if not reasons:
        return f"SELECT {rk}, NULL::VARCHAR AS _reason FROM {batch} WHERE false"
    return f"WITH {', '.join(parts)} {' UNION ALL '.join(reasons)}"


def history_query(
    checks: SensorChecks,
    *,
    accepted: str | None,
    quarantined: str | None,
    types: dict[str, str],
    timestamp: str,
) -> str | None:
    """SQL of the stored readings as ``k..., _ts, _v, _clean``: the accepted ones (FROM expression
    ``accepted``) and those of ``quarantined`` (raw values, converted back) quarantined as stuck."""
    keys = ", ".join(quote(c) for c in checks.key)
    v, ts = quote(checks.value), quote(timestamp)
    selects = []
    if accepted is not None:
        selects.append(
            f"SELECT {keys}, {ts} AS _ts, CAST({v} AS DOUBLE) AS _v, true AS _clean FROM {accepted} "
            f"WHERE {v} IS NOT NULL"
        )
    if quarantined is not None and checks.stuck is not None:
        typed = ", ".join(
            f"TRY_CAST(CAST({quote(c)} AS VARCHAR) AS {types[c]}) AS {quote(c)}" for c in checks.key
        )
        selects.append(
            f"SELECT * FROM (SELECT {typed}, TRY_CAST(CAST({ts} AS VARCHAR) AS TIMESTAMPTZ) AS _ts, "
            f"TRY_CAST(CAST({v} AS VARCHAR) AS DOUBLE) AS _v, false AS _clean FROM {quarantined} "
            f"WHERE contains(_reasons, {literal(checks.reason('stuck'))})) WHERE _ts IS NOT NULL AND _v IS NOT NULL"
        )
    return " UNION ALL ".join(selects) or None


@dataclass(frozen=True)
class History:
    """The stored files the sensor windows read: the dataset's accepted files and its quarantine files."""

    accepted: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


def quarantine_faults(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    *,
    typed: str,
    row_key: tuple[str, ...],
    carry: list[str],
    history: History,
    parquet: ParquetFiles,
) -> None:
    """Add the new readings failing a sensor check to the ``bad`` table (row key, ``carry`` columns as
    they came, ``_reason``, ``_reasons``). Every check judges the same readings: those that passed the
    column rules and the key check; a reading failing several checks gets all their reasons."""
    from mloop.data.checks import typed_name  # checks imports schema, which imports this module

    rk = ", ".join(quote(c) for c in row_key)
    columns = {c.name: typed_name(i) for i, c in enumerate(dataset.columns)}
    from mloop.data.schema import DTYPES

    types = {c.name: DTYPES[c.dtype] for c in dataset.columns}
    con.execute(f"CREATE TEMP TABLE sensor_batch AS SELECT * FROM {typed} ANTI JOIN bad USING ({rk})")
    accepted = parquet.scan(con, history.accepted) if history.accepted else None
    quarantined = _readable(con, parquet, history.quarantined, dataset)
    assert dataset.timestamp is not None  # the schema requires one with sensor checks
    faults = []
    for checks in dataset.sensors:
        past = history_query(checks, accepted=accepted, quarantined=quarantined, types=types,
                             timestamp=dataset.timestamp)  # fmt: skip
        faults.append(faults_query(checks, batch="sensor_batch", history=past, columns=columns,
                                   row_key=row_key, timestamp=dataset.timestamp))  # fmt: skip
    con.execute(f"CREATE TEMP TABLE sensor_bad AS {' UNION ALL '.join(f'({q})' for q in faults)}")
    kept = ", ".join(f"any_value(t.{quote(c)}) AS {quote(c)}" for c in carry)
    con.execute(
        f"INSERT INTO bad BY NAME SELECT {rk}, {kept}, min(f._reason) AS _reason, "
        f"string_agg(DISTINCT f._reason, '; ' ORDER BY f._reason) AS _reasons "
        f"FROM sensor_batch t JOIN sensor_bad f USING ({rk}) GROUP BY {rk}"
    )
    con.execute("DROP TABLE sensor_bad")
    con.execute("DROP TABLE sensor_batch")


def _readable(
    con: duckdb.DuckDBPyConnection, parquet: ParquetFiles, files: list[str], dataset: Dataset
) -> str | None:
    """The quarantine files as one FROM expression, or None when none holds the sensor columns (a file of
    unparsable lines only has ``_raw``)."""
    if not files:
        return None
    relation = parquet.scan(con, files, union=True)
    found = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    needed = {"_reasons", dataset.timestamp or ""} | {c for s in dataset.sensors for c in (*s.key, s.value)}
    return relation if needed <= found else None

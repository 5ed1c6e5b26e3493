"""What one ingestion of a sensor dataset says about each sensor: its faults by rule, and its silences.

The ingestion quarantined the faulty readings with their reasons (:mod:`mloop.data.sensors`); this module
counts them per sensor and rule, and finds silences, which no reading shows: a gap between two readings
of a sensor (the last one stored before the batch included) longer than ``silence``, or no reading from a
sensor's last one until ``as_of``. Everything is one DuckDB connection over the stored Parquet files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from mloop._time import as_utc
from mloop.crypto import ParquetFiles
from mloop.data.schema import Dataset
from mloop.data.sensor_spec import SensorChecks
from mloop.data.sql import literal, quote


@dataclass(frozen=True)
class Finding:
    """One sensor's state for one rule in one ingestion: ``count`` faulty readings (or silences) from
    ``first`` to ``last``; ``count == 0`` with ``seen`` means the sensor reported and was healthy."""

    sensor: tuple[str, ...]  # the key columns' values, as text
    value: str  # the checked column (for silence, of the checks that judged it: silence is about the sensor)
    rule: str
    count: int
    first: datetime | None
    last: datetime | None
    longest: timedelta | None = None  # silence: the longest gap
    resumed: bool = False  # silence: the sensor's first new reading ends a gap that began before the batch


def findings(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    *,
    batch: list[str],
    quarantine: str | None,
    stored: list[str],
    parquet: ParquetFiles,
    as_of: datetime,
) -> list[Finding]:
    """Per sensor and rule, for the ingestion whose accepted files are ``batch`` and quarantine file
    ``quarantine``; ``stored`` are every accepted file of the dataset (this ingestion's too)."""
    ts = quote(dataset.timestamp or "")
    q = parquet.scan(con, [quarantine]) if quarantine else None
    out: list[Finding] = []
    done: set[tuple[str, ...]] = set()  # sensors whose silence is judged (by the first checks naming them)
    for checks in dataset.sensors:
        k = _key(checks)
        seen = _readings(checks, ts, parquet.scan(con, batch) if batch else None, q)
        if seen is None:
            continue
        con.execute(f"CREATE OR REPLACE TEMP TABLE seen AS {seen}")
        if checks.silence_after is not None and checks.key not in done:
            done.add(checks.key)
            out += _silences(con, checks, ts, stored, parquet, as_of)
        for rule in checks.reading_rules:
            if q is None:
                bad = f"SELECT {k}, 0 AS n, NULL::TIMESTAMPTZ AS a, NULL::TIMESTAMPTZ AS b FROM seen WHERE false"
            else:
                bad = (
                    f"SELECT {_text_key(checks)}, count(*) AS n, min({_ts(ts)}) AS a, max({_ts(ts)}) AS b FROM {q} "
                    f"WHERE contains(_reasons, {literal(checks.reason(rule))}) GROUP BY ALL"
                )
            rows = con.execute(
                f"SELECT {k}, coalesce(f.n, 0), f.a, f.b FROM (SELECT DISTINCT {k} FROM seen) s "
                f"LEFT JOIN ({bad}) f USING ({k}) ORDER BY ALL"
            ).fetchall()
            out += [Finding(tuple(r[:-3]), checks.value, rule, int(r[-3]), r[-2], r[-1]) for r in rows]
    return out


def _silences(
    con: duckdb.DuckDBPyConnection,
    checks: SensorChecks,
    ts: str,
    stored: list[str],
    parquet: ParquetFiles,
    as_of: datetime,
) -> list[Finding]:
    """Gaps longer than ``silence`` among the readings of ``seen``, and each known sensor's time since its
    last reading, counted; a gap from the stored reading before ``seen`` to its first one is ``resumed``
    (it ends a silence an earlier ingestion may have reported already)."""
    limit = checks.silence_after
    assert limit is not None
    k = _key(checks)
    stored_rows = (
        f"SELECT {_text_key(checks)}, {ts} AS _ts FROM {parquet.scan(con, stored)}" if stored else None
    )
    seen_rows = f"SELECT {k}, _ts FROM seen"
    before = (
        f"SELECT h.*, true AS _old FROM ({stored_rows}) h JOIN (SELECT {k}, min(_ts) AS lo FROM seen GROUP BY ALL) s "
        f"USING ({k}) WHERE h._ts < s.lo QUALIFY row_number() OVER (PARTITION BY {k} ORDER BY h._ts DESC) = 1"
        if stored_rows
        else None
    )
    series = " UNION ALL ".join(
        x for x in (f"SELECT DISTINCT {k}, _ts, false AS _old FROM seen", before) if x
    )
    seconds = limit.total_seconds()
    gaps = (
        f"SELECT {k}, _ts AS a, _next AS b, _old FROM (SELECT {k}, _ts, _old, lead(_ts) OVER (PARTITION BY {k} ORDER BY _ts) "
        f"AS _next FROM ({series})) WHERE epoch(_next) - epoch(_ts) > {seconds}"
    )
    last = " UNION ALL ".join(x for x in (seen_rows, stored_rows) if x)
    stamp = literal(as_utc(as_of).isoformat())
    retired = checks.retired_after  # silent longer than this: removed (a probe taken out), not silent
    until = (
        f" AND epoch({stamp}::TIMESTAMPTZ) - epoch(max(_ts)) <= {retired.total_seconds()}" if retired else ""
    )
    trailing = (
        f"SELECT {k}, max(_ts) AS a, {stamp}::TIMESTAMPTZ AS b, false AS _old FROM ({last}) GROUP BY ALL "
        f"HAVING epoch({stamp}::TIMESTAMPTZ) - epoch(max(_ts)) > {seconds}{until}"
    )
    rows = con.execute(
        f"SELECT {k}, count(g.a) FILTER (WHERE NOT g._old), min(g.a), max(g.b), max(g.b - g.a), "
        f"coalesce(bool_or(g._old), false) FROM (SELECT DISTINCT {k} FROM ({last})) s "
        f"LEFT JOIN ({gaps} UNION ALL {trailing}) g USING ({k}) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return [
        Finding(tuple(r[:-5]), checks.value, "silence", int(r[-5]), r[-4], r[-3], r[-2], bool(r[-1]))
        for r in rows
    ]


def _readings(checks: SensorChecks, ts: str, accepted: str | None, quarantine: str | None) -> str | None:
    """SQL of the ingestion's readings of ``checks``' sensors, as text keys and ``_ts``: accepted ones and
    those quarantined for a sensor rule (a faulty reading is still a reading: the sensor is not silent)."""
    parts = []
    if accepted is not None:
        parts.append(f"SELECT {_text_key(checks)}, {ts} AS _ts FROM {accepted}")
    if quarantine is not None:
        reasons = " OR ".join(
            f"contains(_reasons, {literal(checks.reason(r))})" for r in checks.reading_rules
        )
        if reasons:
            parts.append(f"SELECT {_text_key(checks)}, {_ts(ts)} AS _ts FROM {quarantine} WHERE {reasons}")
    return " UNION ALL ".join(parts) or None


def _key(checks: SensorChecks) -> str:
    return ", ".join(quote(c) for c in checks.key)


def _text_key(checks: SensorChecks) -> str:
    return ", ".join(f"CAST({quote(c)} AS VARCHAR) AS {quote(c)}" for c in checks.key)


def _ts(ts: str) -> str:
    """A timestamp column of a quarantine file (raw, as it came) as TIMESTAMPTZ."""
    return f"TRY_CAST(CAST({ts} AS VARCHAR) AS TIMESTAMPTZ)"

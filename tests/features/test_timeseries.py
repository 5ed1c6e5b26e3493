"""Time-series aggregations over sensor readings: slope and std, ``since`` (season sums), ``resample``
(a regular grid) and ``min_count`` (gap-aware nulls) — online against a brute-force pandas oracle, offline
equal to online, point in time, end to end through materialization, and the bad input they refuse."""

from __future__ import annotations

import logging
import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from mloop.features.aggregate import season_start, to_micros, window_value
from mloop.features.offline import NULLED, Table, historical

BASE = pd.Timestamp("2026-02-28", tz="UTC")  # the readings cross 1 March, the season's start
MINUTE = pd.Timedelta(minutes=1)
examples = settings(max_examples=25, deadline=None)

# Readings of keys 0..1 over two days, on a minute grid with clusters (several readings a minute, equal
# times) so that resampling, ties and duplicated readings all occur.
values = st.one_of(st.none(), st.just(math.nan), st.integers(-8, 8).map(lambda v: v / 4))
readings = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 48 * 60).map(lambda m: m - m % 7), values), max_size=60
)
probes = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 49 * 60)), min_size=1, max_size=12)
AGGREGATIONS = [
    ml.Aggregation("v", "slope", "6h"),
    ml.Aggregation("v", "std", "6h"),
    ml.Aggregation("v", "mean", "1d", min_count=5),
    ml.Aggregation("v", "slope", "6h", resample="1h", min_count=2),
    ml.Aggregation("v", "mean", "6h", resample="30m"),
    ml.Aggregation("v", "count", "1d", resample="1h"),
    ml.Aggregation("v", "max", "6h", resample="1h"),
    ml.Aggregation("v", "sum", since="03-01"),
    ml.Aggregation("v", "std", since="03-01", min_count=3),
    ml.Aggregation("v", "last", since="03-01"),
    ml.Aggregation("v", "slope", since="03-01"),
]


def oracle(a: ml.Aggregation, seen: pd.Series, grids: dict[timedelta, pd.Series], t: pd.Timestamp) -> Any:
    """The aggregation at t by brute force in pandas, independent of mloop's code: ``seen`` the non-null
    readings by time, ``grids`` their means per grid step (pandas resample, labelled by the step's end)."""
    if a.step is not None:
        assert isinstance(a.window, timedelta)
        grid = grids[a.step]
        series = grid[(grid.index > t - a.window) & (grid.index <= t)]
    elif a.since is not None:
        year = t.year if (t.month, t.day) >= (3, 1) else t.year - 1
        series = seen[(seen.index >= pd.Timestamp(year=year, month=3, day=1, tz="UTC")) & (seen.index <= t)]
    else:
        assert isinstance(a.window, timedelta)
        series = seen[(seen.index > t - a.window) & (seen.index <= t)]
    if a.min_count is not None and len(series) < a.min_count:
        return None
    if a.fn == "count":
        return len(series)
    if a.fn == "sum":
        return float(series.sum())
    if a.fn == "slope":
        days = (series.index - t) / pd.Timedelta(days=1)
        return None if days.nunique() < 2 else float(np.polyfit(days, series.to_numpy(), 1)[0])
    if a.fn == "std":
        return None if len(series) < 2 else float(series.std())
    return None if series.empty else float(getattr(series, a.fn)())


def close(a: Any, b: Any) -> bool:
    a = None if a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a)) else a
    b = None if b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b)) else b
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-7, abs_tol=1e-7)


def frame_of(rows: list[tuple[int, int, float | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "field_id": [r[0] for r in rows],
            "ts": [BASE + r[1] * MINUTE for r in rows],
            "v": [r[2] for r in rows],
        }
    )
    frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
    frame["v"] = frame["v"].astype("float64")
    return frame


def events_of(frame: pd.DataFrame, key: int) -> list[tuple[int, None, Any]]:
    part = frame[frame["field_id"] == key]
    return [
        (to_micros(ts), None, None if pd.isna(v) else v) for ts, v in zip(part["ts"], part["v"], strict=True)
    ]


# ---- online against the oracle, offline against online --------------------------------------------


@examples
@given(rows=readings, wanted=probes)
def test_online_values_equal_a_pandas_oracle(rows, wanted) -> None:
    full = frame_of(rows)
    steps = {a.step for a in AGGREGATIONS if a.step is not None}
    for key in {k for k, _ in wanted}:
        mine = full[full["field_id"] == key]
        seen = mine.dropna(subset=["v"]).set_index("ts")["v"].sort_index()  # pandas: NaN is null too
        grids = {
            s: seen.resample(s, closed="right", label="right", origin="epoch").mean().dropna() for s in steps
        }
        events = events_of(full, key)
        for t in [BASE + m * MINUTE for k, m in wanted if k == key]:
            for a in AGGREGATIONS:
                if a.fn == "last":
                    continue  # which of equal-time readings is last is the order of writing: not the oracle's
                got, _ = window_value(a, events, to_micros(t))
                assert close(got, oracle(a, seen, grids, t)), (a.feature, key, t, got)


@examples
@given(rows=readings, wanted=probes)
def test_offline_equals_online_for_random_readings(rows, wanted) -> None:
    frame = frame_of(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.parquet"
        frame.to_parquet(path, index=False)
        fv = sensor_view(path)
        entity_df = pd.DataFrame(
            {"field_id": [k for k, _ in wanted], "t": [BASE + m * MINUTE for _, m in wanted]}
        )
        out = historical(entity_df, [(fv, fv.feature_names)], {"s": Table(f"read_parquet(['{path}'])", "ts")},
                         timestamp="t")  # fmt: skip
    nulled = dict.fromkeys((a.feature for a in AGGREGATIONS if a.min_count), 0)
    for a in AGGREGATIONS:
        for (key, minute), got in zip(wanted, out[a.feature], strict=True):
            want, sparse = window_value(a, events_of(frame, key), to_micros(BASE + minute * MINUTE))
            nulled[a.feature] = nulled.get(a.feature, 0) + sparse
            assert close(got, want), (a.feature, key, minute, got, want)
    assert out.attrs[NULLED] == {k: v for k, v in nulled.items() if k in out.attrs[NULLED]}
    assert set(out.attrs[NULLED]) == {a.feature for a in AGGREGATIONS if a.min_count}


field = ml.Entity("field", join_keys=["field_id"])


def sensor_view(path: Path, aggregations: list[ml.Aggregation] = AGGREGATIONS) -> ml.FeatureView:
    return ml.FeatureView(
        "s", entities=[field], source=ml.ParquetSource(path, timestamp="ts"), aggregations=aggregations
    )


# ---- point in time, gaps, time zones, duplicates ----------------------------------------------------


def hourly(hours: int, field_id: int = 1, start: pd.Timestamp = BASE) -> pd.DataFrame:
    ts = pd.date_range(start, periods=hours, freq="1h", tz="UTC").astype("datetime64[us, UTC]")
    return pd.DataFrame({"field_id": field_id, "ts": ts, "v": np.arange(hours, dtype="float64")})


def offline(frame: pd.DataFrame, folder: Path, aggregations: list[ml.Aggregation], at: list[pd.Timestamp],
            field_id: int = 1) -> pd.DataFrame:  # fmt: skip
    path = folder / "s.parquet"
    frame.to_parquet(path, index=False)
    fv = sensor_view(path, aggregations)
    entity_df = pd.DataFrame({"field_id": field_id, "t": at})
    return historical(entity_df, [(fv, fv.feature_names)], {"s": Table(f"read_parquet(['{path}'])", "ts")},
                      timestamp="t")  # fmt: skip


def test_no_reading_after_the_row_time_is_used(tmp_path: Path) -> None:
    at = [BASE + pd.Timedelta(hours=30, minutes=30)]
    before = hourly(31)  # readings up to 30:00
    after = pd.concat([before, hourly(20, start=at[0] + pd.Timedelta(microseconds=1)).assign(v=1e6)])
    clean = offline(before, tmp_path, AGGREGATIONS, at)
    leaked = offline(after, tmp_path, AGGREGATIONS, at)
    for a in AGGREGATIONS:
        assert close(clean[a.feature][0], leaked[a.feature][0]), a.feature
    # the step (29:00, 30:00] holds the 30:00 reading; (30:00, 31:00] is still open at 30:30
    assert clean["v_max_6h_by_1h"][0] == 30.0
    assert clean["v_slope_6h"][0] == pytest.approx(24.0)  # one a hour: 24 a day
    assert clean["v_sum_since_0301"][0] == sum(range(24, 31))  # from 1 March 00:00, inclusive


def test_a_window_with_too_few_readings_is_null_and_counted(tmp_path: Path, caplog) -> None:
    frame = hourly(48)
    frame = frame[
        (frame["ts"] < BASE + pd.Timedelta(hours=20)) | (frame["ts"] >= BASE + pd.Timedelta(hours=40))
    ]
    mean = ml.Aggregation("v", "mean", "1d", resample="1h", min_count=18)  # 75 % of the day's hours
    at = [BASE + pd.Timedelta(hours=h) for h in (19, 26, 47)]
    with caplog.at_level(logging.WARNING, logger="mloop.features.offline"):
        out = offline(frame, tmp_path, [mean], at)
    assert out[mean.feature].tolist()[0] == pytest.approx(9.5)  # hours 0..19: 20 of 24 covered
    assert out[mean.feature][1:].isna().all()  # 17 (3..19) and 8 (40..47) of 24: null, not a biased mean
    assert out.attrs[NULLED] == {mean.feature: 2}
    assert "v_mean_1d_by_1h" in caplog.text


def test_source_times_in_another_zone_are_the_same_instants(tmp_path: Path) -> None:
    at = [BASE + pd.Timedelta(hours=h) for h in (23, 30)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    utc = offline(hourly(36), tmp_path / "a", AGGREGATIONS, at)
    berlin = hourly(36)
    berlin["ts"] = berlin["ts"].dt.tz_convert("Europe/Berlin")
    other = offline(berlin, tmp_path / "b", AGGREGATIONS, at)
    for a in AGGREGATIONS:  # since="03-01" starts at 00:00 UTC, whatever the zone the times were written in
        assert all(close(x, y) for x, y in zip(utc[a.feature], other[a.feature], strict=True)), a.feature


def test_duplicated_readings_count_twice_unless_resampled(tmp_path: Path) -> None:
    frame = pd.concat([hourly(6), hourly(6).iloc[[5]]])  # the 05:00 reading sent twice
    raw, grid = ml.Aggregation("v", "mean", "6h"), ml.Aggregation("v", "mean", "6h", resample="1h")
    out = offline(frame, tmp_path, [raw, grid], [BASE + pd.Timedelta(hours=5)])
    assert out[raw.feature][0] == pytest.approx((15 + 5) / 7)
    assert out[grid.feature][0] == pytest.approx(15 / 6)


def test_season_start() -> None:
    march_1 = to_micros(pd.Timestamp("2026-03-01", tz="UTC"))
    assert season_start(march_1, "03-01") == march_1
    assert season_start(march_1 - 1, "03-01") == to_micros(pd.Timestamp("2025-03-01", tz="UTC"))
    assert season_start(to_micros(pd.Timestamp("2024-12-31T23:00", tz="UTC")), "01-01") == to_micros(
        pd.Timestamp("2024-01-01", tz="UTC")
    )


# ---- end to end: materialized online values equal the training set ----------------------------------


def test_materialized_online_values_equal_offline(sqlite_project: Project, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    start = pd.Timestamp("2026-01-10", tz="UTC")
    frames = [hourly(24 * 60, field_id=k, start=start).assign(v=rng.normal(30, 5, 24 * 60)) for k in (1, 2)]
    frames[1] = frames[1][frames[1]["ts"] < pd.Timestamp("2026-03-08", tz="UTC")]  # field 2's sensor dies
    frame = pd.concat(frames)
    frame["rain_mm"] = rng.exponential(1.0, len(frame))
    path = tmp_path / "sensors.parquet"
    frame.to_parquet(path, index=False)
    aggregations = [*AGGREGATIONS, ml.Aggregation("rain_mm", "sum", since="03-01"),
                    ml.Aggregation("v", "slope", "7d", resample="1d", min_count=6)]  # fmt: skip
    view = ml.FeatureView("sensors", entities=[field], source=ml.ParquetSource(path, timestamp="ts"),
                          aggregations=aggregations)  # fmt: skip
    at = pd.Timestamp("2026-03-10T06:30", tz="UTC")
    sqlite_project.apply([view])
    sqlite_project.features.materialize(start.to_pydatetime(), at.to_pydatetime(), chunk="7d")
    online = sqlite_project.features.online({"field_id": [1, 2, 3]}, ["sensors:*"], at=at.to_pydatetime())
    entity_df = pd.DataFrame({"field_id": [1, 2, 3], "event_timestamp": [at] * 3})
    training = sqlite_project.features.historical(entity_df, ["sensors:*"])
    for a in aggregations:
        for i, value in enumerate(online[a.feature]):
            assert close(value, training[a.feature].iloc[i]), (
                a.feature,
                i,
                value,
                training[a.feature].iloc[i],
            )
    assert online["rain_mm_sum_since_0301"][0] > 0  # 9 days of season kept online, past every window
    assert online["v_slope_7d_by_1d"][0] is not None  # field 1: 7 daily steps of 7
    assert online["v_slope_7d_by_1d"][1] is None  # field 2: 5 of the week's 7 days have a reading
    assert training.attrs[NULLED]["v_slope_7d_by_1d"] == 2  # field 2, and field 3 that has no sensor
    stored = sqlite_project.features.get("sensors")
    assert isinstance(stored, ml.FeatureView) and list(stored.aggregations) == aggregations


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"fn": "median", "window": "1d"}, "unknown function 'median'; use one of count.*slope, std"),
        ({"fn": "sum", "since": "3-1"}, "since='3-1' is not a day of the year; write it as 'MM-DD'"),
        ({"fn": "sum", "since": "02-29"}, "29 February is refused"),
        ({"fn": "sum", "since": "13-01"}, "not a day of the year"),
        ({"fn": "sum", "since": 301}, "not a day of the year"),
        ({"fn": "sum", "window": "1d", "since": "03-01"}, "either window= .* or since="),
        ({"fn": "sum"}, "either window= .* or since="),
        ({"fn": "mean", "window": "1d", "min_count": 0}, "min_count=0 must be a whole number >= 1"),
        ({"fn": "mean", "window": "1d", "min_count": True}, "min_count=True must be a whole number"),
        ({"fn": "mean", "window": "1d", "min_count": 2.5}, "min_count=2.5"),
        ({"fn": "last", "window": "1d", "resample": "1h"}, "drop resample= for last"),
        ({"fn": "sum", "since": "03-01", "resample": "1d"}, "drop resample= for since="),
        ({"fn": "mean", "window": "90m", "resample": "1h"}, "not a whole number of resample steps"),
        ({"fn": "mean", "window": "1d", "resample": "-1h"}, "resample step"),
        ({"fn": "mean", "window": "1d", "resample": "hourly"}, "does not parse"),
    ],
)
def test_bad_aggregations_are_refused_with_the_fix(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        ml.Aggregation("v", **kw)


def test_slope_of_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"field_id": [1], "ts": pa.array([BASE]).cast(pa.timestamp("us", "UTC")),
                             "crop": ["wheat"]}), path)  # fmt: skip
    view = sensor_view(path, [ml.Aggregation("crop", "slope", "1d")])
    with pytest.raises(SchemaError, match="slope needs numbers, but column 'crop' is VARCHAR"):
        historical(pd.DataFrame({"field_id": [1], "t": [BASE]}), [(view, view.feature_names)],
                   {"s": Table(f"read_parquet(['{path}'])", "ts")}, timestamp="t")  # fmt: skip

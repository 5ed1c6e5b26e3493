"""Benchmark: a sequence training set (default 10k fields with 200 days of daily readings, 3 features; one
label row per field; SequenceSpec(length=120, step="1d"), so 1.2M point-in-time lookups).

Prints, from one run, medians over --repeat runs: mloop's ``features.historical(..., sequence=...)``
(grid, the offline store's point-in-time join, padding, mask, tensor columns), the floor (a bare DuckDB
ASOF join of a grid generated in SQL, straight to a NumPy array: no checks, no ties, no mask), and the
peer, pandas ``merge_asof`` of the same grid; the ratios, and whether all three give the same arrays.

    .venv/bin/python benchmarks/sequences.py                  # 10k x 120, 3 repetitions
    .venv/bin/python benchmarks/sequences.py --fields 1000 --repeat 5

Goal (issue 21): seconds, not minutes, for 10k rows x 120 steps; within 3x of the bare ASOF join.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

import mloop as ml

FEATURES = ["ndvi", "rain_mm", "temp_c"]
DAYS = 200
LENGTH = 120


def make_data(root: Path, fields: int, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """Daily readings at a random hour (unique per field and time, so every method agrees) and one label
    row per field on one of the last 80 days."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    days = np.tile(np.arange(DAYS), fields)
    ts = start + pd.to_timedelta(days * 86_400 + rng.integers(0, 86_400, len(days)), unit="s")
    readings = pd.DataFrame({"field_id": np.repeat(np.arange(fields, dtype=np.int64), DAYS), "ts": ts})
    for name in FEATURES:
        readings[name] = rng.normal(size=len(readings))
    path = root / "readings.parquet"
    readings.to_parquet(path, index=False)
    at = start + pd.to_timedelta(rng.integers(DAYS - 80, DAYS, fields) * 86_400 + 43_200, unit="s")
    labels = pd.DataFrame({"field_id": np.arange(fields, dtype=np.int64), "event_timestamp": at})
    return path, labels


def floor(path: Path, labels: pd.DataFrame) -> np.ndarray:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("labels", labels.assign(rid=np.arange(len(labels))))
        table = con.sql(f"""
            WITH g AS (
                SELECT rid, field_id, s AS step, event_timestamp - (({LENGTH - 1} - s) * INTERVAL '1 day') AS t
                FROM labels, range({LENGTH}) r(s)
            )
            SELECT {", ".join(f"r.{f}" for f in FEATURES)}
            FROM g ASOF LEFT JOIN read_parquet('{path}') r ON g.field_id = r.field_id AND g.t >= r.ts
            ORDER BY rid, step""").fetchnumpy()
    return np.stack([np.nan_to_num(np.asarray(table[f], dtype=np.float64)) for f in FEATURES], axis=1)


def peer(path: Path, labels: pd.DataFrame) -> np.ndarray:
    readings = pd.read_parquet(path).sort_values("ts")
    offsets = pd.to_timedelta(np.arange(LENGTH - 1, -1, -1), unit="D")
    naive = labels["event_timestamp"].dt.tz_localize(None)
    grid = pd.DataFrame(
        {
            "rid": np.repeat(np.arange(len(labels)), LENGTH),
            "field_id": np.repeat(labels["field_id"].to_numpy(), LENGTH),
            "t": (naive.to_numpy()[:, None] - offsets.to_numpy()[None, :]).reshape(-1),
        }
    )
    grid["t"] = grid["t"].dt.tz_localize("UTC")
    joined = pd.merge_asof(grid.sort_values("t"), readings, left_on="t", right_on="ts", by="field_id")
    joined = joined.sort_values(["rid", "t"])
    return np.nan_to_num(joined[FEATURES].to_numpy(dtype=np.float64))


def timed(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    times, out = [], np.empty(0)
    for _ in range(repeat):
        clock = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - clock)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path, labels = make_data(root, args.fields)
        field = ml.Entity("field", join_keys=["field_id"])
        view = ml.FeatureView(
            "field_daily", entities=[field], source=ml.ParquetSource(str(path), timestamp="ts"),
            features=[ml.Field(f, "float64") for f in FEATURES],
        )  # fmt: skip
        (root / "p").mkdir()
        with ml.Project.open(root / "p", env={}) as project:
            project.apply([field, view])
            spec = ml.SequenceSpec(length=LENGTH, step="1d")

            def ours() -> np.ndarray:
                train = project.features.historical(labels, ["field_daily:*"], sequence=spec)
                return spec.arrays(train)[0].reshape(-1, len(FEATURES)).astype(np.float64)

            mloop_s, got = timed(ours, args.repeat)
            floor_s, bare = timed(lambda: floor(path, labels), args.repeat)
            peer_s, theirs = timed(lambda: peer(path, labels), args.repeat)
    rows = len(labels) * LENGTH
    same = np.allclose(got, bare, rtol=1e-6, atol=1e-6) and np.allclose(got, theirs, rtol=1e-6, atol=1e-6)
    print(f"{len(labels):,} rows x {LENGTH} steps x {len(FEATURES)} features ({rows:,} lookups), "
          f"{len(labels) * DAYS:,} readings; median of {args.repeat}")  # fmt: skip
    print(f"  mloop sequence   {mloop_s:7.2f} s  ({rows / mloop_s / 1e6:.2f}M steps/s)")
    print(f"  floor DuckDB     {floor_s:7.2f} s  mloop / floor = {mloop_s / floor_s:.2f}x")
    print(f"  peer merge_asof  {peer_s:7.2f} s  mloop / peer  = {mloop_s / peer_s:.2f}x")
    print(f"  same arrays: {same}")


if __name__ == "__main__":
    main()

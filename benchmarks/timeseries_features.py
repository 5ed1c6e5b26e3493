"""Benchmark: a time-series feature view over sensor readings built offline (default 10M readings: 2,000
soil sensors, ~5,000 hourly readings each with jitter, gaps and duplicates; 400k entity rows, one a day per
sensor at 06:00 UTC).

The view: a gap-aware daily mean on an hourly grid (``min_count=18``), a 7-day slope on the same grid, the
day's std, min and max, and season sums since 1 March (rainfall, growing degree days). Prints mloop's
``historical`` time (the goal of issue 21: <= 30 s here), the rows nulled for too few readings, and the
floor: one bare DuckDB scan grouping the same readings per sensor and day (mean, std, min, max, slope of
each day on its own: the least work any engine must do, without rolling windows or point-in-time joins).

    .venv/bin/python benchmarks/timeseries_features.py                    # 10M readings
    .venv/bin/python benchmarks/timeseries_features.py --sensors 200      # 1M, a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
WORK = HERE / ".work"
START = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
HOUR = 3_600 * 10**6


def make_data(sensors: int, per_sensor: int, seed: int = 0) -> Path:
    """Readings (sensor_id, ts, moisture, rain_mm, gdd): at an irregular time in each hour, 3 % lost, 1 % sent
    twice, and one sensor in 20 dead for a week."""
    path = WORK / f"sensors-{sensors}-{per_sensor}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sensor = np.repeat(np.arange(sensors, dtype=np.int64), per_sensor)
    hour = np.tile(np.arange(per_sensor, dtype=np.int64), sensors)
    ts = START + hour * HOUR + rng.integers(60, 3_540, sensor.size) * 10**6  # inside the hour, irregular
    keep = rng.random(sensor.size) > 0.03
    dead = (sensor % 20 == 0) & (hour > 2_000) & (hour < 2_168)
    keep &= ~dead
    again = keep & (rng.random(sensor.size) < 0.01)
    order = np.concatenate([np.flatnonzero(keep), np.flatnonzero(again)])
    season = (hour[order] % (24 * 365)) / 24.0
    table = pa.table({
        "sensor_id": pa.array(sensor[order]),
        "ts": pa.array(ts[order]).cast(pa.timestamp("us", "UTC")),
        "moisture": pa.array(30 + 5 * np.sin(season / 9) + rng.normal(0, 1, order.size)),
        "rain_mm": pa.array(rng.exponential(0.1, order.size)),
        "gdd": pa.array(np.maximum(0.0, 8 * np.sin(season / 58) + rng.normal(0, 1, order.size)) / 24),
    })  # fmt: skip
    pq.write_table(table, path.with_suffix(".tmp"), row_group_size=1_000_000)
    path.with_suffix(".tmp").rename(path)
    return path


def entity_rows(sensors: int, per_sensor: int) -> pd.DataFrame:
    days = per_sensor // 24
    day = np.arange(7, days, dtype=np.int64)
    times = START + day * 24 * HOUR + 6 * HOUR
    return pd.DataFrame({
        "sensor_id": np.repeat(np.arange(sensors, dtype=np.int64), day.size),
        "event_timestamp": pd.to_datetime(np.tile(times, sensors), unit="us", utc=True),
    })  # fmt: skip


def run_mloop(source: Path, entity_df: pd.DataFrame) -> tuple[float, float, pd.DataFrame]:
    import mloop as ml
    from mloop.features.offline import Table, historical

    sensor = ml.Entity("sensor", join_keys=["sensor_id"])
    view = ml.FeatureView(
        "soil", entities=[sensor], source=ml.ParquetSource(source, timestamp="ts"),
        aggregations=[
            ml.Aggregation("moisture", "mean", "1d", resample="1h", min_count=18),
            ml.Aggregation("moisture", "slope", "7d", resample="1h", min_count=72),
            ml.Aggregation("moisture", "std", "1d"),
            ml.Aggregation("moisture", "min", "1d"),
            ml.Aggregation("moisture", "max", "1d"),
            ml.Aggregation("rain_mm", "sum", since="03-01"),
            ml.Aggregation("gdd", "sum", since="03-01"),
        ],
    )  # fmt: skip
    spill = Path(tempfile.mkdtemp(prefix="spill-", dir=WORK))
    try:
        started, cpu = time.perf_counter(), time.process_time()
        out = historical(entity_df, [(view, view.feature_names)], {"soil": Table(f"read_parquet(['{source}'])", "ts")},
                         timestamp="event_timestamp", workdir=spill)  # fmt: skip
        return time.perf_counter() - started, time.process_time() - cpu, out
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def run_floor(source: Path) -> float:
    import duckdb

    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        started = time.perf_counter()
        con.sql(
            "SELECT sensor_id, date_trunc('day', ts) AS day, avg(moisture), stddev_samp(moisture), min(moisture), "
            "max(moisture), regr_slope(moisture, epoch(ts) / 86400), sum(rain_mm), sum(gdd) "
            f"FROM read_parquet(['{source}']) GROUP BY ALL"
        ).to_arrow_table()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sensors", type=int, default=2_000)
    parser.add_argument("--per-sensor", type=int, default=5_000, help="hourly readings per sensor")
    args = parser.parse_args()
    source = make_data(args.sensors, args.per_sensor)
    readings = pq.ParquetFile(source).metadata.num_rows
    entity_df = entity_rows(args.sensors, args.per_sensor)
    seconds, cpu, out = run_mloop(source, entity_df)
    floor = run_floor(source)
    report = {
        "readings": readings,
        "entity_rows": len(entity_df),
        "features": 7,
        "mloop_seconds": round(seconds, 2),
        "mloop_cpu_seconds": round(cpu, 2),  # all threads: what a busy machine's wall time hides
        "load_average": round(os.getloadavg()[0], 1),
        "readings_per_second": round(readings / seconds),
        "floor_seconds": round(floor, 2),
        "vs_floor": round(seconds / floor, 1),
        "nulled_windows": out.attrs.get("nulled_windows", {}),
        "goal": "<= 30 s for 10M readings (issue 21)",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

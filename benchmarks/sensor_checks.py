"""Benchmark: what the sensor checks cost an ingestion (docs/agriculture/agri-sensors.md).

Hourly readings of ``--sensors`` sensors over ``--hours`` hours (stuck, spiking and out-of-range faults in
one sensor in ten), ingested into a fresh project twice: without sensor checks and with all four
(range, stuck=12, spike_z=6 over 48 readings, silence 6h), then a second batch of one day per sensor
with its history read from the stored files. Prints seconds and readings per second of each, the
ingestion's own ``sensors`` phase, and the quarantine counts by reason. Last, the false alarms: the
readings found faulty among ``--sensors`` x ``--hours`` clean ones (noise 0.2 on a slow random walk, no
daily swing: the hardest clean case for a robust z-score) with spike windows of 24 and 48 readings.

    .venv/bin/python benchmarks/sensor_checks.py --sensors 100 --hours 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mloop as ml


def readings(sensors: int, hours: int, start: pd.Timestamp, seed: int, offset: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = sensors * hours
    sensor = np.repeat(np.arange(sensors), hours)
    step = np.tile(np.arange(offset, offset + hours), sensors)
    value = 30 + 4 * np.sin(step / 24 * 2 * np.pi) + rng.normal(0, 0.6, n)
    broken = sensor % 10 == 3
    value[broken & (step % 500 < 30)] = 31.5  # stuck for 30 h every 500 h
    value[broken & (step % 97 == 50)] += 40  # a spike every 97 h
    value[(sensor % 10 == 7) & (step % 301 == 5)] = 150.0  # out of range
    ts = start + pd.to_timedelta(step - offset, unit="h")
    return pd.DataFrame({"field_id": sensor // 4, "sensor_id": sensor, "ts": ts, "moisture": value.round(2)})


def dataset(name: str, checks: bool) -> ml.Dataset:
    rules = ml.SensorChecks(key=["field_id", "sensor_id"], value="moisture", range=(0, 100), stuck=12, spike_z=6,
                            silence="6h")  # fmt: skip
    return ml.Dataset(name, columns=[
        ml.Column("field_id", "int64"), ml.Column("sensor_id", "int64"), ml.Column("ts", "timestamp"),
        ml.Column("moisture", "float64"),
    ], timestamp="ts", sensors=(rules,) if checks else ())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--hours", type=int, default=2000)
    args = parser.parse_args()
    start = pd.Timestamp("2025-03-01", tz="UTC")
    first = readings(args.sensors, args.hours, start, 0)
    later = readings(args.sensors, 24, start + pd.Timedelta(hours=args.hours), 1, offset=args.hours)
    print(f"{len(first):,} readings of {args.sensors} sensors, then a batch of {len(later):,}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        with ml.Project.open(root, env={}) as project:
            for checks in (False, True):
                name = "with_checks" if checks else "without_checks"
                for label, frame in (("first", first), ("next day", later)):
                    clock = time.perf_counter()
                    report = project.data.ingest(frame, dataset(name, checks))
                    seconds = time.perf_counter() - clock
                    print(f"{name:>15} {label:>8}: {seconds:6.2f} s, {len(frame) / seconds:>10,.0f} readings/s, "
                          f"sensors phase {report.timings.get('sensors', 0.0):.2f} s, quarantined "
                          f"{report.rows_quarantined:,}")  # fmt: skip
                    if checks:
                        print(
                            "                  "
                            + "; ".join(f"{v:,} {k}" for k, v in report.by_reason.items())
                        )
            print(f"open sensor incidents: {len(project.sensors.incidents('with_checks', open_only=True))}")
            clean = flat(args.sensors, args.hours, start)
            for window in (24, 48):
                checks = ml.SensorChecks(key=["field_id", "sensor_id"], value="moisture", range=(0, 100), stuck=12,
                                         spike_z=6, spike_window=window)  # fmt: skip
                report = project.data.validate(clean, dataset(f"clean_{window}", True).model_copy(
                    update={"sensors": (checks,)}))  # fmt: skip
                print(f"false alarms, spike_window={window}: {report.rows_quarantined:,} of {len(clean):,} clean readings "
                      f"({report.rows_quarantined / len(clean):.1e})")  # fmt: skip


def flat(sensors: int, hours: int, start: pd.Timestamp) -> pd.DataFrame:
    """Clean readings: a slow random walk and noise of 0.2, rounded to 0.01."""
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(0, 0.05, (sensors, hours)), axis=1)
    value = (30 + walk + rng.normal(0, 0.2, (sensors, hours))).round(2).ravel()
    sensor = np.repeat(np.arange(sensors), hours)
    ts = start + pd.to_timedelta(np.tile(np.arange(hours), sensors), unit="h")
    return pd.DataFrame({"field_id": sensor // 4, "sensor_id": sensor, "ts": ts, "moisture": value})


if __name__ == "__main__":
    main()

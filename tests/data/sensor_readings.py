"""Hourly soil-moisture readings of a few sensors, clean or with the faults real sensors have."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

import mloop as ml

START = datetime(2025, 5, 1, tzinfo=UTC)
STUCK = "moisture: stuck (the same value for 12 or more readings)"
SPIKE = "moisture: spike (robust z above 6 over the previous 48 readings)"
RANGE = "moisture: outside physical range [0, 100]"


def soil(name: str = "soil", **rules: object) -> ml.Dataset:
    checks = {"range": (0, 100), "stuck": 12, "spike_z": 6, "silence": "6h", **rules}
    return ml.Dataset(name, columns=[
        ml.Column("field_id", "int64"), ml.Column("sensor_id", "int64"), ml.Column("ts", "timestamp"),
        ml.Column("moisture", "float64"),
    ], timestamp="ts", sensors=ml.SensorChecks(key=["field_id", "sensor_id"], value="moisture", **checks))  # fmt: skip


def readings(
    sensors: int = 3,
    hours: int = 120,
    *,
    seed: int = 0,
    start: datetime = START,
    noise: float = 0.6,
    swing: float = 4.0,
    level: float = 30.0,
    rain: int = 0,
) -> pd.DataFrame:
    """Clean readings: a level, a daily swing, ``rain`` showers per sensor (a step up of 5 to 20 that
    dries out over days) and noise, rounded to the sensor's 0.01 resolution."""
    rng = np.random.default_rng(seed)
    frames = []
    for sensor in range(sensors):
        ts = pd.date_range(start, periods=hours, freq="h")
        daily = swing * np.sin((np.arange(hours) + 3 * sensor) / 24 * 2 * np.pi)
        drift = np.cumsum(rng.normal(0, noise / 4, hours))  # the soil dries and is watered: a slow walk
        wet = np.zeros(hours)
        for hour, amount in zip(rng.integers(0, hours, rain), rng.uniform(5, 20, rain), strict=True):
            wet[hour:] += amount * np.exp(-np.arange(hours - hour) / 72)
        signal = level + daily + drift + wet
        signal = np.where(signal > 85, 85 + (signal - 85) * 0.1, signal)  # a soil saturates below 100 %
        value = (signal + rng.normal(0, noise, hours)).round(2)
        frames.append(
            pd.DataFrame({"field_id": sensor // 2, "sensor_id": sensor, "ts": ts, "moisture": value})
        )
    return pd.concat(frames, ignore_index=True)


def at(frame: pd.DataFrame, sensor: int, hour: int) -> int:
    """The row index of ``sensor``'s reading at ``hour`` hours after the frame's first."""
    found = frame.index[
        (frame["sensor_id"] == sensor) & (frame["ts"] == frame["ts"].min() + pd.Timedelta(hours=hour))
    ]
    return int(found[0])

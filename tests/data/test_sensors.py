"""Sensor checks at ingestion: stuck, out-of-range and spiking readings are quarantined with their reason,
counted in the report and kept out of the accepted data; clean noisy series pass untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from tests.data.helpers import fresh_name, ingesting
from tests.data.sensor_readings import RANGE, SPIKE, STUCK, at, readings, soil


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("sensors") / "project"
    root.mkdir()
    with Project.open(root, env={}) as opened:
        yield opened


def test_each_fault_is_quarantined_with_its_reason_and_nothing_is_lost(project: Project) -> None:
    frame = readings(4, 96, seed=1)
    stuck = [at(frame, 1, h) for h in range(30, 50)]  # 20 readings at one value
    frame.loc[stuck, "moisture"] = frame.at[stuck[0], "moisture"]
    spike = at(frame, 2, 60)
    frame.loc[spike, "moisture"] += 40
    out_of_range = at(frame, 3, 10)
    frame.loc[out_of_range, "moisture"] = 140.0
    name = fresh_name("soil")
    report = project.data.ingest(frame, soil(name))
    assert report.by_reason == {STUCK: 20, SPIKE: 1, RANGE: 1}
    assert report.rows_read == len(frame) == report.rows_accepted + report.rows_quarantined
    quarantine = project.data.quarantine(name)
    assert sorted(quarantine["_row"].tolist()) == sorted(
        [*stuck, spike, out_of_range]
    )  # _row: 0-based position
    assert set(quarantine["_reason"]) == {STUCK, SPIKE, RANGE}
    kept = project.data.read(name)
    assert len(kept) == report.rows_accepted and kept["moisture"].max() < 100


def test_the_windows_see_the_readings_of_earlier_batches(project: Project) -> None:
    frame = readings(2, 72, seed=2)
    hour = frame["ts"] - frame["ts"].min()
    name = fresh_name("soil")
    assert project.data.ingest(frame[hour < pd.Timedelta(hours=48)], soil(name)).rows_quarantined == 0
    value = frame.at[at(frame, 0, 47), "moisture"]

    def batch(hours: range, stuck: bool) -> pd.DataFrame:
        part = frame[hour.isin([pd.Timedelta(hours=h) for h in hours])].copy()
        if stuck:
            part.loc[part["sensor_id"] == 0, "moisture"] = value
        return part

    # sensor 0 stuck from hour 47 on: 1 stored + 8 new readings is no run of 12 yet; a spike in sensor
    # 1's first new reading stands out only against the stored readings before it
    second = batch(range(48, 56), stuck=True)
    second.loc[at(frame, 1, 48), "moisture"] += 35
    assert project.data.ingest(second, name).by_reason == {SPIKE: 1}
    # 4 more make 13: only the new ones are judged (accepted readings are never taken back)
    assert project.data.ingest(batch(range(56, 60), stuck=True), name).by_reason == {STUCK: 4}
    # the quarantined stuck readings still count in the run: 3 more are stuck too
    assert project.data.ingest(batch(range(60, 63), stuck=True), name).by_reason == {STUCK: 3}
    # and a reading that moves ends it
    assert project.data.ingest(batch(range(63, 66), stuck=False), name).rows_quarantined == 0


# Few examples (each is an ingestion's DuckDB pass), the same ones every run: a robust z of 6 still fires
# on pure noise now and then (about 3 readings in 100,000, docs/agriculture/agri-sensors.md), which
# would make a random draw of examples flaky rather than the rule wrong.
@settings(ingesting, max_examples=12, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    sensors=st.integers(1, 3),
    hours=st.integers(60, 150),
    noise=st.floats(0.2, 2.0),
    swing=st.floats(0.0, 8.0),
    level=st.floats(15.0, 70.0),
    rain=st.integers(0, 3),
)
def test_clean_noisy_series_raise_nothing(
    project: Project, seed: int, sensors: int, hours: int, noise: float, swing: float, level: float, rain: int
) -> None:
    frame = readings(sensors, hours, seed=seed, noise=noise, swing=swing, level=level, rain=rain)
    report = project.data.validate(frame, soil(fresh_name("quiet")))
    assert report.rows_quarantined == 0, report.by_reason


def test_a_stuck_run_shorter_than_the_rule_passes(project: Project) -> None:
    frame = readings(1, 60, seed=4)
    frame.loc[20:30, "moisture"] = frame.at[20, "moisture"]  # 11 readings: one short of stuck=12
    assert project.data.validate(frame, soil(fresh_name("soil"))).rows_quarantined == 0
    frame.loc[31, "moisture"] = frame.at[20, "moisture"]
    assert project.data.validate(frame, soil(fresh_name("soil"))).by_reason == {STUCK: 12}


def test_sensor_checks_are_validated_with_a_fix() -> None:
    with pytest.raises(SchemaError, match="turn no rule on"):
        ml.Dataset.from_dict({**soil().to_dict(), "sensors": [{"key": ["sensor_id"], "value": "moisture"}]})
    with pytest.raises(SchemaError, match="at least 2"):
        ml.Dataset.from_dict(
            {**soil().to_dict(), "sensors": [{"key": ["sensor_id"], "value": "moisture", "stuck": 1}]}
        )
    with pytest.raises(SchemaError, match="does not declare"):
        ml.Dataset.from_dict(
            {**soil().to_dict(), "sensors": [{"key": ["probe"], "value": "moisture", "stuck": 5}]}
        )
    with pytest.raises(SchemaError, match="not a positive duration"):
        ml.Dataset.from_dict(
            {**soil().to_dict(), "sensors": [{"key": ["sensor_id"], "value": "moisture", "silence": "soon"}]}
        )


def test_the_schema_with_sensor_checks_reads_back_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "soil.yaml"
    path.write_text(soil().to_yaml())
    assert ml.Dataset.from_yaml(path) == soil()


def test_a_rain_step_is_no_spike_and_a_two_reading_spike_is_one(project: Project) -> None:
    frame = readings(1, 120, seed=9, noise=0.3, swing=0.0)
    frame.loc[70:, "moisture"] += 15  # rain: the soil stays wetter
    assert project.data.validate(frame, soil(fresh_name("soil"))).rows_quarantined == 0
    # a loose contact for two hours, a day and a half later (just after a step, the baseline of 48
    # readings spans both levels: its MAD is too wide to tell a spike)
    frame.loc[[106, 107], "moisture"] += 30
    report = project.data.validate(frame, soil(fresh_name("soil")))
    assert report.by_reason == {SPIKE: 2}

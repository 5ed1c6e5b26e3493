"""Sensor incidents: one per sensor and rule, opened by the ingestion that shows the fault, updated (not
sent again) while it lasts, resolved by an ingestion in which the sensor is healthy; silence too."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from mloop import Project
from mloop.errors import NotFound
from tests.data.helpers import fresh_name
from tests.data.sensor_readings import at, readings, soil


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("sensor-incidents") / "project"
    root.mkdir()
    with Project.open(root, env={}) as opened:
        yield opened


def _by_key(project: Project, name: str) -> dict[str, dict[str, object]]:
    return {a["key"].removeprefix(f"dataset:{name}/"): a for a in project.sensors.incidents(name)}


def _events(project: Project, action: str) -> int:
    return sum(1 for e in project.audit.events() if e.action == action)


def test_one_incident_per_sensor_and_rule_updated_then_resolved(project: Project) -> None:
    name = fresh_name("soil")
    frame = readings(4, 96, seed=5)
    hour = (frame["ts"] - frame["ts"].min()) / pd.Timedelta(hours=1)
    stuck = [at(frame, 1, h) for h in range(30, 50)]
    frame.loc[stuck, "moisture"] = frame.at[stuck[0], "moisture"]
    for h in (55, 62, 80):  # three spikes of one sensor: one incident
        frame.loc[at(frame, 2, h), "moisture"] += 40
    frame.loc[at(frame, 3, 20), "moisture"] = -5.0
    frame = frame.drop(index=[at(frame, 0, h) for h in range(50, 60)])  # 11 h without a reading
    alerts_before = _events(project, "monitoring.alert")
    project.data.ingest(frame[hour[frame.index] < 72], soil(name))
    found = _by_key(project, name)
    assert sorted(found) == [
        "field_id=0,sensor_id=0/silence", "field_id=0,sensor_id=1/moisture/stuck",
        "field_id=1,sensor_id=2/moisture/spike", "field_id=1,sensor_id=3/moisture/range",
    ]  # fmt: skip
    assert found["field_id=0,sensor_id=1/moisture/stuck"]["labels"]["count"] == "20"  # type: ignore[index]
    assert found["field_id=1,sensor_id=2/moisture/spike"]["labels"]["count"] == "2"  # type: ignore[index]
    assert _events(project, "monitoring.alert") - alerts_before == 4
    # the next day: the spiking sensor spikes again (updated, not a new incident), the others are healthy
    project.data.ingest(frame[hour[frame.index] >= 72], name)
    after = _by_key(project, name)
    assert len(after) == 4 and _events(project, "monitoring.alert") - alerts_before == 4
    spike = after["field_id=1,sensor_id=2/moisture/spike"]
    assert spike["status"] == "firing" and spike["labels"]["count"] == "3"  # type: ignore[index]
    assert {k: a["status"] for k, a in after.items() if "spike" not in k} == dict.fromkeys(
        ["field_id=0,sensor_id=0/silence", "field_id=0,sensor_id=1/moisture/stuck",
         "field_id=1,sensor_id=3/moisture/range"], "resolved")  # fmt: skip


def test_a_sensor_that_stops_reporting_is_silent_until_it_reports_again(project: Project) -> None:
    name = fresh_name("soil")
    frame = readings(2, 72, seed=6)
    hour = (frame["ts"] - frame["ts"].min()) / pd.Timedelta(hours=1)
    project.data.ingest(frame[hour < 24], soil(name))
    assert project.sensors.incidents(name) == []
    project.data.ingest(frame[(hour >= 24) & (hour < 48) & (frame["sensor_id"] == 0)], name)
    (silent,) = project.sensors.incidents(name, open_only=True)
    assert silent["name"] == "sensor_silence" and silent["labels"]["sensor_id"] == "1"
    assert silent["value"] == pytest.approx(24.0)  # hours since its last reading, at the newest reading
    project.data.ingest(frame[hour >= 48], name)  # both report again: the gap before is the one reported
    (incident,) = project.sensors.incidents(name)
    assert incident["status"] == "resolved"


def test_a_retired_sensor_is_not_silent_but_a_gap_in_its_readings_still_is(project: Project) -> None:
    name = fresh_name("soil")
    frame = readings(2, 72, seed=6)
    hour = (frame["ts"] - frame["ts"].min()) / pd.Timedelta(hours=1)
    # sensor 1 was taken out after 24 h; sensor 0 went quiet for 12 h in the middle and came back
    kept = ((frame["sensor_id"] == 0) & ((hour < 30) | (hour >= 42))) | (
        (frame["sensor_id"] == 1) & (hour < 24)
    )
    project.data.ingest(frame[kept], soil(name, retired="36h"))
    (gap,) = project.sensors.incidents(name, open_only=True)
    assert gap["labels"]["sensor_id"] == "0" and gap["value"] == pytest.approx(13.0)  # from 29 h to 42 h
    with pytest.raises(ValueError, match="retired='6h' needs silence= and must be longer than it"):
        soil(name, retired="6h")


def test_a_clean_dataset_raises_nothing_and_a_dataset_without_checks_is_refused(project: Project) -> None:
    name = fresh_name("soil")
    report = project.data.ingest(readings(3, 72, seed=7), soil(name))
    assert report.ok and project.sensors.check(name)["firing"] == [] and project.sensors.incidents(name) == []
    plain = fresh_name("plain")
    project.data.ingest(readings(1, 5), plain)
    with pytest.raises(NotFound, match="declares no sensor checks"):
        project.sensors.check(plain)

"""``mloop monitor sensors``: the sensor incidents of a dataset, as a table and as JSON."""

from __future__ import annotations

from pathlib import Path

from mloop import Project
from tests.cli.conftest import Run
from tests.data.sensor_readings import at, readings, soil


def test_the_cli_lists_sensor_incidents(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    frame = readings(1, 48, seed=8)
    frame.loc[at(frame, 0, 30), "moisture"] = 120.0
    with Project.open(root, env={}) as project:
        project.data.ingest(frame, soil("soil"))
    table = cli("monitor", "sensors", "soil", "--open")
    assert table.code == 0, table.err
    assert "field_id=0,sensor_id=0" in table.out and "range" in table.out
    found = cli("monitor", "sensors", "--json").json()
    assert [a["name"] for a in found] == ["sensor_range"]
    assert [a["name"] for a in cli("monitor", "alerts", "--json").json()] == ["sensor_range"]

"""``mloop demo --case agriculture --fast`` end to end, its outcome read from the project it leaves: the
event log, the registry, the forecasts on disk, the map and the edge package."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mloop import Project
from mloop.examples.agriculture.demo import run
from mloop.serving.scoring import read_scores

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("agriculture-demo")]  # one demo run for the module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any], str]]:
    folder = tmp_path_factory.mktemp("agriculture") / "farm"
    console = Console(file=io.StringIO(), width=120)
    summary = run(folder, fast=True, console=console)
    yield folder, summary, console.file.getvalue()  # type: ignore[attr-defined]


def test_the_drought_retrains_and_the_gate_promotes_a_model_that_learned_it(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, _ = demo
    with Project.open(folder, env={}) as project:
        timeline = project.loop.timeline("yield")
        champion = project.models.get("yield", alias="champion").version
    gates = [e for e in timeline if e["action"] == "loop.gate"]
    assert champion == 2 and summary["drought"]["champion"] == 2
    assert gates and str(gates[-1]["passed"]) == "True"
    # On the drought's holdout the retrained model beats the champion that never saw a drought.
    assert float(gates[-1]["challenger_value"]) < float(gates[-1]["champion_value"])
    assert [e["action"] for e in timeline][-1] == "loop.promote"
    assert summary["yield"]["lightgbm"] < summary["yield"]["naive"]  # the features carry the season


def test_every_field_is_forecast_each_morning_and_mapped(demo: tuple[Path, dict[str, Any], str]) -> None:
    folder, summary, _ = demo
    forecasts = read_scores(folder / "forecasts").to_pandas()
    assert len(forecasts) == summary["drought"]["mornings"] * 16
    assert set(forecasts["model_version"]) == {1} and forecasts["prediction"].notna().all()
    assert sorted(p.name.split("=")[1] for p in (folder / "forecasts").glob("date=*"))[0] == "2026-06-01"
    geo = json.loads((folder / "forecasts.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 16
    lon, lat = geo["features"][0]["geometry"]["coordinates"]
    assert 4.8 <= lon <= 6.2 and 51.8 <= lat <= 52.8  # RFC 7946: longitude first
    drifted = dict(summary["drought"]["drift"])
    assert max(drifted.values()) > 0.3  # the drought moved the inputs far from the training seasons


def test_bad_readings_are_quarantined_and_the_edge_package_checks_out(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, printed = demo
    with Project.open(folder, env={}) as project:
        sensors = project.data.ingestions("soil_sensors")
        tiles = project.data.quarantine("tiles")
    assert sum(i.rows_quarantined for i in sensors) > 0
    assert len(tiles) == 1 and "expected shape (4, 16, 16)" in tiles["_reason"].iloc[0]
    assert summary["disease"]["edge_check"] and summary["disease"]["accuracy"] > 0.8
    assert (folder / "disease-edge.tar.gz").exists() and "--check: ok" in printed

"""``mloop demo --case agriculture``: precision agriculture end to end, on embedded defaults.

Four seasons of a region's farms are ingested (broken soil sensors quarantined and raised as incidents, a
tile with the wrong band count refused); time-series features are defined over them; a CNN learns to spot
disease on image tiles and is packaged for edge devices, where a standalone runner checks it; three yield
models are compared on the newest season (the crop's mean, a LightGBM on the season's features, a 1-D CNN
on 120 days of them) and the LightGBM serves as champion. Then a drought season: every morning the loop's
scoring job forecasts every field (partitioned, resumable results and a GeoJSON map), the inputs drift far
from the training seasons, and when the harvest brings the drought's yields the loop retrains, gates and
promotes a model that learned it.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

import mloop as ml
from mloop.examples.agriculture import farm
from mloop.examples.agriculture.generate import World
from mloop.examples.agriculture.models import tile_classifier, yield_regressor
from mloop.examples.demo import platform_log
from mloop.loop.controller import LoopController
from mloop.monitoring.drift import ks
from mloop.project import Project
from mloop.serving.scoring import ScoringJob, export_geojson, read_scores

MARKER = ".mloop-demo"
DROUGHT = 2026


@dataclass(frozen=True)
class Size:
    fields: int = 60
    seasons: tuple[int, ...] = (2022, 2023, 2024, 2025)
    tiles: int = 1_200
    cnn_epochs: int = 8
    seq_epochs: int = 60
    rounds: int = 200
    every_days: int = 7  # the drought season is played a morning every this many days


FULL = Size()
FAST = Size(
    fields=16, seasons=(2023, 2024, 2025), tiles=400, cnn_epochs=5, seq_epochs=10, rounds=60, every_days=15
)


def run(folder: Path, *, fast: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    size = FAST if fast else FULL
    folder = _fresh(folder)
    started = time.perf_counter()
    console.print(
        Panel.fit("[bold]mloop demo[/bold] · precision agriculture · the closed loop", style="green")
    )
    (folder / "mloop.yaml").write_text(yaml.safe_dump({"project": "agriculture-demo", "log_level": "ERROR"}))
    world = World.make(size.fields, seed=7)
    summary: dict[str, Any] = {}
    with platform_log(folder), Project.open(folder, env={}) as project:
        console.rule("1 · ingest four seasons of farm data (bad readings quarantined with reasons)")
        _ingest(project, world, size, folder, console)
        console.rule("2 · time-series features: season sums, gap-aware daily means, trends")
        farm.define(project)
        console.print("weather (season rain and GDD since 1 March, 7-day heat, 14-day rain) · soil (daily mean "
                      "moisture on an hourly grid, 14-day trend) · canopy (30-day NDVI mean and trend)")  # fmt: skip
        console.rule("3 · disease on image tiles: a CNN, packaged for edge devices")
        summary["disease"] = _disease(project, world, size, folder, console)
        console.rule("4 · yield: the crop's mean, LightGBM on features, a 1-D CNN on 120-day sequences")
        summary["yield"] = _yields(project, size, folder, console)
        console.rule(f"5 · the {DROUGHT} drought: daily forecasts, drift, harvest, the loop retrains")
        summary["drought"] = _drought(project, world, size, folder, console)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    console.print(f"[bold green]done in {summary['seconds']:.0f} s[/bold green] · project in {folder} · "
                  f"map: {folder / 'forecasts.geojson'} · try: mloop --project {folder} loop timeline yield")  # fmt: skip
    return summary


def _fresh(folder: Path) -> Path:
    folder = Path(folder)
    if folder.exists():
        if not (folder / MARKER).exists():
            raise ml.MloopError(f"{folder} exists and was not made by mloop demo; choose another --dir.")
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by mloop demo --case agriculture\n")
    return folder


def _season(world: World, year: int, *, drought: bool = False) -> dict[str, pd.DataFrame]:
    weather = world.weather(year, drought=drought)
    disease = world.disease(year)
    ndvi = world.ndvi(year, weather, disease)
    return {"weather": weather, "sensors": world.sensors(year, weather), "ndvi": ndvi,
            "yields": world.yields(year, weather, ndvi, disease)}  # fmt: skip


def _ingest(project: Project, world: World, size: Size, folder: Path, console: Console) -> None:
    seasons = [_season(world, year) for year in size.seasons]
    frames = {name: pd.concat([s[name] for s in seasons], ignore_index=True) for name in seasons[0]}
    project.data.ingest(farm.field_rows(world.fields), farm.SCHEMAS["fields"])
    report = project.data.ingest(farm.weather_rows(frames["weather"]), farm.SCHEMAS["weather"])
    console.print(f"weather: {report.rows_accepted:,} field-days of {len(size.seasons)} seasons")
    report = project.data.ingest(frames["sensors"], farm.SCHEMAS["soil_sensors"])
    console.print(f"soil sensors: {report.rows_accepted:,} hourly readings accepted, "
                  f"{report.rows_quarantined:,} quarantined")  # fmt: skip
    for reason, count in sorted(report.by_reason.items(), key=lambda kv: -kv[1])[:4]:
        console.print(f"  [dim]{count:>5} × {reason}[/dim]")
    incidents = project.sensors.incidents("soil_sensors", open_only=True)
    rules = Counter(str(i["name"]).removeprefix("sensor_") for i in incidents)
    console.print(f"  {len(incidents)} sensor incidents open, one per sensor and rule (not per reading): "
                  + ", ".join(f"{n} {rule}" for rule, n in sorted(rules.items())))  # fmt: skip
    project.data.ingest(frames["ndvi"], farm.SCHEMAS["ndvi"])
    project.data.ingest(frames["yields"], farm.SCHEMAS["yields"])
    farm.label_rows(frames["yields"]).to_parquet(folder / "labels.parquet", index=False)
    images, labels = world.tiles(size.tiles, seed=1)
    bad = np.zeros((3, 16, 16), "float32")  # a camera with 3 bands
    tiles = pd.DataFrame({"tile_id": np.arange(1, len(images) + 2), "image": [*images, bad],
                          "diseased": [*labels, 0]})  # fmt: skip
    report = project.data.ingest(tiles, farm.SCHEMAS["tiles"])
    console.print(f"tiles: {report.rows_accepted:,} accepted, {report.rows_quarantined} quarantined "
                  f"({next(iter(report.by_reason), '')})")  # fmt: skip


def _disease(project: Project, world: World, size: Size, folder: Path, console: Console) -> dict[str, Any]:
    images = project.data.tensor("tiles", "image")
    labels = project.data.read("tiles")["diseased"].to_numpy()
    test_images, test_labels = world.tiles(200, seed=2)
    with project.runs.start("disease-cnn") as run:
        net = tile_classifier(epochs=size.cnn_epochs).fit(images, labels)
        accuracy = float((net.predict(test_images) == test_labels).mean())
        run.log_metrics({"test_accuracy": accuracy})
        version = run.register(net, "disease", input_example=images[:8])
    package = project.models.package_edge("disease", version.version, folder / "disease-edge.tar.gz")
    edge = folder / "edge-device"
    edge.mkdir()
    with tarfile.open(package.path) as archive:
        archive.extractall(edge, filter="data")
    np.save(edge / "tiles.npy", test_images[:16])
    runner = edge / package.folder / "runner.py"  # what a device runs: no mloop, only numpy and onnxruntime
    checked = subprocess.run([sys.executable, "-I", str(runner), "--check"], capture_output=True, text=True,
                             check=False, cwd=edge)  # fmt: skip
    console.print(f"disease v{version.version}: test accuracy {accuracy:.3f} · edge package "
                  f"{package.path.name} ({package.path.stat().st_size / 1024:.0f} KiB) · standalone runner "
                  f"--check: {'ok' if checked.returncode == 0 else 'FAILED: ' + checked.stderr[-200:]}")  # fmt: skip
    return {"version": version.version, "accuracy": accuracy, "edge_check": checked.returncode == 0}


def _yields(project: Project, size: Size, folder: Path, console: Console) -> dict[str, Any]:
    labels = pd.read_parquet(folder / "labels.parquet")
    run = farm.pipeline(str(folder / "labels.parquet"), rounds=size.rounds).run(project)
    project.models.set_alias("yield", "champion", run.model_version.version)
    project.deploy("yield", "yield", alias="champion")
    lightgbm_rmse = float(project.runs.get(run.id).metrics["test_rmse"])
    test_at, valid_at = sorted(labels["ts"].unique())[-1], sorted(labels["ts"].unique())[-2]
    train, test = labels[labels["ts"] < valid_at], labels[labels["ts"] == test_at]
    crops = project.data.read("fields").set_index("field_id")["crop"]
    naive_rmse = farm.rmse(test["yield_t_ha"], farm.naive(train, test, crops))
    spec = ml.SequenceSpec(length=120, step="1d", mask="mask")
    sequences = project.features.historical(labels, farm.SEQUENCE, sequence=spec)
    X, mask = spec.arrays(sequences)
    fit, held = (labels["ts"] < valid_at).to_numpy(), (labels["ts"] == test_at).to_numpy()
    scale = np.nanstd(X[fit], axis=(0, 1)) + 1e-6  # the features' own units differ by 1000x
    with project.runs.start("yield-sequence") as seq_run:
        net = yield_regressor(X.shape[2], epochs=size.seq_epochs)
        net.fit({"sequence": X[fit] / scale, "mask": mask[fit]}, labels["yield_t_ha"].to_numpy()[fit])
        predicted = net.predict({"sequence": X[held] / scale, "mask": mask[held]})
        sequence_rmse = farm.rmse(labels["yield_t_ha"].to_numpy()[held], predicted)
        seq_run.log_metrics({"test_rmse": sequence_rmse})
    table = Table("model", "test RMSE (t/ha)", title=f"yield forecast on {pd.Timestamp(test_at):%d %b %Y}")
    for name, value in (("crop mean (naive)", naive_rmse), (f"LightGBM v{run.model_version.version} · champion",
                        lightgbm_rmse), ("1-D CNN on 120 days", sequence_rmse)):  # fmt: skip
        table.add_row(name, f"{value:.2f}")
    console.print(table)
    return {"naive": naive_rmse, "lightgbm": lightgbm_rmse, "sequence": sequence_rmse,
            "champion": run.model_version.version}  # fmt: skip


def _drought(project: Project, world: World, size: Size, folder: Path, console: Console) -> dict[str, Any]:
    season = _season(world, DROUGHT, drought=True)
    project.data.ingest(farm.weather_rows(season["weather"]), "weather")
    report = project.data.ingest(season["sensors"], "soil_sensors")
    project.data.ingest(season["ndvi"], "ndvi")
    console.print(f"{DROUGHT}: {report.rows_accepted:,} sensor readings ({report.rows_quarantined} quarantined); "
                  "rain is a third lower and days are 2 °C warmer")  # fmt: skip
    fields = world.fields[["field_id", "lon", "lat", "crop"]]
    job = ScoringJob("daily-yield", target="yield@champion", input=lambda due: fields, output=folder / "forecasts",
                     cron="0 6 * * *", partition_by="date")  # fmt: skip
    policy = ml.LoopPolicy(
        "yield", farm.pipeline(str(folder / "labels.parquet"), rounds=size.rounds), triggers=[ml.OnNewData(rows=1)],
        # A season's test set is one forecast per field: the fast demo's 16 fields are under the gate's floor of
        # 50 test rows, so it turns the data checks off; the full demo's 60 fields keep them.
        gate=ml.Gate(metric="rmse", min_gain=0.0, max_latency_ms=None, data_checks=size.fields >= 50),
        rollout=ml.Canary(steps=[1.0], min_requests=0, max_p99_ms=None, compare=None), rollback=None,
        cooldown="1s",
    )  # fmt: skip
    controller = LoopController(project, [policy], jobs=[job], train="inprocess")
    day, harvest = datetime(DROUGHT, 6, 1, 6, 30, tzinfo=UTC), datetime(DROUGHT, 9, 30, tzinfo=UTC)
    mornings = 0
    while day < harvest:
        controller.tick(now=day)
        mornings += 1
        day += timedelta(days=size.every_days)
    forecasts = read_scores(folder / "forecasts").to_pandas()
    console.print(f"{mornings} mornings scored by the loop's job: {len(forecasts):,} forecasts in "
                  f"{folder.name}/forecasts/ (partitioned by day; a crash resumes where it stopped)")  # fmt: skip
    drift = _drift(project, folder)
    for feature, statistic in drift[:3]:
        console.print(f"  drift: {feature} KS {statistic:.2f} against the training seasons")
    geo = export_geojson(
        folder / "forecasts", folder / "forecasts.geojson", lon="lon", lat="lat", id="field_id"
    )
    console.print(
        f"map of the newest forecast per field: {folder.name}/forecasts.geojson ({geo.features} fields)"
    )
    new_labels = farm.label_rows(season["yields"])
    project.data.ingest(season["yields"], "yields")
    labels = pd.concat([pd.read_parquet(folder / "labels.parquet"), new_labels], ignore_index=True)
    labels.to_parquet(folder / "labels.parquet", index=False)
    console.print(f"harvest: {len(season['yields'])} fields' {DROUGHT} yields arrive "
                  f"(mean {season['yields']['yield_t_ha'].mean():.1f} t/ha)")  # fmt: skip
    decisions, first = [], _champion(project)
    for step in range(6):
        decisions += controller.tick(now=harvest + timedelta(hours=step + 1))
        if _champion(project) != first:
            break
    for event in project.loop.timeline("yield"):
        what = event.get("reason") or event.get("summary") or ""
        if event["action"] == "loop.gate":
            what = (f"v{event['challenger']} RMSE {float(event['challenger_value']):.2f} against v{event['champion']}'s "
                    f"{float(event['champion_value']):.2f} t/ha on the drought's newest forecasts; {what}")  # fmt: skip
        console.print(f"  [cyan]{event['action']}[/cyan] {what}")
    champion = _champion(project)
    return {"mornings": mornings, "forecasts": len(forecasts), "drift": drift[:3], "champion": champion,
            "decisions": [d.get("decision") for d in decisions]}  # fmt: skip


def _champion(project: Project) -> int:
    return project.models.get("yield", alias="champion").version


def _drift(project: Project, folder: Path) -> list[tuple[str, float]]:
    """The features at the drought's forecasts against those the champion trained on: KS per feature."""
    labels = pd.read_parquet(folder / "labels.parquet")
    forecasts = read_scores(folder / "forecasts").to_pandas()
    rows = forecasts[["field_id"]].assign(ts=pd.to_datetime(forecasts["features_as_of"], utc=True))
    now = project.features.historical(rows, farm.FEATURES)
    before = project.features.historical(labels[["field_id", "ts"]], farm.FEATURES)
    out = []
    for column in now.columns.difference(["field_id", "ts"]):
        if pd.api.types.is_numeric_dtype(now[column]) and now[column].notna().any():
            out.append((str(column), float(ks(before[column].dropna(), now[column].dropna())[0])))
    return sorted(out, key=lambda item: -item[1])


__all__ = ["FAST", "FULL", "Size", "run"]

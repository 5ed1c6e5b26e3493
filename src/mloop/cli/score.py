"""``mloop score``: batch predictions for a Parquet file, with features from the offline store; ``mloop geojson``:
scoring results as a GeoJSON map layer."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli import _output as out
from mloop.cli import _state


def score(
    target: str = typer.Argument(
        ..., help="Endpoint (its primary version) or model: fraud (alias champion, else newest), fraud:3, fraud@champion."
    ),
    input_path: Path = typer.Option(..., "--input", "-i", help="Parquet file of rows to score.", dir_okay=False),
    output_path: Path = typer.Option(..., "--output", "-o", help="Parquet file to write (replaced atomically); "
                                     "with --partition-by, a folder (resumed after a crash)."),
    timestamp: str = typer.Option("ts", "--timestamp", help="Column of each row's time (for the feature lookup)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows per chunk."),
    workers: int | None = typer.Option(None, "--workers", help="Processes; default min(CPUs, 4); 1 = this one."),
    version: int | None = typer.Option(None, "--version", "-v", help="Model version to score with."),
    alias: str | None = typer.Option(None, "--alias", "-a", help="Model alias to score with."),
    keep: list[str] = typer.Option([], "--keep", help="Only these input columns in the output (repeat or a,b)."),
    executor: str | None = typer.Option(None, "--executor", help="ray, ray:HOST:PORT or ray://HOST:PORT: Ray Data "
                                        "on that cluster; inprocess; process. Default: compute.executor if Ray."),
    partition_by: str | None = typer.Option(None, "--partition-by", help="Write a folder of partitions by this "
                                            "column (or 'date': the UTC day of --timestamp), resumable."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:  # fmt: skip
    """Score every row of a Parquet file; features are looked up as of each row's time (point in time).

    Examples:

      $ mloop score fraud -i rows.parquet -o scored.parquet
      $ mloop score fraud@champion -i rows.parquet -o scored.parquet --keep id,ts
      $ mloop score fraud -i rows.parquet -o scored.parquet --executor ray
      $ mloop score yield -i fields.parquet -o preds/ --partition-by date   # rerun after a crash resumes
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mloop.serving.scoring.job import score as run

    columns = [c.strip() for item in keep for c in item.split(",") if c.strip()]
    bar = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=out.err, transient=True, disable=not out.err.is_terminal or as_json,
    )  # fmt: skip
    task = bar.add_task("scoring", total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        report = run(_state.project(), target, input_path, output_path, timestamp=timestamp, chunk_rows=chunk_rows,
                     workers=workers, version=version, alias=alias, keep=columns or None, progress=tick,
                     executor=executor, partition_by=partition_by)  # fmt: skip
    if as_json:
        out.emit_json(report.to_dict())
        return
    out.fields("Scored", {
        "model": f"{report.model} v{report.version}", "endpoint": report.endpoint, "rows": report.rows,
        "chunks": report.chunks, "workers": report.workers, "output": report.output,
        "columns": report.columns, "resumed chunks": report.resumed_chunks or None,
    })  # fmt: skip
    for note in report.notes:
        out.console.print(note, highlight=False)
    out.success(
        f"{report.rows:,} rows scored in {report.seconds:.2f} s ({report.rows_per_second:,.0f} rows/s) "
        f"→ {report.output}"
    )


def geojson(
    scores: Path = typer.Argument(..., help="Scoring output: a Parquet file or a partitioned folder."),
    out_path: Path = typer.Option(..., "--out", "-o", help="GeoJSON file to write (replaced atomically).",
                                  dir_okay=False),
    lon: str | None = typer.Option(None, "--lon", help="Column of longitudes (degrees, WGS 84)."),
    lat: str | None = typer.Option(None, "--lat", help="Column of latitudes (degrees, WGS 84)."),
    geometry: str | None = typer.Option(None, "--geometry", help="Column of WKT or GeoJSON shapes (polygons)."),
    id_column: str | None = typer.Option(None, "--id", help="Column naming each field: one feature per field, "
                                         "its newest row."),
    time: str = typer.Option("features_as_of", "--time", help="Column of each row's time (newest wins per --id)."),
    properties: list[str] = typer.Option([], "--property", help="More columns to put in properties (repeat or a,b)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:  # fmt: skip
    """Write scoring results as a GeoJSON FeatureCollection (RFC 7946) for maps: points or polygons with
    their predictions, model version and time.

    Examples:

      $ mloop geojson preds/ --lon lon --lat lat --id field_id --out fields.geojson
      $ mloop geojson preds/ --geometry boundary --id field_id --out fields.geojson
    """
    from mloop.serving.scoring.geojson import export_geojson

    extra = [c.strip() for item in properties for c in item.split(",") if c.strip()]
    report = export_geojson(scores, out_path, lon=lon, lat=lat, geometry=geometry, id=id_column, time=time,
                            properties=extra)  # fmt: skip
    if as_json:
        out.emit_json(report.__dict__)
        return
    out.success(f"{report.features:,} features → {report.path} (bbox {report.bbox})")

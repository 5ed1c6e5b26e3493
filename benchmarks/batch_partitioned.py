"""Benchmark: partitioned, resumable batch scoring against the single-file mode on the same rows, a resume
after half the chunks, and the GeoJSON export of the result.

A model with one looked-up feature (prediction = 2 * value + 1, the point-in-time join of every chunk
included); ``--rows`` rows (default 200k) over 30 days and two entities, 10 chunks, one worker. The peer is
the single-file mode of the same ``score`` (one file, one rename); the partitioned mode writes a file per
day and chunk (300 here), each fsynced, plus a marker per chunk.

    .venv/bin/python benchmarks/batch_partitioned.py
    .venv/bin/python benchmarks/batch_partitioned.py --rows 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

import mloop as ml
from mloop.serving.scoring import export_geojson, read_scores, score

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def setup(root: Path, rows: int) -> ml.Project:
    project = ml.Project.open(root, env={})
    events = pd.DataFrame({"field_id": pd.Series([1, 1, 2], dtype="int64"), "value": [1.0, 100.0, 5.0],
                           "ts": pd.Series([T0, T0 + timedelta(days=3), T0], dtype="datetime64[us, UTC]")})  # fmt: skip
    events.to_parquet(root / "events.parquet", index=False)
    field = ml.Entity("field", join_keys=["field_id"])
    view = ml.FeatureView("last", entities=[field], source=ml.ParquetSource(str(root / "events.parquet"), timestamp="ts"),
                          ttl="60d", features=[ml.Field("value", "float64")])  # fmt: skip
    project.apply([field, view])
    x = pd.DataFrame({"value": [0.0, 1.0, 2.0, 10.0]})
    model = LinearRegression().fit(x, 2 * x["value"] + 1)
    project.models.register("yield", model, input_example=x, lineage={"features": ["last:value"]})
    rng = np.random.default_rng(0)
    days = rng.integers(1, 31, rows)
    frame = pd.DataFrame({
        "row": np.arange(rows), "field_id": rng.integers(1, 3, rows).astype("int64"),
        "ts": pd.Series(pd.Timestamp(T0) + pd.to_timedelta(days, unit="D")).astype("datetime64[us, UTC]"),
        "lon": rng.uniform(10, 12, rows), "lat": rng.uniform(47, 49, rows),
    })  # fmt: skip
    frame.to_parquet(root / "in.parquet", index=False)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    chunk = max(1, args.rows // 10)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        project = setup(root, args.rows)
        timings = {}
        for name, options in (("single file", {}), ("partitioned by date", {"partition_by": "date"})):
            out = root / ("one.parquet" if not options else "preds")
            started = time.perf_counter()
            score(project, "yield", root / "in.parquet", out, chunk_rows=chunk, workers=1, **options)  # type: ignore[arg-type]
            timings[name] = time.perf_counter() - started
            print(
                f"{name:>22}: {args.rows:,} rows in {timings[name]:.2f} s = {args.rows / timings[name]:,.0f} rows/s"
            )
        print(
            f"{'ratio':>22}: partitioned takes {timings['partitioned by date'] / timings['single file']:.2f}x the single file"
        )
        for marker in sorted((root / "preds").glob("_runs/*/chunk-*.json"))[5:]:  # as if killed after chunk 5
            marker.unlink()
        started = time.perf_counter()
        report = score(project, "yield", root / "in.parquet", root / "preds", chunk_rows=chunk, workers=1,
                       partition_by="date")  # fmt: skip
        rows = read_scores(root / "preds").num_rows
        print(f"{'resume (5 of 10 left)':>22}: {time.perf_counter() - started:.2f} s, {report.resumed_chunks} chunks "
              f"skipped, {rows:,} rows after (expected {args.rows:,})")  # fmt: skip
        started = time.perf_counter()
        geo = export_geojson(root / "preds", root / "fields.geojson", lon="lon", lat="lat", id="row")
        print(f"{'GeoJSON export':>22}: {geo.features:,} features in {time.perf_counter() - started:.2f} s")
        project.close()


if __name__ == "__main__":
    main()

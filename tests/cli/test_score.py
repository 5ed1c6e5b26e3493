"""``mloop score``: batch predictions from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop import Project
from tests.cli.conftest import Run
from tests.ray_cluster import RayCluster
from tests.serving import pit
from tests.serving.pit import DAY, T0


@pytest.fixture
def scored(cli: Run) -> Run:
    """The CLI's project with model ``pit`` (versions 1 and 2) and an input file ``in.parquet``."""
    root: Path = cli.root  # type: ignore[attr-defined]
    with Project.open(root, env={}) as project:
        pit.build(project, root, versions=2)
    pit.rows((1, T0 + 2 * DAY), (1, T0 + 4 * DAY), (2, T0 + 2 * DAY)).to_parquet(
        root / "in.parquet", index=False
    )
    return cli


def test_score_writes_predictions_and_prints_a_summary(scored: Run) -> None:
    root: Path = scored.root  # type: ignore[attr-defined]
    result = scored(
        "score", "pit:1", "--input", str(root / "in.parquet"), "--output", str(root / "out.parquet")
    )
    assert result.code == 0, result.err
    assert "3 rows scored" in result.out and "pit v1" in result.out and "out.parquet" in result.out
    out = pd.read_parquet(root / "out.parquet")
    np.testing.assert_allclose(out["prediction"], [pit.expected(v) for v in (1.0, 100.0, 5.0)])


def test_score_json_and_options(scored: Run) -> None:
    root: Path = scored.root  # type: ignore[attr-defined]
    result = scored(
        "score", "pit", "--input", str(root / "in.parquet"), "--output", str(root / "kept.parquet"),
        "--version", "2", "--keep", "row", "--chunk-rows", "2", "--workers", "1", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    report = result.json()
    assert (report["model"], report["version"], report["rows"], report["chunks"]) == ("pit", 2, 3, 2)
    assert report["columns"] == ["row", "prediction"] and report["endpoint"] is None
    assert list(pd.read_parquet(root / "kept.parquet").columns) == ["row", "prediction"]


def test_score_errors_say_how_to_fix_them(scored: Run) -> None:
    root: Path = scored.root  # type: ignore[attr-defined]
    unknown = scored(
        "score", "nope", "--input", str(root / "in.parquet"), "--output", str(root / "o.parquet")
    )
    assert unknown.code == 1 and "neither a live endpoint nor a registered model" in " ".join(
        unknown.err.split()
    )
    no_time = scored(
        "score",
        "pit",
        "--input",
        str(root / "in.parquet"),
        "--output",
        str(root / "o.parquet"),
        "--timestamp",
        "at",
    )
    assert no_time.code == 1 and "--timestamp" in " ".join(no_time.err.split())
    assert not (root / "o.parquet").exists()


@pytest.mark.ray
def test_score_executor_ray_scores_on_the_cluster(scored: Run, ray_cluster: RayCluster) -> None:
    root: Path = scored.root  # type: ignore[attr-defined]
    result = scored("score", "pit:1", "-i", str(root / "in.parquet"), "-o", str(root / "out.parquet"),
                    "--executor", ray_cluster.executor)  # fmt: skip
    assert result.code == 0, result.err
    out = pd.read_parquet(root / "out.parquet")
    np.testing.assert_allclose(out["prediction"], [pit.expected(v) for v in (1.0, 100.0, 5.0)])


def test_score_partitioned_then_a_geojson_map_of_the_fields(scored: Run) -> None:
    root: Path = scored.root  # type: ignore[attr-defined]
    pit.rows((1, T0 + 2 * DAY), (1, T0 + 4 * DAY), (2, T0 + 2 * DAY)).assign(
        lon=[11.0, 11.0, 12.0], lat=[48.0, 48.0, 49.0]
    ).to_parquet(root / "fields.parquet", index=False)
    args = (
        "score",
        "pit:1",
        "-i",
        str(root / "fields.parquet"),
        "-o",
        str(root / "preds"),
        "--partition-by",
        "date",
    )
    first = scored(*args, "--chunk-rows", "2", "--workers", "1", "--json")
    assert first.code == 0, first.err
    assert first.json()["rows"] == 3 and first.json()["resumed_chunks"] == 0
    assert sorted(p.name for p in (root / "preds").glob("date=*")) == ["date=2026-02-03", "date=2026-02-05"]
    again = scored(*args, "--chunk-rows", "2", "--workers", "1")  # the same run: nothing left to score
    assert again.code == 0 and "resumed" in again.out
    result = scored("geojson", str(root / "preds"), "--lon", "lon", "--lat", "lat", "--id", "customer_id",
                    "--out", str(root / "fields.geojson"))  # fmt: skip
    assert result.code == 0, result.err
    assert "2 features" in result.out
    body = json.loads((root / "fields.geojson").read_text())
    by_id = {f["id"]: f for f in body["features"]}
    assert by_id[1]["geometry"]["coordinates"] == [11.0, 48.0]
    assert by_id[1]["properties"]["prediction"] == pytest.approx(pit.expected(100.0))  # its newest row: day 4
    assert by_id[1]["properties"]["model_version"] == 1
    bad = scored(
        "geojson", str(root / "preds"), "--lon", "x", "--lat", "lat", "--out", str(root / "b.geojson")
    )
    assert bad.code != 0 and "no column(s) ['x']" in " ".join(bad.err.split())

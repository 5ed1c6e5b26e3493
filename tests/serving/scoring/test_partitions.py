"""Partitioned, resumable batch scoring: ``score(..., partition_by=...)`` commits chunk by chunk, and a rerun
after a crash (a real ``kill -9``) resumes with no row lost or written twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import MloopError, SchemaError
from mloop.serving.scoring import read_scores, score
from tests.serving import pit
from tests.serving.pit import DAY, T0

ROWS = 240
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("partitions")
    project = Project.open(root, env={})
    pit.build(project, root, versions=2)
    project.models.set_alias("pit", "champion", 1)
    # 240 rows over four days (day 2 to day 5), customers 1 and 2, out of time order.
    frame = pit.rows(*[(1 + i % 2, T0 + (2 + (i * 7) % 4) * DAY) for i in range(ROWS)])
    frame.to_parquet(root / "in.parquet", index=False)
    # The same rows carrying their feature value: no lookup, so fast to score many times over.
    frame.assign(value=np.arange(ROWS) / 10).to_parquet(root / "own.parquet", index=False)
    yield project
    project.close()


def _rows(folder: Path) -> pd.DataFrame:
    return read_scores(folder).to_pandas().sort_values("row").reset_index(drop=True)


@pytest.fixture(scope="module")
def whole(small: Project, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """An uninterrupted partitioned run: the rows every resumed run must equal."""
    folder = tmp_path_factory.mktemp("whole") / "preds"
    score(
        small,
        "pit@champion",
        small.root / "in.parquet",
        folder,
        partition_by="date",
        chunk_rows=40,
        workers=1,
    )
    return _rows(folder)


def test_each_row_is_stamped_and_filed_under_its_day(
    small: Project, whole: pd.DataFrame, tmp_path: Path
) -> None:
    single = tmp_path / "one.parquet"
    score(small, "pit@champion", small.root / "in.parquet", single, chunk_rows=40, workers=1)
    one = pd.read_parquet(single)  # the single-file mode: unchanged columns, no stamps
    assert list(one.columns) == ["row", "customer_id", "ts", "prediction"]
    assert len(whole) == ROWS and whole["row"].tolist() == list(range(ROWS))
    np.testing.assert_allclose(whole["prediction"], one["prediction"])
    assert set(whole["model"]) == {"pit"} and set(whole["model_version"]) == {1}
    assert (whole["features_as_of"] == whole["ts"]).all()
    assert (whole["date"] == whole["ts"].dt.strftime("%Y-%m-%d")).all()
    assert sorted(whole["date"].unique()) == [f"2026-02-0{d}" for d in (3, 4, 5, 6)]


@pytest.mark.slow  # a fresh interpreter imports mloop: about 2 s of CPU before it scores a row
def test_a_kill_9_midway_resumes_without_duplicates(
    small: Project, whole: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "preds"
    # A child process scores and kills itself (SIGKILL: no cleanup, no finally) after three chunks.
    script = f"""
import os, signal
from mloop import Project
from mloop.serving.scoring import score
seen = []
def tick(done, total):
    seen.append(done)
    if len(seen) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
if __name__ == "__main__":
    project = Project.open({str(small.root)!r}, env={{}})
    score(project, "pit@champion", {str(small.root / "in.parquet")!r}, {str(folder)!r}, partition_by="date",
          chunk_rows=40, workers=1, progress=tick)
"""
    env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PATH": "/usr/bin:/bin"}
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    markers = list(folder.glob("_runs/*/chunk-*.json"))
    assert 3 <= len(markers) < 6 and not list(folder.glob("_runs/*/done.json"))
    report = score(small, "pit@champion", small.root / "in.parquet", folder, partition_by="date", chunk_rows=40,
                   workers=1)  # fmt: skip
    assert report.resumed_chunks == len(markers) and "resumed" in report.notes[-1]
    pd.testing.assert_frame_equal(_rows(folder), whole)
    assert not [p for p in folder.rglob(".*") if p.is_file()]  # no temporary file left behind


@settings(max_examples=5, deadline=None)
@given(chunk_rows=st.integers(20, 120), lost=st.sets(st.integers(0, 11), max_size=6), data=st.data())
def test_a_crash_at_any_point_of_a_commit_never_duplicates_a_row(
    small: Project, chunk_rows: int, lost: set[int], data: st.DataObject
) -> None:
    # A crash between a chunk's file renames and its marker leaves the files without the marker (lost) and,
    # mid-rename, only some of them; the rerun scores those chunks again and replaces what was there.
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "preds"
        run = dict(partition_by="date", chunk_rows=chunk_rows, workers=1)
        score(small, "pit@champion", small.root / "own.parquet", folder, **run)  # type: ignore[arg-type]
        expected = _rows(folder)
        (done,) = folder.glob("_runs/*/done.json")
        done.unlink()
        markers = sorted(folder.glob("_runs/*/chunk-*.json"))
        for i in sorted(lost):
            if i < len(markers):
                files = json.loads(markers[i].read_text())["files"]
                markers[i].unlink()
                for name in data.draw(st.lists(st.sampled_from(files), unique=True)):
                    (folder / name).unlink()  # renamed before the crash: not this one
        report = score(small, "pit@champion", small.root / "own.parquet", folder, **run)  # type: ignore[arg-type]
        assert report.resumed_chunks == len(markers) - len({i for i in lost if i < len(markers)})
        pd.testing.assert_frame_equal(_rows(folder), expected)


def test_a_resumed_run_keeps_the_version_it_started_with(small: Project, tmp_path: Path) -> None:
    folder = tmp_path / "preds"
    run = dict(partition_by="date", chunk_rows=80, workers=1)
    score(small, "pit@champion", small.root / "own.parquet", folder, **run)  # type: ignore[arg-type]
    for marker in sorted(folder.glob("_runs/*/chunk-*.json"))[1:]:  # as if killed after chunk 1
        marker.unlink()
    small.models.set_alias("pit", "champion", 2)
    try:
        report = score(small, "pit@champion", small.root / "own.parquet", folder, **run)  # type: ignore[arg-type]
    finally:
        small.models.set_alias("pit", "champion", 1)
    assert report.version == 1 and any("resumed with v1" in note for note in report.notes)
    assert set(_rows(folder)["model_version"]) == {1} and len(_rows(folder)) == ROWS


def test_partitioned_output_refuses_bad_options_with_the_fix(small: Project, tmp_path: Path) -> None:
    source = small.root / "in.parquet"
    with pytest.raises(SchemaError, match=r"partition_by='field'.*'date'"):
        score(small, "pit:1", source, tmp_path / "p", partition_by="field", workers=1)
    pd.DataFrame({"value": [1.0, 2.0]}).to_parquet(
        tmp_path / "untimed.parquet"
    )  # no time column to date rows by
    with pytest.raises(SchemaError, match=r"partition_by='date'.*'ts' column"):
        score(small, "pit:1", tmp_path / "untimed.parquet", tmp_path / "p", partition_by="date", workers=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(MloopError, match="is a file.*folder"):
        score(small, "pit:1", source, tmp_path / "file", partition_by="date")
    with pytest.raises(MloopError, match="local workers.*--executor process"):
        score(small, "pit:1", source, tmp_path / "p", partition_by="date", executor="ray")
    with pytest.raises(MloopError, match="is a folder"):
        score(small, "pit:1", source, tmp_path / "p")  # single-file mode still wants a file
    assert not list((tmp_path / "p").glob("*=*"))

"""Materialization: chunked, committed chunk by chunk, resumable after a crash with no gap and no
duplicate, and the same values online as a straight run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import mloop as ml
from mloop import Project
from mloop.errors import SchemaError
from mloop.features import materialize as materializing
from tests.features.fixtures import T0, at, customer, transactions, views, write


def _online(project: Project) -> dict[str, list[object]]:
    return project.features.online(
        {"customer_id": list(range(1, 13))}, ["customer_stats:*", "customer_last:*"], at=at
    )


def test_a_crash_mid_run_resumes_without_gaps_or_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, stats = views(path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight, crashed = Project.open(tmp_path / "a", env={}), Project.open(tmp_path / "b", env={})
    try:
        for project in (straight, crashed):
            project.apply([last, stats])
        straight.features.materialize_incremental(at, chunk="12h")

        real = materializing.materialize_chunk
        calls = {"n": 0}

        def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            piece = real(*args, **kwargs)  # the chunk reaches the online store ...
            if calls["n"] == 7:
                raise RuntimeError("power cut")  # ... but its watermark is never committed
            return piece

        monkeypatch.setattr("mloop.features.materialize_run.materialize_chunk", flaky)
        with pytest.raises(RuntimeError, match="power cut"):
            crashed.features.materialize_incremental(at, chunk="12h")
        monkeypatch.setattr("mloop.features.materialize_run.materialize_chunk", real)
        watermark = {f.view: f.watermark for f in crashed.features.freshness()}
        assert any(w is not None and w < at for w in watermark.values())  # it stopped part way
        crashed.features.materialize_incremental(at, chunk="12h")  # resume

        assert _online(crashed) == _online(straight)  # no gap, and the re-written chunk counted nothing twice
        for info in crashed.features.freshness():
            assert info.watermark == at
    finally:
        straight.close()
        crashed.close()


def test_materializing_the_same_range_twice_changes_nothing(sqlite_project: Project, tmp_path: Path) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    sqlite_project.apply(list(views(path)))
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    once = _online(sqlite_project)
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    assert _online(sqlite_project) == once


def test_a_new_view_version_starts_empty_online_and_drops_the_old_after_materializing(
    sqlite_project: Project, tmp_path: Path
) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, _ = views(path)
    sqlite_project.apply([last])
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    assert _row(sqlite_project)["amount"] != [None]
    changed = ml.FeatureView("customer_last", entities=[customer], source=last.source, ttl="3d",
                             features=[ml.Field("amount", "float64")])  # fmt: skip
    sqlite_project.apply([changed])
    assert _row(sqlite_project)["amount"] == [None]  # version 2 is not materialized yet
    sqlite_project.features.materialize_incremental(at)
    assert _row(sqlite_project)["amount"] != [None]
    store = sqlite_project.features.online_store
    assert store.read([("customer_last.v1", "3")]).rows == [None]  # the old version's data is gone


def _row(project: Project) -> dict[str, list[object]]:
    return project.features.online({"customer_id": [3]}, ["customer_last:amount"], at=at)


def test_a_source_that_does_not_match_the_view_is_refused(sqlite_project: Project, tmp_path: Path) -> None:
    frame = transactions()
    naive = frame.assign(ts=frame.ts.dt.tz_localize(None))
    path = write(naive, tmp_path / "naive.parquet")
    view = ml.FeatureView("v", entities=[customer], source=ml.ParquetSource(str(path), timestamp="ts"),
                          features=[ml.Field("amount", "float64")])  # fmt: skip
    sqlite_project.apply([view])
    with pytest.raises(SchemaError, match="not a timezone-aware timestamp"):
        sqlite_project.features.materialize(T0, at)
    path = write(frame.drop(columns="amount"), tmp_path / "noamount.parquet")
    sqlite_project.apply([ml.FeatureView("v", entities=[customer], source=ml.ParquetSource(str(path), timestamp="ts"),
                                         features=[ml.Field("amount", "float64")])])  # fmt: skip
    with pytest.raises(SchemaError, match=r"no column\(s\) \['amount'\]"):
        sqlite_project.features.materialize(T0, at)


def test_progress_is_reported_per_chunk(sqlite_project: Project, tmp_path: Path) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, _ = views(path)
    sqlite_project.apply([last])
    seen: list[tuple[str, float]] = []
    sqlite_project.features.materialize(
        T0, at, chunk="1d", progress=lambda view, done: seen.append((view, done))
    )
    assert [s[1] for s in seen] == [0.25, 0.5, 0.75, 1.0] and {s[0] for s in seen} == {"customer_last"}

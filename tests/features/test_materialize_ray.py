"""Materialization on a real Ray cluster: chunks in parallel, watermarks committed in order, so a run
that stops part way resumes with no gap and nothing twice, and the online store ends as a local run's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mloop import Project
from mloop.config import ComputeSettings
from mloop.errors import OnlineStoreUnavailable
from mloop.features import materialize_ray
from mloop.features.materialize_ray import ChunkTask, chunks_on_ray
from mloop.features.tables import table_for
from tests.features.fixtures import T0, at, transactions, views, write
from tests.ray_cluster import RayCluster
from tests.services import free_port

pytestmark = pytest.mark.ray


def _online(project: Project) -> dict[str, list[object]]:
    return project.features.online(
        {"customer_id": list(range(1, 13))}, ["customer_stats:*", "customer_last:*"], at=at
    )


def _chunks(project: Project) -> int:
    from sqlalchemy import func, select

    from mloop.store.schema import MaterializationRow

    with project._ctx.store.read() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(MaterializationRow)) or 0)


def test_chunks_run_on_the_cluster_and_a_stopped_run_resumes_exactly(
    tmp_path: Path, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, stats = views(path)
    for name in ("local", "ray", "stopped"):
        (tmp_path / name).mkdir()
    projects = {name: Project.open(tmp_path / name, env={}) for name in ("local", "ray", "stopped")}
    try:
        for project in projects.values():
            project.apply([last, stats])
        local = projects["local"].features.materialize_incremental(at, chunk="12h")
        report = projects["ray"].features.materialize_incremental(
            at, chunk="12h", executor=ray_cluster.executor
        )
        assert _online(projects["ray"]) == _online(projects["local"])
        assert _chunks(projects["ray"]) == _chunks(projects["local"]) > 10
        assert report.summary()["views"] == local.summary()["views"]  # rows, values, newest event per view

        # The driver stops after three chunks (a power cut): the tasks after them ran or were cancelled,
        # but only the three are committed, in order, so the watermark is the third chunk's end.
        real = materialize_ray.chunks_on_ray

        def power_cut(compute: ComputeSettings, tasks: list[ChunkTask]) -> Iterator[object]:
            for n, piece in enumerate(real(compute, tasks)):
                if n == 3:
                    raise RuntimeError("power cut")
                yield piece

        stopped = projects["stopped"]
        monkeypatch.setattr("mloop.features.materialize_run.chunks_on_ray", power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            stopped.features.materialize_incremental(at, chunk="12h", executor=ray_cluster.executor)
        monkeypatch.setattr("mloop.features.materialize_run.chunks_on_ray", real)
        first = min(f.watermark for f in stopped.features.freshness() if f.watermark is not None)
        assert first is not None and first < at
        stopped.features.materialize_incremental(at, chunk="12h", executor=ray_cluster.executor)  # resume
        assert _online(stopped) == _online(projects["local"])  # no gap, nothing counted twice
        assert all(info.watermark == at for info in stopped.features.freshness())
    finally:
        for project in projects.values():
            project.close()


def test_a_failed_chunk_yields_the_chunks_before_it_then_its_error(
    sqlite_project: Project, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, _ = views(path)
    sqlite_project.apply([last])
    view = sqlite_project.features.get("customer_last")
    table = table_for(view, None, tmp_path)  # type: ignore[arg-type]  # a ParquetSource reads no dataset
    good = ChunkTask(sqlite_project.settings.online_url, view, table, "customer_last.v1", T0, T0 + timedelta(days=1),
                     None, None)  # fmt: skip
    # The third chunk's online store is a Redis nothing listens for: it fails on the worker, as itself.
    bad = dataclasses.replace(good, online_url=f"redis://127.0.0.1:{free_port()}/0")
    compute = ComputeSettings(executor=ray_cluster.executor)
    seen = []
    with pytest.raises(OnlineStoreUnavailable, match="cannot reach Redis"):
        for piece, _ in chunks_on_ray(compute, [good, good, bad, good]):
            seen.append(piece)
    assert len(seen) == 2 and all(p.rows > 0 for p in seen)

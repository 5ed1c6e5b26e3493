"""Materialization chunks in parallel on Ray, committed in order.

Each chunk of a view is a Ray task that reads its ``(start, end]`` of the offline rows with DuckDB and writes
them to the online store itself (writes are idempotent: plain features forward-only, aggregation events
under stable ids). The driver receives the chunks in order and commits each watermark only after every
chunk before it: a failed chunk leaves the watermark before it, the tasks after it are cancelled, and a
rerun starts from that watermark and adds nothing twice. Every node must reach the view's data and the
online store (a shared data_url, Redis; a SQLite online store is one host's file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mloop._ray import connect, lost, task_options, task_slots
from mloop._time import utcnow
from mloop.config import ComputeSettings
from mloop.features.definitions import FeatureView
from mloop.features.materialize import Chunk, materialize_chunk
from mloop.features.materialize import connect as duckdb_connect
from mloop.features.offline import Table


@dataclass(frozen=True)
class ChunkTask:
    online_url: str
    view: FeatureView
    table: Table
    namespace: str
    start: datetime
    end: datetime
    events_after: datetime | None
    workdir: str | None


def run_chunk(task: ChunkTask) -> tuple[Chunk, datetime]:
    """One chunk, written to the online store from wherever this runs; (what was written, when it began)."""
    from mloop.features.online import open_online_store

    started = utcnow()
    store = open_online_store(task.online_url)
    try:
        with duckdb_connect(Path(task.workdir) if task.workdir else None) as con:
            task.table.attach(con)
            chunk = materialize_chunk(con, task.view, task.table, store, task.namespace,
                                      Chunk(task.start, task.end), task.events_after)  # fmt: skip
    finally:
        store.close()
    return chunk, started


def chunks_on_ray(compute: ComputeSettings, tasks: Sequence[ChunkTask]) -> Iterator[tuple[Chunk, datetime]]:
    """Run ``tasks`` at once on Ray and yield their results in order; the first failure cancels the rest
    and is raised (a task lost with its node, after ``compute.max_retries``, as ComputeUnavailable)."""
    if not tasks:
        return
    ray = connect(compute)
    task_slots(ray, compute)  # a chunk no node can hold: ConfigError now, not a wait forever
    remote = ray.remote(run_chunk).options(**task_options(compute))
    refs = [remote.remote(task) for task in tasks]
    done = 0
    try:
        for task, ref in zip(tasks, refs, strict=True):
            try:
                result: tuple[Chunk, datetime] = _get(ray, ref)
            except Exception as exc:
                where = f"Chunk ({task.start.isoformat()}, {task.end.isoformat()}] of feature view {task.view.name!r}"
                raise lost(exc, where, compute.max_retries) from None
            done += 1
            yield result
    finally:
        for ref in refs[done:]:  # failed, interrupted, or the caller stopped early: stop the rest
            _cancel(ray, ref)


def _get(ray: Any, ref: Any) -> Any:
    while True:  # short waits, so that Ctrl-C is seen at once
        ready, _ = ray.wait([ref], timeout=0.5)
        if ready:
            return ray.get(ref)


def _cancel(ray: Any, ref: Any) -> None:
    with contextlib.suppress(Exception):  # finished already, or its node is gone: nothing left to stop
        ray.cancel(ref, force=True)


__all__ = ["ChunkTask", "chunks_on_ray", "run_chunk"]

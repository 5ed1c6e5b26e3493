"""Materialization chunks in parallel on Ray, committed in order.

Each chunk of a view is a Ray task that reads its ``(start, end]`` of the offline rows with DuckDB and writes
them to the online store itself (writes are idempotent: plain features forward-only, aggregation events
under stable ids). The driver receives the chunks in order and commits each watermark only after every
chunk before it: a failed chunk leaves the watermark before it and no more tasks start, and a
rerun starts from that watermark and adds nothing twice. Every node must reach the view's data and the
online store (a shared data_url, Redis; a SQLite online store is one host's file).
"""

from __future__ import annotations

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
    """Run ``tasks`` on Ray, as many at once as the cluster holds, and yield their results in order.

    The first failure stops the submission of more tasks and is raised (a task lost with its node, after
    ``compute.max_retries``, as ComputeUnavailable) once the tasks still running have finished; so does a
    caller that stops early. Nothing is cancelled: Ray 2.60's ``ray.cancel`` races with a task that
    finishes at that moment and aborts the driver (``Tried to complete task that was not pending``), and a
    chunk is short and idempotent, so letting the few running ones finish costs little and nothing of the
    run still writes to the online store after this returns."""
    if not tasks:
        return
    ray = connect(compute)
    slots = task_slots(ray, compute)  # a chunk no node can hold: ConfigError now, not a wait forever
    remote = ray.remote(run_chunk).options(**task_options(compute))
    running: dict[Any, int] = {}  # ref -> index of its task
    outcomes: dict[int, tuple[Chunk, datetime] | BaseException] = {}
    submitted = 0
    try:
        for index, task in enumerate(tasks):
            while index not in outcomes:
                stop = any(isinstance(o, BaseException) for o in outcomes.values())
                while not stop and submitted < len(tasks) and len(running) < slots:
                    running[remote.remote(tasks[submitted])] = submitted
                    submitted += 1
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)  # short: Ctrl-C is seen
                for ref in ready:
                    outcomes[running.pop(ref)] = _outcome(ray, ref)
            outcome = outcomes.pop(index)
            if isinstance(outcome, BaseException):
                where = f"Chunk ({task.start.isoformat()}, {task.end.isoformat()}] of feature view {task.view.name!r}"
                raise lost(outcome, where, compute.max_retries) from None
            yield outcome
    finally:
        while running:  # failed, interrupted, or the caller stopped early: let the running ones finish
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0.5)
            for ref in ready:
                running.pop(ref)


def _outcome(ray: Any, ref: Any) -> tuple[Chunk, datetime] | BaseException:
    try:
        result: tuple[Chunk, datetime] = ray.get(ref)
    except Exception as exc:
        return exc
    return result


__all__ = ["ChunkTask", "chunks_on_ray", "run_chunk"]

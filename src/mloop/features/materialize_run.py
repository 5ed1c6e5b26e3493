"""One materialization run over several feature views: plan each view's chunks, write them locally or on
Ray, commit each in order, then trim and drop the views' old online namespaces.

:meth:`FeatureService.materialize <mloop.features.service.FeatureService.materialize>` calls
:func:`run` with what only the service knows (the views' tables and versions, the online store, how to
commit a chunk); the chunk itself is :func:`mloop.features.materialize.materialize_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mloop._time import utcnow
from mloop.config import ComputeSettings
from mloop.features.aggregate import to_micros
from mloop.features.definitions import FeatureView
from mloop.features.materialize import Chunk, check_timestamps, chunks, materialize_chunk, span
from mloop.features.materialize import connect as duckdb_connect
from mloop.features.materialize_ray import ChunkTask, chunks_on_ray
from mloop.features.online.base import OnlineStore
from mloop.features.reports import MaterializeReport


@dataclass(frozen=True)
class ViewRun:
    """A view to materialize: its definition, its offline table and its applied version."""

    view: FeatureView
    table: Any  # mloop.features.offline.Table
    version: int


def run(
    views: list[ViewRun],
    *,
    start_of: Callable[[FeatureView], datetime | None],
    end: datetime,
    size: timedelta,
    store: OnlineStore,
    online_url: str,
    workdir: Path,
    compute: ComputeSettings | None,
    commit: Callable[[str, int, Chunk, datetime], None],
    report: MaterializeReport,
    progress: Any = None,
) -> None:
    """Materialize each view from ``start_of(view)`` (None: its first event) to ``end`` in chunks of
    ``size``; ``commit(view, version, chunk, started)`` records each written chunk before the next. On
    Ray (``compute``) a view's chunks run in parallel and are committed in order."""
    with duckdb_connect(workdir) as con:
        plans = []
        for item in views:
            item.table.attach(con)
            check_timestamps(con, item.view, item.table)
            start = start_of(item.view)
            if start is None:
                first, _ = span(con, item.table)
                start = first - size if first else end
            events_after = end - item.view.max_window if item.view.max_window else None
            plans.append((item, list(chunks(start, end, size)), events_after))
        total = sum(len(spans) for _, spans, _ in plans) or 1
        done = 0
        for item, spans, events_after in plans:
            view, namespace = item.view, f"{item.view.name}.v{item.version}"
            if compute is not None:  # chunks in parallel, committed in order (materialize_ray.py)
                tasks = [ChunkTask(online_url, view, item.table, namespace, lo, hi, events_after, str(workdir))
                         for lo, hi in spans]  # fmt: skip
                pieces = chunks_on_ray(compute, tasks)
            else:
                pieces = _local(con, view, item.table, store, namespace, spans, events_after)
            for piece, started in pieces:
                commit(view.name, item.version, piece, started)
                report.add(view.name, piece)
                done += 1
                if progress:
                    progress(view.name, done / total)
            if view.max_window:
                store.trim(namespace, to_micros(end - view.max_window))
            for old in range(1, item.version):
                store.drop(f"{view.name}.v{old}")


def _local(con: Any, view: FeatureView, table: Any, store: OnlineStore, namespace: str,
           spans: list[tuple[datetime, datetime]], events_after: datetime | None) -> Iterator[tuple[Chunk, datetime]]:  # fmt: skip
    for lo, hi in spans:
        started = utcnow()
        yield materialize_chunk(con, view, table, store, namespace, Chunk(lo, hi), events_after), started

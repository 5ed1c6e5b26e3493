"""Heartbeats of running runs, and what a missing one means.

A process with runs open writes ``runs.heartbeat_at`` for all of them every :data:`INTERVAL` seconds,
from one daemon thread per process (one UPDATE per metadata store, however many runs are open). A run
killed with ``kill -9`` (or whose machine died) stops beating; a run whose heartbeat is older than
:data:`MISSED` of its intervals, and whose process is gone where that can be checked (same host: its pid
is dead), is marked ``failed`` by the next read of runs (:meth:`RunService.get`, ``search``, ``list``).

Runs from before heartbeats existed (``heartbeat_at`` NULL) are never judged by one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from mloop._service import Service
from mloop.store.base import MetadataStore
from mloop.store.clock import database_now
from mloop.store.schema import ExperimentRow, RunRow

log = logging.getLogger("mloop.training")

INTERVAL = 10.0  # seconds between two heartbeats of a running run (tests shrink it)
MISSED = 6  # heartbeats missed in a row before a run whose process cannot be seen counts as dead


class Heartbeat:
    """The runs this process has open, by metadata store, and the thread that beats for them."""

    def __init__(self) -> None:
        self._runs: dict[str, MetadataStore] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, run_id: str, store: MetadataStore) -> None:
        with self._lock:
            self._runs[run_id] = store
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mloop-heartbeat", daemon=True)
                self._thread.start()

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def beat(self) -> None:
        """Write one heartbeat for every open run (only while it is still ``running``)."""
        with self._lock:
            by_store: dict[int, tuple[MetadataStore, list[str]]] = {}
            for run_id, store in self._runs.items():
                by_store.setdefault(id(store), (store, []))[1].append(run_id)
        for store, ids in by_store.values():
            try:
                with store.write(serialize=False) as session:  # bookkeeping: no audit event, no queue
                    # On the database's clock: a reader on a host whose clock is ahead judges it by the same.
                    session.execute(
                        update(RunRow)
                        .where(RunRow.id.in_(ids), RunRow.status == "running")
                        .values(heartbeat_at=database_now(store, session))
                    )
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("could not write the heartbeat of %d run(s): %s", len(ids), exc)

    def _loop(self) -> None:
        while True:
            self._wake.wait(INTERVAL)
            with self._lock:
                if not self._runs:
                    self._thread = None
                    return
            self.beat()


HEARTBEAT = Heartbeat()


@dataclass(frozen=True)
class Verdict:
    dead: bool
    reason: str = ""


def judge(heartbeat_at: datetime | None, info: Mapping[str, Any], now: datetime) -> Verdict:
    """Whether a ``running`` run's process died: its heartbeat is :data:`MISSED` of its intervals old, and
    its process is not alive on this host (when it ran here; elsewhere the heartbeat alone decides)."""
    if heartbeat_at is None:
        return Verdict(False)  # from before heartbeats: nothing to judge by
    interval = float(info.get("heartbeat_seconds") or INTERVAL)
    if now - heartbeat_at <= timedelta(seconds=MISSED * interval):
        return Verdict(False)
    pid, host = _process(info)
    if pid is not None and host == socket.gethostname() and _alive(pid):
        return Verdict(False)  # alive but silent (a long call holding the GIL): not ours to end
    return Verdict(
        True,
        f"no heartbeat since {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; the process died (killed or crashed)",
    )


def _process(info: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The pid and host of the process that runs the run now (the last to resume it, if one did)."""
    resumed = info.get("resumed") or []
    pid = resumed[-1].get("pid") if resumed else info.get("pid")
    return (pid if isinstance(pid, int) else None), info.get("host")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:  # a killed process its parent has not reaped yet is a zombie: dead for us
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class Reaper(Service):
    """Marks ``failed`` the running runs whose process died; run by every read of runs."""

    def sweep(self, run_ids: list[str] | None = None, *, now: datetime | None = None) -> list[str]:
        """Judge the running runs (those of ``run_ids``, or all of the project) the actor may read; mark
        the dead ones failed, each with a ``runs.stale`` audit event. Returns their ids."""
        query = (
            select(RunRow.id, ExperimentRow.name, RunRow.heartbeat_at, RunRow.info)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(ExperimentRow.project_id == self._ctx.project_id, RunRow.status == "running",
                   RunRow.heartbeat_at.is_not(None))
        )  # fmt: skip
        if run_ids is not None:
            query = query.where(RunRow.id.in_(run_ids))
        with self._ctx.store.read() as session:
            found = session.execute(query).all()
            now = now or database_now(self._ctx.store, session)  # the clock the heartbeats were written by
        dead = []
        for run_id, experiment, heartbeat_at, info in found:
            verdict = judge(heartbeat_at, info or {}, now)
            if verdict.dead and self.actor.can("runs.read", f"experiment:{experiment}"):
                try:
                    if self._mark(run_id, experiment, heartbeat_at, verdict.reason):
                        dead.append(run_id)
                except Exception as exc:  # a read must not fail for it (a read-only database, say)
                    log.warning("could not mark run %s failed: %s", run_id, exc)
        return dead

    def _mark(self, run_id: str, experiment: str, heartbeat_at: datetime, reason: str) -> bool:
        # The reader records what it saw: reading the run is all the permission this takes.
        try:
            with self._mutate("runs.read", f"experiment:{experiment}", action="runs.stale", run=run_id,
                              heartbeat_at=heartbeat_at.isoformat()) as change:  # fmt: skip
                marked = change.session.execute(
                    update(RunRow)  # only if no other reader marked it, and no beat came, meanwhile
                    .where(
                        RunRow.id == run_id, RunRow.status == "running", RunRow.heartbeat_at == heartbeat_at
                    )
                    .values(status="failed", ended_at=heartbeat_at, error=reason)
                )
                if not marked.rowcount:  # type: ignore[attr-defined]
                    raise _Unchanged  # rolls the event back with it
        except _Unchanged:
            return False
        return True


class _Unchanged(Exception):
    pass

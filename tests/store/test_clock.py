"""The database's clock across hosts whose clocks disagree: a run's heartbeat written by a host 5 minutes
behind is judged, by a reader 5 minutes ahead, on the clock it was written by (PostgreSQL's ``now()``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import mloop.store.clock as clock
import mloop.training.tracking as tracking
from mloop import Project
from mloop.store.clock import database_now
from mloop.store.schema import RunRow
from mloop.training import heartbeat
from tests.services import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REAL = clock.utcnow


def _host(monkeypatch: pytest.MonkeyPatch, minutes: float) -> None:
    """This process's clock ``minutes`` off, for every module that reads it here."""

    def skewed() -> datetime:
        return REAL() + timedelta(minutes=minutes)

    for module in (clock, tracking, heartbeat):  # heartbeat: where it read the host's clock before
        monkeypatch.setattr(module, "utcnow", skewed, raising=False)


def test_a_live_runs_heartbeat_is_judged_on_the_database_clock(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_server.database() as url:
        project = Project.open(tmp_path, env={}, metadata_url=url)
        try:
            _host(monkeypatch, -5)  # the training host, 5 minutes behind
            run = project.runs.start("skewed")
            heartbeat.HEARTBEAT.beat()
            heartbeat.HEARTBEAT.forget(run.id)  # no more beats: the reader judges the last one
            info = {**project.runs.get(run.id).info, "host": "elsewhere"}  # only its heartbeat tells it lives
            with project.store.write() as session:
                session.execute(update(RunRow).where(RunRow.id == run.id).values(info=info))
            _host(monkeypatch, +5)  # a reader 5 minutes ahead: its clock says the beat is 10 minutes old
            assert heartbeat.Reaper(project._ctx).sweep() == []
            assert project.runs.get(run.id).status == "running"
            # A heartbeat that is really old, on the database's clock, is judged dead as before.
            with project.store.write() as session:
                old = database_now(project.store, session) - timedelta(minutes=2)
                session.execute(update(RunRow).where(RunRow.id == run.id).values(heartbeat_at=old))
            assert heartbeat.Reaper(project._ctx).sweep() == [run.id]
        finally:
            project.close()

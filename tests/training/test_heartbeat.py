"""A run whose process was killed (``kill -9``) does not stay ``running``: its heartbeat stops, and the
next read of runs marks it failed. Runs from before heartbeats, and live processes, are left alone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mloop import Project
from mloop._time import utcnow
from mloop.store.schema import EventRow, RunRow
from mloop.training import heartbeat

# Starts a run with a 0.1 s heartbeat, logs a point, says its id, and trains until killed.
TRAIN = """
import sys, time
from mloop import Project
from mloop.training import heartbeat

heartbeat.INTERVAL = 0.1
project = Project.open(sys.argv[1], env={})
run = project.runs.start("killed")
run.log_metric("loss", 0.5)
run.flush()
print(run.id, flush=True)
time.sleep(600)
"""


def wait_for(check, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_a_run_killed_with_sigkill_is_marked_failed_once_its_heartbeat_stops(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    Project.open(root, env={}).close()
    with subprocess.Popen(
        [sys.executable, "-c", TRAIN, str(root)], stdout=subprocess.PIPE, text=True
    ) as train:
        assert train.stdout is not None
        run_id = train.stdout.readline().strip()
        with Project.open(root, env={}) as project:
            started = project.runs.get(run_id)
            assert started.status == "running" and started.info["heartbeat_seconds"] == 0.1
            assert started.heartbeat_at is not None
            # It beats: the heartbeat moves on while the process lives.
            wait_for(lambda: project.runs.get(run_id).heartbeat_at > started.heartbeat_at)  # type: ignore[operator]
            train.send_signal(signal.SIGKILL)
    assert train.returncode == -signal.SIGKILL

    with Project.open(root, env={}) as project:
        last = project.runs.get(run_id).heartbeat_at  # read at once: too recent to judge, or judged already
        assert last is not None
        failed = wait_for(lambda: [r for r in project.runs.search("killed") if r.status == "failed"])[0]
        assert failed.id == run_id and failed.ended_at == failed.heartbeat_at
        assert failed.error == (
            f"no heartbeat since {failed.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; the process died (killed or crashed)"
        )
        assert failed.metrics == {"loss": 0.5}  # what it logged stays
        with project.store.read() as session:
            events = session.scalars(select(EventRow).where(EventRow.action == "runs.stale")).all()
        assert [json.loads(e.payload)["run"] for e in events] == [run_id]  # marked once, audited once
        assert project.runs.get(run_id).status == "failed"
        resumed = project.runs.resume(run_id)  # a run that died can go on in a new process
        assert resumed.status == "running"
        resumed.end()


def test_runs_without_a_heartbeat_and_runs_of_live_processes_stay_running(project: Project) -> None:
    old = project.runs.start("old")
    live = project.runs.start("live")
    for run in (old, live):
        heartbeat.HEARTBEAT.forget(run.id)  # as if their processes stopped beating
    long_ago = utcnow() - timedelta(days=1)
    with project.store.write() as session:
        session.execute(update(RunRow).where(RunRow.id == old.id).values(heartbeat_at=None))  # before 0007
        session.execute(update(RunRow).where(RunRow.id == live.id).values(heartbeat_at=long_ago))
    # live's process is this one: alive, though silent (a long call holding the GIL, say).
    assert heartbeat.Reaper(project._ctx).sweep() == []
    assert {r.id: r.status for r in project.runs.search()} == {old.id: "running", live.id: "running"}


def test_judging_a_heartbeat() -> None:
    now = utcnow()
    here = {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat_seconds": 10}
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = {**here, "pid": int(done.stdout)}
    elsewhere = {**here, "host": "another-host"}
    old, recent = now - timedelta(seconds=61), now - timedelta(seconds=59)
    assert not heartbeat.judge(None, gone, now).dead  # no heartbeat: from before they existed
    assert not heartbeat.judge(recent, gone, now).dead  # fewer than MISSED beats missed
    assert heartbeat.judge(old, gone, now).dead
    assert not heartbeat.judge(old, here, now).dead  # this process lives
    assert heartbeat.judge(old, elsewhere, now).dead  # another host: the heartbeat alone decides
    resumed_here = {**gone, "resumed": [{"pid": os.getpid()}]}
    assert not heartbeat.judge(old, resumed_here, now).dead  # the process that resumed it is the one
    verdict = heartbeat.judge(old, gone, now)
    assert verdict.reason.startswith(f"no heartbeat since {old:%Y-%m-%d %H:%M:%S} UTC; the process died")

"""The controller's lease across processes (as across hosts) on one PostgreSQL: one controller acts, the
other stands by; ``kill -9`` of the one acting hands the lease to the other once it has expired, not
before; and a host whose clock is an hour ahead still waits, because the lease runs on the database's
clock. Each controller is a real process ticking every 0.1 s with no policies: holding the lease is
what "acting" means here (tests/loop/test_controller.py has what a tick then does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mloop import Project
from mloop.loop import lease
from mloop.loop.controller import LEASE
from tests.services import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TTL = 2.0  # seconds

_CONTROLLER = """
import sys, time
from datetime import timedelta
import mloop.loop.controller as controller_module
import mloop.store.clock as clock_module
from mloop import Project
from mloop.loop.controller import LoopController

root, url, holder, ttl, skew = sys.argv[1:6]
real = controller_module.utcnow
ahead = lambda: real() + timedelta(seconds=float(skew))  # this host's clock, off by `skew` seconds
clock_module.utcnow = controller_module.utcnow = ahead
project = Project.open(root, env={}, metadata_url=url)
controller = LoopController(project, [], holder=holder, lease_ttl=timedelta(seconds=float(ttl)))
while True:
    standby = any(d["decision"] == "standby" for d in controller.tick())
    print("standby" if standby else "acting", time.monotonic(), flush=True)
    time.sleep(0.1)
"""


@pytest.fixture
def shared(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[tuple[Project, str]]:
    with postgres_server.database() as url:
        project = Project.open(tmp_path, env={}, metadata_url=url)
        try:
            yield project, url
        finally:
            project.close()


def _start(
    stack: ExitStack, project: Project, url: str, holder: str, skew: float = 0
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _CONTROLLER, str(project.root), url, holder, str(TTL), str(skew)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    stack.callback(process.wait, 10)
    stack.callback(process.kill)
    return process


def _holder(project: Project) -> str | None:
    found = lease.current(project.store, LEASE)
    return found[0] if found else None


def _wait_for(project: Project, holder: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while _holder(project) != holder:
        assert time.monotonic() < deadline, f"{holder} never took the lease (held by {_holder(project)})"
        time.sleep(0.02)
    return time.monotonic()


def _ticks(process: subprocess.Popen[str], n: int) -> list[str]:
    """Up to ``n`` decisions, oldest first, stopping at the first "acting"."""
    assert process.stdout is not None
    seen: list[str] = []
    while len(seen) < n and "acting" not in seen:
        seen.append(process.stdout.readline().split()[0])
    return seen


def test_kill_9_of_the_acting_controller_hands_the_lease_over_after_it_expires(
    shared: tuple[Project, str],
) -> None:
    project, url = shared
    with ExitStack() as stack:
        first = _start(stack, project, url, "first")
        _wait_for(project, "first")
        # The second runs on a host whose clock is an hour ahead: on its own clock the first's lease
        # expired long ago, yet it stands by.
        second = _start(stack, project, url, "second", skew=3600)
        assert set(_ticks(second, 10)) == {"standby"} and _holder(project) == "first"
        os.kill(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        first.wait(10)
        taken = _wait_for(project, "second", timeout=TTL + 10) - killed
        assert TTL - 0.5 < taken < TTL + 2, f"the second took over {taken:.2f} s after the kill"
        assert "acting" in _ticks(second, 200)  # what it printed since it started, up to now

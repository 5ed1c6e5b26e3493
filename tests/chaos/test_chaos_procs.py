"""``mloop chaos run worker-kill`` finds the server's processes from ``/proc``: real processes that listen
on a real port, shaped like ``mloop serve`` (a supervisor whose workers inherit its socket) or not."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from mloop.chaos import ChaosRefused
from mloop.chaos.faults import WorkerKill, prepare
from mloop.chaos.procs import alive, connections, server_on
from tests.services import free_port

# Listens on a port, then forks WORKERS children that inherit the socket and accept on it (as uvicorn's
# workers do), and waits; "mloop serve" in its command line makes it look like mloop's server.
SERVER = """
import os, socket, sys, time
sock = socket.socket(); sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1]))); sock.listen(16)
for _ in range(int(sys.argv[2])):
    if os.fork() == 0:
        held = []
        while True:
            held.append(sock.accept()[0])
print("ready", flush=True)
while True:
    time.sleep(1)
"""


@contextmanager
def listening(workers: int, *name: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    argv = [sys.executable, "-c", SERVER, str(port), str(workers), *name]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield port, process
    finally:
        with suppress(ProcessLookupError):  # the supervisor and its forked workers: its own group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_the_supervisor_and_its_workers_are_found_by_the_socket_they_share() -> None:
    with listening(2, "mloop", "serve") as (port, process):
        found = server_on(port)
        assert found is not None
        assert found.supervisor == process.pid and len(found.workers) == 2
        assert found.is_mloop_serve
        with socket.create_connection(("127.0.0.1", port)):
            deadline = time.monotonic() + 5
            while sum(connections(pid, port) for pid in found.workers) != 1:
                assert time.monotonic() < deadline, "the accepted connection was not seen in /proc"
                time.sleep(0.02)
    deadline = time.monotonic() + 5
    while server_on(port) is not None:  # its workers die a moment after their supervisor
        assert time.monotonic() < deadline, "a port nothing listens on has a server"
        time.sleep(0.02)


def test_a_worker_is_killed_and_the_others_keep_running() -> None:
    with listening(2, "mloop", "serve") as (port, process):
        fault = WorkerKill(port, allow_outage=False)
        ends = fault.inject(2.0)
        assert ends <= time.monotonic()  # a kill is instant
        killed = fault.figures()["killed_pid"]
        assert killed in fault.server.workers
        deadline = time.monotonic() + 5
        while alive(killed):
            assert time.monotonic() < deadline, "the killed worker still runs"
            time.sleep(0.02)
        assert alive(process.pid) and all(alive(p) for p in fault.server.workers if p != killed)


def test_a_single_process_server_is_an_outage_refused_unless_allowed() -> None:
    with listening(0, "mloop", "serve") as (port, process):
        with pytest.raises(ChaosRefused, match="single process: killing it is an outage.*--allow-outage"):
            WorkerKill(port, allow_outage=False)
        assert alive(process.pid)
        fault = WorkerKill(port, allow_outage=True)
        fault.inject(1.0)
        assert process.wait(5) == -9


def test_what_is_not_mloop_serve_or_not_here_is_refused() -> None:
    with listening(2, "something", "else") as (port, process):
        with pytest.raises(ChaosRefused, match="not `mloop serve`"):
            WorkerKill(port, allow_outage=True)
        assert alive(process.pid)
    with pytest.raises(ChaosRefused, match=f"listens on port {port}"):
        WorkerKill(port, allow_outage=False)


class _Settings:
    def __init__(self, online_url: str) -> None:
        self.online_url = online_url


@pytest.mark.parametrize(
    ("online_url", "refusal"),
    [
        (".mloop/online.db", "not Redis"),
        ("redis://10.1.2.3:6379/0", "10.1.2.3 is not this machine"),
        ("redis://redis.internal:6379/0?prefix=a:", "redis.internal is not this machine"),
    ],
)
def test_the_online_store_is_paused_only_when_it_is_redis_on_this_machine(
    online_url: str, refusal: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ChaosRefused, match=refusal):
        prepare("online-store-pause", _Settings(online_url), 8700)  # type: ignore[arg-type]


def test_an_unknown_fault_is_refused_with_the_list() -> None:
    with pytest.raises(
        ChaosRefused, match="Unknown fault 'disk-fill'; the faults are: online-store-pause, worker-kill"
    ):
        prepare("disk-fill", _Settings(".mloop/online.db"), 8700)  # type: ignore[arg-type]

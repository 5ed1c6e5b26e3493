"""What the chaos tests read of real processes from /proc (Linux), beyond what :mod:`mloop.chaos.procs`
reads for ``mloop chaos run`` (children, connections and sockets held): a supervisor's spawned workers and which
process answered a connection; and keep-alive clients that reconnect after a connection error."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from mloop.chaos.procs import children, sockets_held


def workers(supervisor: int) -> list[int]:
    """The worker processes of a ``mloop serve --workers N`` supervisor: its children started by
    multiprocessing's spawn (not its resource tracker, if any)."""
    found = []
    for pid in children(supervisor):
        try:
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(pid)
    return found


def _established(port: int) -> Iterator[tuple[int, str]]:
    """(remote port, socket inode) of the established TCP connections on local ``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                yield int(remote.rsplit(":", 1)[1], 16), inode


def answers_from(pid: int, port: int, path: str, body: dict[str, Any]) -> bool:
    """Post ``body`` on a new connection to 127.0.0.1:``port``: did process ``pid`` accept it and answer
    200? (Which process accepted a connection is the one holding its socket.)"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.connect()
        assert conn.sock is not None
        mine = conn.sock.getsockname()[1]
        conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
        answer = conn.getresponse()
        answer.read()
        held = sockets_held(pid)
        return answer.status == 200 and any(rp == mine and inode in held for rp, inode in _established(port))
    except OSError:
        return False
    finally:
        conn.close()


class ReconnectingClients:
    """``clients`` threads posting one row at a time to ``url``'s endpoint, each on its own keep-alive
    connection (``pause`` seconds between requests), until stopped; a connection error is recorded (with its time) and the client reconnects,
    as a production client with retries would. ``answers`` holds (time, request id) of the 200 answers."""

    def __init__(self, url: str, endpoint: str, rows: Sequence[dict[str, Any]], *, clients: int,
                 timeout: float = 10.0, pause: float = 0.0) -> None:  # fmt: skip
        self.url, self.path, self.rows, self.timeout = url, f"/v1/endpoints/{endpoint}/predict", rows, timeout
        self.pause = pause  # seconds each client waits between requests: a steady load, not a saturating one
        self.answers: list[tuple[float, str]] = []
        self.statuses: Counter[int] = Counter()
        self.refusals: Counter[str] = Counter()  # the error answers' bodies (their first 400 characters)
        self.refused_at: list[float] = []  # when each error answer came
        self.errors: list[tuple[float, str]] = []  # (time, exception type): connection errors, timeouts
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> ReconnectingClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return [rid for _, rid in self.answers]

    def answered_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for at, _ in self.answers if start <= at < end)

    def wait_answers(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) < n:
            assert time.monotonic() < deadline, f"{len(self.answers)} answered of {n}: {self.statuses}"
            time.sleep(0.02)

    def _client(self, i: int) -> None:
        n = i * 7
        while not self._stop.is_set():
            with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
                while not self._stop.is_set():
                    if self.pause:
                        time.sleep(self.pause)
                    row = self.rows[n % len(self.rows)]
                    n += 1
                    try:
                        answer = client.post(self.path, json={"rows": [row]})
                    except httpx.TransportError as exc:
                        with self._lock:
                            self.errors.append((time.monotonic(), type(exc).__name__))
                        break  # a new connection
                    with self._lock:
                        self.statuses[answer.status_code] += 1
                        if answer.status_code == 200:
                            self.answers.append((time.monotonic(), answer.json()["request_id"]))
                        else:
                            self.refusals[answer.text[:400]] += 1
                            self.refused_at.append(time.monotonic())

"""The demo's moving parts outside the platform: the HTTP server it starts, the traffic it sends and
the delayed labels it reports back."""

from __future__ import annotations

import heapq
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from mloop.errors import MloopError
from mloop.examples.fraud.features import request_rows


class Server:
    """``mloop serve`` in a child process on a free loopback port; stopped with the demo."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "mloop.cli.main",
            "-C",
            str(folder),
            "serve",
            "--port",
            str(self.port),
        ]
        self.log = (folder / ".mloop" / "server.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, endpoint: str, timeout: float = 60.0) -> None:
        """Until the server answers on ``endpoint`` (started before the endpoint was deployed, it picks the
        deployment up by polling)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MloopError(f"mloop serve exited with {self.process.returncode}; see {self.log.name}.")
            try:
                answer = httpx.get(f"{self.url}/v2/models/{endpoint}/ready", timeout=1)
                if answer.status_code == 200 and answer.json().get("ready"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise MloopError(f"mloop serve did not serve {endpoint} within {timeout:.0f} s; see {self.log.name}.")

    def lost(self, exc: Exception) -> MloopError:
        """The error to raise when the server stopped answering: whether it still runs, or its exit code,
        and where its log is."""
        code = self.process.poll()
        state = "is still running" if code is None else f"exited with {code}"
        return MloopError(f"mloop serve stopped answering ({exc}); it {state}: see {self.log.name}.")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@dataclass
class Traffic:
    """Sends payments to the endpoint one request each, as a payment switch would, and the labels back
    once they are due."""

    url: str
    endpoint: str = "fraud"
    answers: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0  # labels reported so far
    _pending: list[tuple[Any, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def send(self, payments: pd.DataFrame) -> None:
        """One request per payment, its features looked up as of just before it (``at``)."""
        path = f"/v1/endpoints/{self.endpoint}/predict"
        for row, (_, payment) in zip(request_rows(payments), payments.iterrows(), strict=True):
            started = time.perf_counter()
            response = self.client.post(path, json={"rows": [row], "at": payment["asof"].isoformat()})
            elapsed = time.perf_counter() - started
            body = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            self.answers.append({"status": response.status_code, "seconds": elapsed, "version": body.get("version"),
                                 "wall": time.time(), "currency": row["currency"]})  # fmt: skip
            if response.status_code == 200:
                heapq.heappush(
                    self._pending, (payment["label_ts"], body["request_id"], int(payment["is_fraud"]))
                )

    def deliver(self, now: datetime) -> int:
        """POST the labels due by simulated time ``now``; how many."""
        due = []
        while self._pending and self._pending[0][0] <= pd.Timestamp(now):
            _, rid, label = heapq.heappop(self._pending)
            due.append({"request_id": rid, "label": bool(label)})
        for i in range(0, len(due), 5_000):
            self.client.post("/v1/feedback", json={"items": due[i : i + 5_000]}).raise_for_status()
        self.delivered += len(due)
        return len(due)

    def close(self) -> None:
        self.client.close()

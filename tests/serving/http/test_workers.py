"""``mloop serve --workers 2`` as users run it: every worker follows a new deployment within a second,
no request fails across the change, and /metrics adds up the workers' counts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mloop import Project


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests_counted(text: str, endpoint: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("mloop_predict_requests_total{") and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _answering_workers(root: Path) -> int:
    """Worker processes that have counted a request: each writes its samples to its own file."""
    return len(list((root / ".mloop" / "prometheus").glob("counter_*.db")))


@pytest.mark.slow
def test_every_worker_switches_after_its_poll_and_metrics_add_up(trained: Project, tmp_path: Path) -> None:
    trained.deploy("multi", "fraud", version=1)
    row = pd.read_parquet(Path(trained.root) / "txns.parquet").iloc[0]
    body = {"rows": [{"customer_id": int(row.customer_id), "amount": float(row.amount)}]}
    port = _port()
    mloop = Path(sys.executable).parent / "mloop"
    log = tmp_path / "serve.log"
    stderr = log.open("wb")
    server = subprocess.Popen([str(mloop), "-C", str(trained.root), "serve", "--port", str(port), "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    sent, statuses = 0, []
    try:
        deadline = time.monotonic() + 90
        while True:  # both workers up: each answers on a new connection
            try:
                if httpx.post(f"{url}/v1/endpoints/multi/predict", json=body, timeout=5).status_code == 200:
                    sent += 1
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "mloop serve --workers 2 did not start"
            time.sleep(0.3)
        while _answering_workers(Path(trained.root)) < 2:  # the second worker answers too (new connections)
            assert httpx.post(f"{url}/v1/endpoints/multi/predict", json=body, timeout=5).status_code == 200
            sent += 1
            assert time.monotonic() < deadline, "the second worker of mloop serve --workers 2 did not start"
            time.sleep(0.05)
        trained.deploy("multi", "fraud", version=2)
        changed = time.monotonic()
        late = []
        # A worker switches at its next poll (every 0.5 s) once it has loaded the new version; the bound
        # leaves room for a busy machine's load time and still tells a switch from none.
        while time.monotonic() < changed + 4.0:
            answer = httpx.post(f"{url}/v1/endpoints/multi/predict", json=body, timeout=5)  # a new connection
            sent += 1
            statuses.append(answer.status_code)
            if time.monotonic() > changed + 3.0 and answer.json()["version"] != 2:
                late.append(answer.json())
        assert set(statuses) == {200}
        assert not late, f"{len(late)} answers from version 1 more than 3 s after the change"
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert _requests_counted(metrics, "multi") == sent
    finally:
        server.terminate()
        server.wait(20)
        stderr.close()

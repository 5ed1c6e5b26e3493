"""Chaos: a corrupted artifact deployed under load. Bytes of version 2's stored artifact are flipped, then
version 2 is deployed while clients keep sending to a real ``mloop serve``: the checksum refuses it, the
endpoint stays on version 1 (no request fails, every answer is v1's), /v2/health/ready says why, an alert
names the version and the checksum failure (with its event in the event log), and the alert ends once a
good version is deployed and serves.

Figures for docs/reliability.md are printed with ``-s``:
``pytest -s tests/chaos/test_corrupt_artifact.py``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from mloop import Project
from mloop.predictions import predictions_folder, read_predictions
from tests.chaos import report
from tests.chaos.conftest_artifact import chaos_project, register_like, serve_with, served_env
from tests.chaos.waiting import until
from tests.serving.http.load import Clients, fraud_rows
from tests.serving.http.running import mloop_serve

__all__ = ["chaos_project"]  # the fixture, imported for pytest to find
ENDPOINT = "guarded"
CLIENTS = 3
WAIT = 20.0  # seconds any one step may take on a busy shared machine (each took under 2 s on an idle one)


_until = functools.partial(until, timeout=WAIT)


def _flip(project: Project, version: int) -> tuple[Path, bytes]:
    """Flip bytes in the middle of ``version``'s stored artifact; the file and its original bytes."""
    digest = project.models.get("fraud", version).artifact
    (blob,) = (p for p in Path(project.root).rglob(digest) if p.is_file())
    data = blob.read_bytes()
    middle = len(data) // 2
    blob.chmod(0o644)
    blob.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]
    )
    return blob, data


def _load_alerts(project: Project) -> list[dict[str, Any]]:
    return [a for a in project.monitoring.alerts(ENDPOINT) if a["key"] == f"{ENDPOINT}/deploy/load-failed"]


def _answers(project: Project) -> pd.DataFrame:
    frame = read_predictions(predictions_folder(project.settings), ENDPOINT)
    return frame[(frame["row"] == 0) & (frame["status"] == "ok")]


@pytest.mark.slow
def test_a_corrupted_artifact_is_refused_and_the_endpoint_keeps_serving_the_previous_version(
    chaos_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = chaos_project
    project.deploy(ENDPOINT, "fraud", version=1)
    good = register_like(project, project.models.load("fraud", 1).model, description="v1 registered again")
    blob, original = _flip(project, 2)
    served_env(monkeypatch)
    # No shedding on event-loop lag: on this shared machine the lag rule reads the other processes as
    # overload (a run with it shed 125 of 929 requests, before and during the fault alike); the witnesses
    # here are the failures the fault causes.
    serve_with(project.root, max_queue_ms=None)
    try:
        with mloop_serve(Path(project.root)) as server, httpx.Client(base_url=server.url) as http, Clients(
            server.url, ENDPOINT, fraud_rows(project.root), clients=CLIENTS, requests=1_000_000
        ) as load:  # fmt: skip
            load.wait_answers(100)
            deployed = time.monotonic()
            project.deploy(ENDPOINT, "fraud", version=2)
            ready = _until("/ready reports the load failure",
                           lambda: (r := http.get("/v2/health/ready")).status_code == 503 and r.json())  # fmt: skip
            refused_in = time.monotonic() - deployed
            (fired,) = _until("the load-failure alert fires", lambda: _load_alerts(project))
            alerted_in = time.monotonic() - deployed
            during = len(load.ids)
            load.wait_answers(during + 100)  # served on, by v1, while v2 stays refused
            assert http.get("/v2/health/ready").status_code == 503  # retried at every poll, still refused

            redeployed = time.monotonic()
            project.deploy(ENDPOINT, "fraud", version=good)
            _until("the good version answers", lambda: good in set(_answers(project)["version"]))
            recovered_in = time.monotonic() - redeployed
            (ended,) = _until("the alert resolves",
                              lambda: [a for a in _load_alerts(project) if a["status"] == "resolved"])  # fmt: skip
            assert http.get("/v2/health/ready").status_code == 200
            load.wait_answers(len(load.ids) + 50)
    finally:
        blob.write_bytes(original)

    # The clients: not one request failed, by any cause.
    assert set(load.statuses) == {200} and not load.errors, (load.statuses, load.errors[:3])
    # The prediction log: version 2 never answered; v1 answered every request until the good one served.
    answers = _answers(project)
    assert 2 not in set(answers["version"])
    first_good = answers.loc[answers["version"] == good, "ts"].min()
    assert set(answers.loc[answers["ts"] < first_good, "version"]) == {1}
    assert len(answers[answers["ts"] < first_good]) >= during + 100
    # /ready said why: the version and the checksum.
    (failure,) = ready["failures"]
    assert (
        failure.startswith("fraud version 2: IntegrityError") and "corrupt" in failure and "sha256" in failure
    )
    # The alert named the version and the checksum failure, and ended once a revision that loads served.
    assert fired["severity"] == "ticket" and fired["labels"]["version"] == "2"
    assert (
        "fraud v2" in fired["summary"]
        and "corrupt" in fired["description"]
        and "sha256" in fired["description"]
    )
    assert ended["key"] == fired["key"] and "loads and serves" in ended["resolution"]
    # The event log: the alert and its resolution, once each (every poll retried; none was written again).
    events = [e for e in project.audit.events(action="monitoring.*", resource=f"endpoint:{ENDPOINT}")
              if e.payload["alert"]["key"] == fired["key"]]  # fmt: skip
    assert [e.action for e in events] == ["monitoring.alert", "monitoring.resolve"]

    report.row("a corrupted artifact deployed under load (bytes flipped in v2's stored blob)",
               sees="nothing: v1 answers every request; /v2/health/ready and the alert <endpoint>/deploy/load-failed "
               "name v2 and the checksum failure", recovery_s=round(recovered_in, 2), failed={}, lost=0,
               answered=len(load.ids), refused_s=round(refused_in, 2), alerted_s=round(alerted_in, 2))  # fmt: skip

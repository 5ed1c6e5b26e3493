"""Chaos: a slow model (a version whose predict sleeps 200 ms) under load on a real ``mloop serve``.

- With ``timeout_ms`` 100 on its endpoint, every request to it fails with a 504 that names the endpoint
  and the setting, logged with status ``timeout``; the other endpoint of the same worker answers every
  request, at its own speed (the slow calls run on the slow endpoint's threads, never on the event loop).
- As a canary beside a fast champion, the loop's canary gate rolls it back on its p99 latency: the
  rollback event says why, and every answer after it comes from the champion; no request fails.

Figures for docs/reliability.md are printed with ``-s``: ``pytest -s tests/chaos/test_slow_model.py``.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop._time import utcnow
from mloop.loop.controller import LoopController
from mloop.predictions import predictions_folder, read_predictions
from tests.chaos import report
from tests.chaos.conftest_artifact import Sleepy, chaos_project, register_like, serve_with, served_env
from tests.chaos.waiting import until
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import Server, mloop_serve

__all__ = ["chaos_project"]  # the fixture, imported for pytest to find
SLEEP = 0.2  # seconds the slow version's predict sleeps
SERVER_TIMEOUT_MS = (
    1_000  # serving.timeout_ms: every model call runs off the event loop, none of these reach it
)
WAIT = 20.0  # seconds any one step may take on a busy shared machine


@dataclass
class Calls:
    """Requests posted one at a time by a few threads: each one's status, answering version and seconds."""

    url: str
    endpoint: str
    rows: list[dict[str, Any]]
    results: list[tuple[int, int | None, float]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # of the failed requests
    errors: list[Exception] = field(default_factory=list)  # transport errors: timeouts, refused connections
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, clients: int) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        return threads

    def _client(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = offset
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    answer = client.post(
                        f"/v1/endpoints/{self.endpoint}/predict", json={"rows": [self.rows[i % 200]]}
                    )
                except httpx.TransportError as exc:
                    self.errors.append(exc)
                    return
                seconds = time.perf_counter() - started
                ok = answer.status_code == 200
                self.results.append((answer.status_code, answer.json()["version"] if ok else None, seconds))
                if not ok:
                    self.bodies.append(answer.json())
                i += 7

    def statuses(self) -> Counter[int]:
        return Counter(status for status, _, _ in self.results)


_until = functools.partial(until, timeout=WAIT)


def _serving(server: Server, endpoint: str, version: int) -> bool:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post(
            f"/v1/endpoints/{endpoint}/predict", json={"rows": [{"customer_id": 1, "amount": 1.0}]}
        )
    return answer.status_code in (200, 504) and version in _versions(answer)


def _timeouts(project: Project) -> pd.DataFrame:
    logged = read_predictions(predictions_folder(project.settings), "laggard")
    return logged[(logged["row"] == 0) & (logged["status"] == "timeout")]


def _versions(answer: httpx.Response) -> set[int]:
    return {answer.json()["version"]} if answer.status_code == 200 else {-1}


@pytest.fixture(scope="module")
def slow(chaos_project: Project) -> Iterator[tuple[Project, int, Server]]:
    """The project with a slow version of fraud registered, and a server with serving.timeout_ms set."""
    model = Sleepy(chaos_project.models.load("fraud", 1).model, SLEEP)
    version = register_like(chaos_project, model, description=f"v1, {SLEEP * 1000:.0f} ms late")
    with pytest.MonkeyPatch.context() as patch:
        served_env(patch)
        # No shedding on event-loop lag: on this shared machine the lag rule reads the other processes as
        # overload; the witnesses here are the failures the slow model causes (max_concurrency still sheds).
        serve_with(chaos_project.root, timeout_ms=SERVER_TIMEOUT_MS, max_queue_ms=None)
        with mloop_serve(Path(chaos_project.root)) as server:
            yield chaos_project, version, server


@pytest.mark.slow
def test_a_slow_endpoint_times_out_with_504_and_the_other_endpoint_keeps_its_speed(
    slow: tuple[Project, int, Server],
) -> None:
    project, version, server = slow
    project.deploy("laggard", "fraud", version=version, options={"timeout_ms": 100})
    project.deploy("brisk", "fraud", version=1)
    _until(
        "the server serves both", lambda: _serving(server, "brisk", 1) and not _serving(server, "laggard", 1)
    )
    probes = len(_timeouts(project))  # the readiness probes above that timed out
    rows = fraud_rows(project.root)
    slowly, quickly = Calls(server.url, "laggard", rows), Calls(server.url, "brisk", rows)
    threads = slowly.run(3) + quickly.run(2)
    _until("load on both", lambda: len(slowly.results) >= 40 and len(quickly.results) >= 150)
    slowly.stop.set()
    quickly.stop.set()
    for thread in threads:
        thread.join(30)

    # Failed requests by cause: 504 on the slow endpoint only (every call of it is over 100 ms).
    assert not slowly.errors and not quickly.errors
    assert set(slowly.statuses()) == {504}
    assert set(quickly.statuses()) == {200}
    message = slowly.bodies[0]["message"]
    assert "'laggard'" in message and "timeout_ms of 100 ms" in message
    # The fast endpoint kept its own speed: the slow calls never held the event loop (had they run on it,
    # its median would be at least a slow call's 200 ms).
    median_ms = statistics.median(s for _, _, s in quickly.results) * 1000
    assert median_ms < SLEEP * 1000 / 2, f"brisk's median {median_ms:.0f} ms"
    # The prediction log: each timed-out request, with status timeout, after about the 100 ms it was given.
    timeouts = _timeouts(project)
    assert len(timeouts) == probes + len(slowly.results)
    assert set(read_predictions(predictions_folder(project.settings), "laggard")["status"]) == {"timeout"}
    assert timeouts["latency_s"].min() >= 0.09  # the loop's timer and the log's clock differ by a little

    slow_ms = statistics.median(s for _, _, s in slowly.results) * 1000
    report.row("a slow model (predict sleeps 200 ms) on an endpoint with timeout_ms 100, beside a fast one",
               sees=f"504 after {slow_ms:.0f} ms (median) on the slow endpoint, naming it and the setting; the fast "
               f"endpoint answers at its speed (median {median_ms:.1f} ms)", recovery_s=None,
               failed={"504 (slow endpoint)": len(slowly.results)}, lost=0, fast_answered=len(quickly.results))  # fmt: skip


@pytest.mark.slow
def test_a_slow_canary_is_rolled_back_on_its_p99_latency(slow: tuple[Project, int, Server]) -> None:
    project, version, server = slow
    project.models.set_alias("fraud", "champion", 1)
    project.deploy("canaried", "fraud", version=1)
    # The loop never retrains here: the policy needs the model's name only. max_p99_ms 100: v1 answers in
    # a few ms, the slow version in 200 ms and more.
    rollout = ml.Canary(steps=[0.5, 1.0], min_requests=20, max_error_rate=0.01, max_p99_ms=100, compare=None)
    policy = ml.LoopPolicy(
        "canaried", SimpleNamespace(name="fraud"), triggers=[], rollout=rollout, rollback=None
    )
    controller = LoopController(project, [policy], train="inprocess", lease_ttl=timedelta(seconds=60))
    # What the loop does once a challenger passed its gate: deploy it at the first share, record the step.
    project.deploy("canaried", "fraud", version=version, canary=0.5)
    project.loop.record("canaried", "canary", challenger=version, champion=1, step=0, share=0.5,
                        at=utcnow().isoformat(), reason=f"v{version} takes 50% of the traffic")  # fmt: skip
    _until("the canary serves", lambda: any(_serving(server, "canaried", version) for _ in range(8)))
    calls = Calls(server.url, "canaried", fraud_rows(project.root))
    threads = calls.run(3)
    _until("the canary's requests", lambda: sum(v == version for _, v, _ in calls.results) >= 30)
    started = time.monotonic()
    (decision,) = controller.tick()
    rolled_back_at = len(calls.results)
    _until("the champion alone serves", lambda: all(_serving(server, "canaried", 1) for _ in range(8)))
    switched = len(calls.results)
    recovered = time.monotonic() - started
    _until("answers after the rollback", lambda: len(calls.results) >= switched + 100)
    calls.stop.set()
    for thread in threads:
        thread.join(30)

    assert decision["decision"] == "rollback" and "p99 latency" in decision["reason"]
    assert "above 100" in decision["reason"]
    rollback = project.loop.timeline("canaried", alerts=False)[-1]
    assert rollback["action"] == "loop.rollback" and rollback["restored"] == 1
    assert rollback["numbers"]["challenger"]["p99_ms"] > 100
    assert [(r.version, r.weight) for r in project.deployments.get("canaried").routes] == [(1, 1.0)]
    # No request failed; from the rollback on, the champion answered every one.
    assert not calls.errors and set(calls.statuses()) == {200}
    assert {v for _, v, _ in calls.results[switched:]} == {1}
    assert {v for _, v, _ in calls.results[:rolled_back_at]} == {1, version}

    report.row("the slow model as a 50% canary beside a fast champion (canary gate max_p99_ms 100)",
               sees=f"slower answers for the canary's share until the next tick, then none ({decision['reason']})",
               recovery_s=round(recovered, 2), failed={}, lost=0, requests=len(calls.results))  # fmt: skip

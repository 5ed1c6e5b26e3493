"""Chaos: the Redis online store stopped under load, then started again.

A real ``mloop serve`` answers two endpoints whose models look their features up in a real Redis: one
over a view with ``on_missing="default"`` (``fallback``), one over a view that keeps the default
``on_missing="error"`` (``strict``). While clients keep posting, Redis is saved and stopped for
:data:`OUTAGE` seconds (3 s in the test suite, ``MLOOP_CHAOS_SECONDS`` when set: ``benchmarks/chaos.py``
runs it with 30), then started on the same port. The witnesses: every client's request time and answer,
the prediction log, the alerts. Run with ``-s`` for the figures docs/reliability.md quotes (the
``CHAOS`` line of :mod:`tests.chaos.report`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop.features.fallback import STORE_UNAVAILABLE
from mloop.predictions import predictions_folder, read_predictions
from tests.chaos import report
from tests.services import RedisServer
from tests.serving.http.running import mloop_serve

pytestmark = pytest.mark.redis

OUTAGE = float(os.environ.get("MLOOP_CHAOS_SECONDS", 3))  # seconds Redis is down
BOUND = 3.0  # seconds no request may exceed: reads time out at 0.2 s (redis-py alone: 5 s); 0.9 s seen busy
TIMEOUT_MS = 200
CUSTOMERS = 20
DEFAULT_SPEND = -1.0
CLIENTS = 2  # per endpoint
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Call:
    endpoint: str
    sent: float  # time.monotonic()
    took: float
    status: int | None  # None: no HTTP answer (a transport error or a client timeout)
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Load:
    """``CLIENTS`` keep-alive clients per endpoint, posting one row at a time until stopped."""

    def __init__(self, url: str, endpoints: list[str]) -> None:
        self.url, self.calls, self._lock, self._stop = url, [], threading.Lock(), threading.Event()
        self.calls: list[Call] = []
        self._threads = [threading.Thread(target=self._client, args=(e, i), daemon=True)
                         for e in endpoints for i in range(CLIENTS)]  # fmt: skip

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def answered(self, endpoint: str, after: float, looked_up: bool) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.endpoint == endpoint and c.sent >= after and c.status == 200
                    and ("defaulted" not in c.body) == looked_up]  # fmt: skip

    def wait(self, endpoint: str, after: float, *, looked_up: bool, timeout: float = 30) -> Call:
        """The first answer to a request sent after ``after``, looked up (or defaulted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.answered(endpoint, after, looked_up)
            if found:
                return min(found, key=lambda c: c.sent + c.took)
            time.sleep(0.01)
        raise AssertionError(
            f"{endpoint}: no {'looked-up' if looked_up else 'defaulted'} answer in {timeout} s"
        )

    def _client(self, endpoint: str, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=BOUND * 5) as client:
            n = i
            while not self._stop.is_set():
                n += 1
                row = {"customer_id": n % CUSTOMERS, "amount": float(n % 7)}
                sent = time.monotonic()
                try:
                    answer = client.post(f"/v1/endpoints/{endpoint}/predict", json={"rows": [row]})
                    call = Call(endpoint, sent, time.monotonic() - sent, answer.status_code, answer.json())
                except httpx.HTTPError as exc:
                    call = Call(endpoint, sent, time.monotonic() - sent, None, error=type(exc).__name__)
                with self._lock:
                    self.calls.append(call)


def _project(root: Path, online_url: str) -> ml.Project:
    (root / "mloop.yaml").write_text(
        f"project: chaos_redis\nonline_url: {json.dumps(online_url)}\nonline_timeout_ms: {TIMEOUT_MS}\n"
        # no shedding on event-loop lag: a busy test machine would shed requests this test counts
        "serving:\n  max_queue_ms: null\n"
        # each endpoint's view must be served fresh: its minutes without the online store are bad
        "monitoring:\n  endpoints:\n"
        "    fallback: {slos: [{kind: freshness, feature_view: spend_default, max_age: 1h, target: 0.99}]}\n"
        "    strict: {slos: [{kind: freshness, feature_view: spend_strict, max_age: 1h, target: 0.99}]}\n"
    )
    project = ml.Project.open(root, env={})
    customer = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
    pushed = ml.PushSource("spends", schema=[ml.Field("customer_id", "int64"), ml.Field("spend", "float64"),
                                             ml.Field("ts", "timestamp")])  # fmt: skip
    spend = [ml.Field("spend", "float64")]
    project.apply([
        customer, pushed,
        ml.FeatureView("spend_default", entities=[customer], source=pushed, features=spend,
                       on_missing="default", defaults={"spend": DEFAULT_SPEND}),
        ml.FeatureView("spend_strict", entities=[customer], source=pushed, features=spend),
    ])  # fmt: skip
    now = datetime.now(UTC)
    project.features.push("spends", pd.DataFrame({
        "customer_id": np.arange(CUSTOMERS, dtype="int64"), "spend": np.arange(CUSTOMERS) * 10.0 + 5.0,
        "ts": [now - timedelta(minutes=1)] * CUSTOMERS}))  # fmt: skip
    # the freshness SLOs' watermark
    project.features.materialize(now - timedelta(days=1), now, views=["spend_default", "spend_strict"])
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"spend": np.arange(40) * 5.0, "amount": np.arange(40) % 7 * 1.0})
    model = LogisticRegression().fit(frame, (frame.spend > 100).astype(int))
    for name, view in (("fallback", "spend_default"), ("strict", "spend_strict")):
        project.models.register(name, model, input_example=frame, lineage={"features": [f"{view}:*"]})
        project.deploy(name, name, version=1)
    return project


@pytest.fixture(scope="module")
def served(redis_own: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ml.Project]:
    root = tmp_path_factory.mktemp("chaos-redis")
    project = _project(root, redis_own.url(7) + "?prefix=chaos:")
    with pytest.MonkeyPatch.context() as patch:
        # `mloop` imports the package it was installed from; the server must run this tree's code.
        patch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
        yield project
    project.close()


@dataclass
class Outage:
    """What the clients saw around one outage (times: ``time.monotonic()``)."""

    calls: list[Call]
    stopping: float  # Redis told to stop
    down: float  # its process exited
    restarting: float  # told to start
    back: float  # answering PING again
    recovery: dict[str, float]  # endpoint: seconds from ``back`` to its first looked-up answer

    @property
    def during(self) -> list[Call]:
        """The requests sent and answered while Redis was down."""
        return [c for c in self.calls if self.down <= c.sent and c.sent + c.took <= self.restarting]


def stop_redis_under_load(project: ml.Project, redis_own: RedisServer, outage: float = OUTAGE) -> Outage:
    """Serve ``project``, load both endpoints, stop Redis for ``outage`` seconds, start it, and return what
    the clients saw."""
    with mloop_serve(Path(project.root)) as server, Load(server.url, ["fallback", "strict"]) as load:
        begun = time.monotonic()
        for endpoint in ("fallback", "strict"):
            load.wait(endpoint, begun, looked_up=True, timeout=60)
        time.sleep(0.5)
        assert redis_own.command("SAVE") == b"+OK\r\n"  # what a persistent Redis keeps across a restart
        stopping = time.monotonic()
        try:
            redis_own.stop(remove=False)
            down = time.monotonic()
            time.sleep(outage)
            # a controller's tick meanwhile: it must leave the alert open
            for endpoint in ("fallback", "strict"):
                project.monitoring.check(endpoint)
        finally:
            restarting = time.monotonic()
            redis_own.start()
        back = time.monotonic()
        recovered = {e: load.wait(e, back, looked_up=True, timeout=10) for e in ("fallback", "strict")}
        time.sleep(0.5)
    recovery = {e: c.sent + c.took - back for e, c in recovered.items()}
    return Outage(load.calls, stopping, down, restarting, back, recovery)


def test_redis_stopped_under_load(served: ml.Project, redis_own: RedisServer) -> None:
    seen = stop_redis_under_load(served, redis_own)
    calls, during, recovery, stopping = seen.calls, seen.during, seen.recovery, seen.stopping
    folder = predictions_folder(served.settings)
    logged = pd.concat([read_predictions(folder, "fallback"), read_predictions(folder, "strict")])
    logged = logged[logged["status"] == "ok"].set_index("request_id")
    answered = [c.body["request_id"] for c in calls if c.status == 200]
    looked_up = [c.body["request_id"] for c in calls if c.status == 200 and "defaulted" not in c.body]
    # Lost: answered but not logged, or looked up after the restart without the value pushed before it.
    lost = len(set(answered) - set(logged.index)) + int(logged.loc[looked_up, "spend"].isna().sum())
    print_figures(seen, OUTAGE, lost)
    assert lost == 0

    # No request hangs: every one got an HTTP answer within the bound, outage or not.
    assert not [c for c in calls if c.status is None], Counter(c.error for c in calls)
    slowest = max(c.took for c in calls)
    assert slowest < BOUND, f"the slowest request took {slowest:.2f} s"
    # Before the outage: looked up; during it: the declared defaults, or a 503 naming the store and the fix.
    assert all("defaulted" not in c.body for c in calls if c.sent + c.took < stopping and c.status == 200)
    fallback = [c for c in during if c.endpoint == "fallback"]
    strict = [c for c in during if c.endpoint == "strict"]
    assert fallback and strict, "no request ran during the outage"
    assert {c.status for c in fallback} == {200}, Counter(c.status for c in fallback)
    assert all(c.body["defaulted"] == {"spend": STORE_UNAVAILABLE} for c in fallback)
    assert {c.status for c in strict} == {503}, Counter(c.status for c in strict)
    message = strict[0].body["message"]
    assert "online store" in message and "cannot reach Redis" in message and "on_missing" in message
    assert "spend_strict" in message
    # After: looked up again, within a second of Redis answering (measured ~0.01 s; 5 s for a busy machine).
    assert max(recovery.values()) < 5.0, recovery

    # The prediction log says which answers were defaulted and why, and counts the failed ones as errors.
    ids = [c.body["request_id"] for c in fallback]
    assert all(d == {"spend": STORE_UNAVAILABLE} for d in logged.loc[ids, "defaulted"])
    assert (logged.loc[ids, "spend"] == DEFAULT_SPEND).all()
    assert logged.loc[looked_up, "defaulted"].isna().all()
    assert logged.loc[looked_up, "spend"].isin(np.arange(CUSTOMERS) * 10.0 + 5.0).all()  # the pushed values
    failed = read_predictions(folder, "strict")
    assert (failed["status"] == "error").sum() == sum(
        1 for c in calls if c.endpoint == "strict" and c.status == 503
    )

    # The alert fired while Redis was down and was resolved once it answered again.
    for endpoint in ("fallback", "strict"):
        alerts = [
            a for a in served.monitoring.alerts(endpoint) if a["key"] == f"{endpoint}/online-store/down"
        ]
        assert len(alerts) == 1, alerts
        assert alerts[0]["severity"] == "page" and alerts[0]["resolved_at"] is not None, alerts[0]
        assert alerts[0]["resolution"] == "the online store answers again"

    # The freshness SLO burns: the minutes of the outage are bad (those before and after are good; read
    # three minutes on: the outage's minutes are whole, and there are good ones around them).
    later = datetime.now(UTC) + timedelta(minutes=3)
    for endpoint in ("fallback", "strict"):
        (freshness,) = served.monitoring.slo(endpoint, now=later)
        assert freshness["kind"] == "freshness" and freshness["events"] >= 3, freshness
        assert 1 <= freshness["bad"] <= 2 and freshness["bad"] < freshness["events"], freshness


def print_figures(seen: Outage, outage: float, lost: int) -> None:
    """The row of docs/reliability.md's table (``CHAOS {...}``, for benchmarks/chaos.py), printed with -s."""
    figures: dict[str, dict[str, object]] = {}
    failed: Counter[str] = Counter()
    for endpoint in ("fallback", "strict"):
        mine = [c for c in seen.calls if c.endpoint == endpoint]
        out = [c for c in seen.during if c.endpoint == endpoint]
        took = sorted(c.took for c in out) or [0.0]
        failed.update(f"{c.status or c.error} ({endpoint})" for c in mine if c.status != 200)
        figures[endpoint] = {"requests": len(mine), "in_outage": dict(Counter(str(c.status) for c in out)),
                             "defaulted": sum(1 for c in out if "defaulted" in c.body),
                             "outage_p50_ms": round(took[len(took) // 2] * 1000, 1),
                             "slowest_ms": round(max(c.took for c in mine) * 1000, 1)}  # fmt: skip
    report.row(f"Redis (online store) stopped {outage:g} s under load, then started",
               sees="views with on_missing: default answer their defaults, marked defaulted; views with "
               "on_missing: error answer 503 naming the store; alert <endpoint>/online-store/down until back",
               recovery_s=round(max(seen.recovery.values()), 3), failed=dict(failed), lost=lost,
               **figures)  # fmt: skip

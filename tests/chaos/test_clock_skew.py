"""Chaos: the serving process's clock 5 minutes ahead of, or behind, the loop controller's.

A real ``mloop serve`` runs with its wall clock shifted (``tests/chaos/skewed/sitecustomize.py``): it stamps
the prediction log with its own time, while the controller (this process) times each canary step by its
clock. What a user relies on: the canary walks exactly as with agreeing clocks. A step counts the requests
served by the deployment revision it made, whatever their timestamps: a server behind does not leave the
step waiting for requests it has already logged "before" the step began, and a server ahead does not let
a step count the previous step's requests and promote without traffic of its own. No request fails and
every answer is in the prediction log, stamped with the server's clock.

The online features the same server reads, pushed by this process (clock right): an event just pushed
counts in its window on a server behind (before the fix it was missing until the server's clock reached
it); a plain value is judged against its view's TTL on the server's clock, as documented: with a TTL
shorter than the skew, a server ahead reads a fresh value as stale (null, counted).

Figures for docs/reliability.md are printed with ``-s``: ``pytest -s tests/chaos/test_clock_skew.py``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
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
from tests.chaos.conftest_artifact import chaos_project, serve_with, served_env
from tests.chaos.procs import ReconnectingClients
from tests.chaos.waiting import until
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import Server, mloop_serve
from tests.training import fraud

__all__ = ["chaos_project"]  # the fixture, imported for pytest to find
SKEW_S = 300.0  # the serving process's clock is this far off the controller's, ahead or behind
SKEWED = Path(__file__).parent / "skewed"  # its sitecustomize.py shifts the clock of the process it starts
STEP_REQUESTS = 30  # requests a canary step must have (min_requests); the load gives it a few more
WAIT = 30.0  # seconds any one wait may take on a busy shared machine
# Pushed by this process, read by the server: a value goes stale after 2 minutes, and is counted for an hour.
TAPS = ml.PushSource("taps", schema=[ml.Field("customer_id", "int64"), ml.Field("amount", "float64"),
                                     ml.Field("ts", "timestamp")])  # fmt: skip
TAPS_VIEW = ml.FeatureView("taps", entities=[fraud.customer], source=TAPS, ttl="2m",
                           features=[ml.Field("amount", "float64")],
                           aggregations=[ml.Aggregation("amount", "count", "1h")])  # fmt: skip


@pytest.fixture(scope="module", params=[SKEW_S, -SKEW_S], ids=["ahead", "behind"])
def skewed(request: pytest.FixtureRequest, chaos_project: Project) -> Iterator[tuple[Project, Server, float]]:
    """A ``mloop serve`` of the project whose clock is ``SKEW_S`` seconds ahead of this process's (or behind)."""
    skew = float(request.param)
    chaos_project.apply([TAPS, TAPS_VIEW])  # before the server starts, which reads the definitions then
    # No shedding on event-loop lag: on this shared machine it reads other processes as overload, and a
    # shed request (503) is a failure the canary counts; the witness here is the clock, not the load.
    serve_with(chaos_project.root, max_queue_ms=None)
    with pytest.MonkeyPatch.context() as patch:
        served_env(patch)
        patch.setenv("PYTHONPATH", os.pathsep.join([str(SKEWED), os.environ["PYTHONPATH"]]))
        patch.setenv("MLOOP_CHAOS_CLOCK_SKEW_S", str(skew))
        with mloop_serve(Path(chaos_project.root)) as server:
            yield chaos_project, server, skew


_until = functools.partial(until, timeout=WAIT)


def _seen(project: Project, endpoint: str, load: ReconnectingClients) -> str:
    """What the clients got and what the log holds, per (revision, version): for a wait that timed out."""
    logged = _logged(project, endpoint).groupby(["revision", "version"]).size().to_dict()
    return f"answers {dict(load.statuses)}, errors {load.errors[-3:]}, logged {logged}"


def _logged(project: Project, endpoint: str) -> pd.DataFrame:
    """The endpoint's answered requests (one row each) in the prediction log."""
    frame = read_predictions(predictions_folder(project.settings), endpoint)
    return frame[(frame["row"] == 0) & (frame["status"] == "ok")]


def _answers(server: Server, endpoint: str, row: dict[str, Any]) -> int:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.post(f"/v1/endpoints/{endpoint}/predict", json={"rows": [row]}).status_code


def _served(project: Project, endpoint: str, revision: int, version: int) -> int:
    found = _logged(project, endpoint)
    return int(((found["revision"] == revision) & (found["version"] == version)).sum())


@pytest.mark.slow
def test_a_canary_walks_by_its_revisions_whatever_the_serving_clock(
    skewed: tuple[Project, Server, float],
) -> None:
    project, server, skew = skewed
    endpoint = "ahead" if skew > 0 else "behind"
    project.models.set_alias("fraud", "champion", 1)
    project.deploy(endpoint, "fraud", version=1)
    # No latency gate: this shared machine's p99 is not the witness here (the slow-model test has one).
    rollout = ml.Canary(
        steps=[0.5, 1.0], min_requests=STEP_REQUESTS, max_error_rate=0.01, max_p99_ms=None, compare=None
    )
    policy = ml.LoopPolicy(
        endpoint, SimpleNamespace(name="fraud"), triggers=[], rollout=rollout, rollback=None
    )
    # One holder for both servers' runs: the lease the first took is this one's to renew.
    controller = LoopController(project, [policy], holder="chaos-clock", train="inprocess")
    # What the loop does once a challenger passed its gate: deploy it at the first share, record the step
    # with the revision it made (the controller's own steps do the same: the second one below is its own).
    first = project.deploy(endpoint, "fraud", version=2, canary=0.5)
    project.loop.record(
        endpoint,
        "canary",
        challenger=2,
        champion=1,
        step=0,
        share=0.5,
        at=utcnow().isoformat(),
        revision=first.revision,
        reason="v2 takes 50% of the traffic",
    )
    rows = fraud_rows(project.root)
    _until("the server serves the canary", lambda: _answers(server, endpoint, rows[0]) == 200)
    wall = [time.time()]
    with ReconnectingClients(server.url, endpoint, rows, clients=2, pause=0.005) as load:
        _until(
            "the first step's requests",
            lambda: _served(project, endpoint, first.revision, 2) > STEP_REQUESTS,
            seen=lambda: _seen(project, endpoint, load),
        )
    (stepped,) = controller.tick()  # the server's stamps are 5 minutes off the step's start: they count
    # The next step made (a server behind: "v2: 0 of 30 requests at this step" before the fix, for ever).
    assert stepped["reason"].startswith("v2 takes 100% of the traffic"), stepped
    # No load now: the second step has served nothing, whatever the first step's stamps say.
    (waiting,) = controller.tick()
    second = project.deployments.get(endpoint)
    with ReconnectingClients(server.url, endpoint, rows, clients=2, pause=0.005) as more:
        _until(
            "the second step's requests",
            lambda: _served(project, endpoint, second.revision, 2) > STEP_REQUESTS,
            seen=lambda: _seen(project, endpoint, more),
        )
        (promoted,) = controller.tick()
    wall.append(time.time())

    assert [(r.version, r.weight) for r in second.routes] == [(2, 1.0)] and second.revision > first.revision
    assert project.loop.state(endpoint).step_revision == second.revision  # recorded by the controller's step
    assert waiting["decision"] == "canary" and waiting["reason"].startswith("v2: 0 of 30 requests"), waiting
    assert promoted["decision"] == "promote", promoted  # a server ahead: the tick before promoted, unfixed
    assert project.models.get("fraud", alias="champion").version == 2
    actions = [e["action"] for e in project.loop.timeline(endpoint, alerts=False)]
    assert actions == ["loop.canary", "loop.canary", "loop.promote"]
    # The witnesses: no request failed, every answer is logged, stamped by the server's skewed clock.
    answered = load.ids + more.ids
    assert not load.errors and not more.errors
    assert set(load.statuses) | set(more.statuses) == {200}
    logged = _logged(project, endpoint).set_index("request_id")
    lost = len(set(answered) - set(logged.index))
    assert lost == 0
    stamps = pd.to_datetime(logged.loc[answered, "ts"], utc=True).map(pd.Timestamp.timestamp)
    assert stamps.between(wall[0] + skew - 5, wall[1] + skew + 5).all(), (stamps.min(), stamps.max(), wall)
    report.row(
        f"clock of the serving process {skew:+.0f} s from the loop controller's",
        sees="nothing: the canary steps, waits for its requests and promotes as with agreeing clocks",
        recovery_s=None,
        failed={},
        lost=lost,
        answered=len(answered),
        log_offset_s=round(float(stamps.min()) - wall[0], 1),
    )  # the first stamp against the load's start


@pytest.mark.slow
def test_online_windows_count_a_just_pushed_event_and_ttls_follow_the_serving_clock(
    skewed: tuple[Project, Server, float],
) -> None:
    project, server, skew = skewed
    key = 1 if skew > 0 else 2  # each server's own entity: the module's servers share the online store
    project.features.push("taps", [{"customer_id": key, "amount": 3.5, "ts": datetime.now(UTC)}])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post(
            "/v1/features/online", json={"features": ["taps:*"], "entity_rows": [{"customer_id": key}]}
        )
    assert answer.status_code == 200, answer.text
    got = answer.json()["features"]
    assert got["amount_count_1h"] == [1]  # counted now, ahead or behind (behind: 0 before the fix)
    # The TTL (2 minutes) on the server's clock: 5 minutes old to a server ahead, fresh to one behind.
    assert got["amount"] == ([None] if skew > 0 else [3.5])

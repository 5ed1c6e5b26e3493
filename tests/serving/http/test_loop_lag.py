"""While ``mloop serve`` answers a burst of predictions, no turn of its event loop is blocked by the server
itself for longer than the lag at which it starts shedding (``serving.max_queue_ms``): a stall on the loop
(a garbage collection, a compaction, an fsync) would delay every request behind it. Counted from the
``mloop_event_loop_blocked_seconds`` histogram on /metrics, not timed: it leaves out time the machine gave
to other processes, so the count does not depend on what else runs there."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mloop import Project
from mloop.config import load_settings
from tests.serving.http.load import Clients, fraud_rows
from tests.serving.http.running import mloop_serve

REQUESTS = 3_000
WARM_UP = 100
# One keep-alive connection, so that a turn of the loop holds one request's work (about 1.5 ms here): a
# turn serves every request that arrived during the one before, so with N connections a saturated server
# runs turns of N requests, which this histogram cannot tell from a stall (on 2 cores, 6 connections put
# about 40 to 60 turns of 3,000 requests in the 10 to 20 ms buckets). A stall on top of one request still shows.
CLIENTS = 1


def _histogram(metrics: str, name: str) -> dict[float, float]:
    """``{upper bound: observations up to it}`` of histogram ``name`` (the +inf bucket is its count)."""
    for family in text_string_to_metric_families(metrics):
        if family.name == name:
            return {float(s.labels["le"]): s.value for s in family.samples if s.name == f"{name}_bucket"}
    raise AssertionError(f"{name} is not on /metrics")


def _per_bucket(start: dict[float, float], end: dict[float, float]) -> dict[float, float]:
    """Observations between the two scrapes in each bucket (not cumulative), the empty ones left out."""
    counts: dict[float, float] = {}
    below = 0.0
    for le in sorted(end):
        counts[le], below = end[le] - start[le] - below, end[le] - start[le]
    return {le: n for le, n in counts.items() if n}


@pytest.mark.slow
def test_no_loop_turn_is_blocked_longer_than_the_shedding_budget_during_a_burst(trained: Project) -> None:
    max_queue_ms = load_settings(Path(trained.root)).serving.max_queue_ms  # as the served process reads it
    assert max_queue_ms is not None, "the served project sheds on loop lag (serving.max_queue_ms)"
    budget = max_queue_ms / 1000
    trained.deploy("burst", "fraud", version=1)
    rows = fraud_rows(trained.root)
    with mloop_serve(Path(trained.root)) as server:
        with Clients(server.url, "burst", rows, clients=CLIENTS, requests=WARM_UP) as warm:
            warm.wait_finished()  # first calls build what later ones reuse: that is start-up
        before = httpx.get(f"{server.url}/metrics", timeout=10).text
        with Clients(server.url, "burst", rows, clients=CLIENTS, requests=REQUESTS) as load:
            load.wait_finished()
        after = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert not load.errors and load.statuses[200] > 0, load.statuses

    start, end = (_histogram(text, "mloop_event_loop_blocked_seconds") for text in (before, after))
    assert budget in end, f"serving.max_queue_ms {max_queue_ms} is not a bucket bound: {sorted(end)}"
    counted = end[math.inf] - start[math.inf]
    assert counted > 0, "the loop monitor measured nothing during the burst"
    within = end[budget] - start[budget]
    assert within == counted, (
        f"{counted - within:g} of {counted:g} loop turns were blocked longer than {max_queue_ms:g} ms; "
        f"turns per bucket (upper bound in seconds): {_per_bucket(start, end)}"
    )
    assert _histogram(after, "mloop_event_loop_lag_seconds")[math.inf] > 0

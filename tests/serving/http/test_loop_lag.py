"""While ``mloop serve`` answers a burst of predictions, no turn of its event loop is blocked by the server
itself for longer than the lag at which it starts shedding (``serving.max_queue_ms``): a stall on the loop
(a garbage collection, a compaction, an fsync) would delay every request behind it. Counted from the
``mloop_event_loop_blocked_seconds`` histogram on /metrics, not timed: it leaves out time the machine gave
to other processes. It cannot leave out time a virtual machine's host took from the vCPU (steal time is
not per thread), so on a shared CI host a rare turn lands just over the budget whatever the server does:
the test allows one turn in a thousand over the budget, none over :data:`STALL` (the stalls it guards
against, a compaction or a full collection on the loop, held it for 90 to 120 ms every few seconds).

The endpoint serves a model on columns sent in the request (about 0.4 ms of work per request here), not the
fraud model's online lookup: that request's own work (3 to 5 ms here, most of it pandas in its on-demand
view) is a third of the budget, and a turn holding one such request on a slower or busier machine went
over it with nothing stalling (6 to 10 turns in 4,500 on this machine and on CI). The stalls this test is
about are the server's, whatever the request does."""

from __future__ import annotations

import math
import os
from pathlib import Path

import httpx
import lightgbm
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mloop import Project
from mloop.config import load_settings
from tests.serving.http.load import Clients
from tests.serving.http.running import mloop_serve

REQUESTS = 3_000
WARM_UP = 100
# One keep-alive connection, so that a turn of the loop holds one request's work (about 0.4 ms here): a
# turn serves every request that arrived during the one before, so with N connections a saturated server
# runs turns of N requests, which this histogram cannot tell from a stall (on 2 cores, 6 connections put
# about 40 to 60 turns of 3,000 requests in the 10 to 20 ms buckets). A stall on top of one request still shows.
CLIENTS = 1
RARE = 1 / 1_000  # the share of turns that may go over the budget: a host's steal, not the server
STALL = 0.05  # seconds: no turn may be blocked longer, whatever the host


def _lean_endpoint(project: Project, name: str) -> list[dict[str, float]]:
    """Deploy ``name``: a small LightGBM model on 8 columns sent in the request; rows to send it."""
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(2_000, 8)), columns=[f"x{i}" for i in range(8)])
    y = (x["x0"] + x["x1"] * x["x2"] + rng.normal(scale=0.5, size=len(x)) > 0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=50, num_leaves=15, verbose=-1).fit(x, y)
    version = project.models.register(name, model, input_example=x.head(20))
    project.deploy(name, name, version=version.version)
    return [{k: float(v) for k, v in row.items()} for row in x.head(200).to_dict("records")]


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


def _proc_stat() -> str:
    try:
        return Path("/proc/stat").read_text()
    except OSError:
        return ""


def _steal_seconds(stat: str) -> float:
    """The CPU time a hypervisor took from this machine's vCPUs since boot (``/proc/stat``'s 8th field)."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu" and len(fields) > 8:
            return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return 0.0


@pytest.mark.slow
def test_no_loop_turn_is_blocked_longer_than_the_shedding_budget_during_a_burst(trained: Project) -> None:
    max_queue_ms = load_settings(Path(trained.root)).serving.max_queue_ms  # as the served process reads it
    assert max_queue_ms is not None, "the served project sheds on loop lag (serving.max_queue_ms)"
    budget = max_queue_ms / 1000
    rows = _lean_endpoint(trained, "burst")
    with mloop_serve(Path(trained.root)) as server:
        with Clients(server.url, "burst", rows, clients=CLIENTS, requests=WARM_UP) as warm:
            warm.wait_finished()  # first calls build what later ones reuse: that is start-up
        before, before_steal = httpx.get(f"{server.url}/metrics", timeout=10).text, _proc_stat()
        with Clients(server.url, "burst", rows, clients=CLIENTS, requests=REQUESTS) as load:
            load.wait_finished()
        after, after_steal = httpx.get(f"{server.url}/metrics", timeout=10).text, _proc_stat()
    assert not load.errors and load.statuses[200] > 0, load.statuses

    start, end = (_histogram(text, "mloop_event_loop_blocked_seconds") for text in (before, after))
    assert budget in end, f"serving.max_queue_ms {max_queue_ms} is not a bucket bound: {sorted(end)}"
    counted = end[math.inf] - start[math.inf]
    assert counted > 0, "the loop monitor measured nothing during the burst"
    over = counted - (end[budget] - start[budget])
    stalled = counted - (end[STALL] - start[STALL])
    steal = _steal_seconds(after_steal) - _steal_seconds(before_steal)
    detail = (
        f"turns per bucket (upper bound in seconds): {_per_bucket(start, end)}; "
        f"the host took {steal:g} s of CPU from this machine meanwhile (steal)"
    )
    assert stalled == 0, f"{stalled:g} loop turns were blocked longer than {STALL * 1000:g} ms; {detail}"
    assert over <= max(1, RARE * counted), (
        f"{over:g} of {counted:g} loop turns were blocked longer than {max_queue_ms:g} ms "
        f"(at most {RARE:.1%} may be); {detail}"
    )
    assert _histogram(after, "mloop_event_loop_lag_seconds")[math.inf] > 0

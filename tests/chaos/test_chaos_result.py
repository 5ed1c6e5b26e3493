"""``mloop chaos run``'s measurements on made-up samples: phases, failures by cause, recovery, and when the
load may stop."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from mloop.chaos import ChaosResult
from mloop.chaos.experiment import AFTER_BOUND, MIN_AFTER, _classify, _Watch, lead_in
from mloop.chaos.result import back_to_baseline, streak, summarize, threshold_s
from mloop.review.probe import Sample

RPS = 10.0


def sample(k: int, outcome: str = "200", latency: float = 0.01, start: float = 100.0) -> Sample:
    """Request ``k`` of a load at ``RPS`` that began at ``start``."""
    due = start + k / RPS
    return Sample(outcome, latency, due + latency, f"r{k}" if outcome.startswith("2") else None)


def run_of(outcomes: dict[range, tuple[str, float]]) -> list[Sample]:
    return [sample(k, *how) for ks, how in outcomes.items() for k in ks]


def result(samples: list[Sample], starts: float, ends: float, seconds: float) -> ChaosResult:
    fields = summarize("online-store-pause", "fraud", "http://127.0.0.1:1/", datetime.now(UTC), RPS, seconds,
                       samples, starts, ends, 0.0)  # fmt: skip
    return ChaosResult(**fields, lost=0, lost_note="")


def test_requests_are_split_by_when_they_were_due_and_failures_counted_by_cause() -> None:
    # 2 s before (fast), a 2 s pause (503s, two timeouts, some answered with defaults), 2 s after (fast)
    samples = run_of({
        range(0, 20): ("200", 0.01), range(20, 30): ("503", 0.2), range(30, 32): ("timeout", 5.0),
        range(32, 40): ("200 defaulted", 0.2), range(40, 60): ("200", 0.01),
    })  # fmt: skip
    found = result(samples, starts=102.0, ends=104.0, seconds=2.0)
    before, during, after = found.phases
    assert (before.sent, before.answered, before.failed) == (20, 20, {})
    assert (during.sent, during.answered, during.defaulted) == (20, 8, 8)
    assert during.failed == {"503": 10, "timeout": 2}
    assert (after.sent, after.answered, after.failed) == (20, 20, {})
    assert found.failed == {"503": 10, "timeout": 2}
    assert before.p50_ms == pytest.approx(10.0) and during.p50_ms == pytest.approx(200.0)
    assert found.first_answer_s == pytest.approx(0.01)  # request 40, due at the end, answered in 10 ms
    assert found.baseline_s == 0.0
    row = found.row()
    assert row["failed"] == {"503": 10, "timeout": 2} and row["recovery_s"] == 0.0 and row["lost"] == 0
    assert "during: 8 of 20 answered (8 with defaults), 10 × 503, 2 × timeout" in row["sees"]


def test_recovery_waits_for_a_run_of_requests_at_the_baseline_latency() -> None:
    # after the fault ends at 104.0 the first answers are good but slow (a queue draining), then fast
    samples = run_of({range(0, 20): ("200", 0.01), range(20, 40): ("connection", 0.001),
                      range(40, 45): ("200", 0.5), range(45, 46): ("200", 0.01), range(46, 47): ("503", 0.01),
                      range(47, 70): ("200", 0.01)})  # fmt: skip
    found = result(samples, starts=102.0, ends=104.0, seconds=2.0)
    assert found.first_answer_s == pytest.approx(0.5)  # request 40's slow answer
    assert found.baseline_s == pytest.approx(
        0.7
    )  # request 47 (104.7) begins the first run of good, fast ones
    assert found.failed == {"503": 1, "connection": 20}


def test_an_instant_fault_is_watched_for_its_seconds() -> None:
    samples = run_of({range(0, 40): ("200", 0.01)})
    found = result(samples, starts=101.0, ends=101.0, seconds=2.0)  # a kill at 101.0
    assert [p.sent for p in found.phases] == [10, 20, 10]
    assert found.baseline_s == 0.0 and found.first_answer_s == pytest.approx(0.01)


def test_without_answers_before_the_fault_there_is_no_baseline() -> None:
    samples = run_of({range(0, 20): ("503", 0.01), range(20, 40): ("200", 0.01)})
    assert threshold_s([s for s in samples if s.due < 102.0]) is None
    found = result(samples, starts=102.0, ends=102.0, seconds=1.0)
    assert found.baseline_s is None and found.first_answer_s == pytest.approx(0.01)
    assert back_to_baseline(samples, 102.0, 1.0, 50) is None  # fewer good requests than the run needs


def test_the_recovery_run_is_half_a_second_of_requests_and_the_lead_in_is_bounded() -> None:
    assert streak(10) == 5 and streak(50) == 25
    assert (lead_in(0.5), lead_in(5), lead_in(120)) == (2.0, 5, 10.0)


def test_the_load_stops_only_once_recovered_and_followed_or_at_the_bound() -> None:
    now = time.monotonic()
    watch = _Watch(RPS, streak(RPS))
    start = now - 10.0
    for s in run_of({range(0, 40): ("200", 0.01), range(40, 60): ("503", 0.01)}):
        watch.add(Sample(s.outcome, s.latency_s, s.done - 100.0 + start, s.request_id))
    assert not watch.stop(), "stopped before the fault was injected"
    watch.starts, watch.ends = start + 4.0, start + 4.0
    watch.window = now - MIN_AFTER - 1.0
    assert not watch.stop(), "stopped while every request after the fault fails"
    for k in range(60, 70):  # good again
        s = sample(k, start=start)
        watch.add(s)
    watch._checked = 0.0
    assert not watch.stop(), "stopped before the fault's own recovery (a replacement worker) was seen"
    watch.followed = True
    watch._checked = 0.0
    assert watch.stop()
    late = _Watch(RPS, streak(RPS), starts=now - 60, ends=now - 60, window=now - AFTER_BOUND - 1)
    assert late.stop(), "the load went on past its bound"
    failed = _Watch(RPS, streak(RPS), failed=RuntimeError("redis went away"))
    assert failed.stop()


def test_a_request_still_in_flight_cuts_the_samples_judged() -> None:
    watch = _Watch(RPS, streak(RPS))
    for k in (0, 1, 2, 4, 5):  # request 3 still runs
        watch.add(sample(k))
    assert [round(s.due, 1) for s in watch._complete_prefix()] == [100.0, 100.1, 100.2]


def test_answers_are_classified_with_their_request_id_and_defaults() -> None:
    ok = httpx.Response(200, json={"request_id": "abc", "predictions": [1]})
    defaulted = httpx.Response(200, json={"request_id": "d", "predictions": [1], "defaulted": {"spend": "x"}})
    assert _classify(ok) == ("200", "abc")
    assert _classify(defaulted) == ("200 defaulted", "d")
    assert _classify(httpx.Response(503, json={"error": "OnlineStoreUnavailable"})) == ("503", None)
    assert _classify(httpx.Response(200, text="not json")) == ("200", None)

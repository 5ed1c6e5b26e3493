"""The requirements checks, each made to fail and pass on a real project: the fraud project behind a real
``mloop serve``, its prediction log filled by real requests, requirements set in mloop.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.review import Finding
from tests.monitoring.stream import failures, write
from tests.review.conftest import finding, fraud_project, reopen
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import Server, mloop_serve

ANSWERED = 30


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    """The fraud project (v2 live on ``fraud``), with ``ANSWERED`` real predictions in its log."""
    project = fraud_project(tmp_path_factory.mktemp("requirements"))
    with mloop_serve(Path(project.root)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for row in fraud_rows(project.root, ANSWERED):
                answer = client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
                assert answer.status_code == 200, answer.text
        yield project, server
    project.close()


def _with(project: Project, check: str, requirements: dict[str, Any] | None, **how: Any) -> Finding:
    """The finding of ``check`` with ``review.requirements`` set to ``requirements`` (then removed)."""
    changed = reopen(project, review={"requirements": requirements} if requirements is not None else None)
    try:
        return finding(changed, check, **how)
    finally:
        changed.close()
        reopen(project, review=None).close()


def test_every_live_endpoint_states_a_requirement_and_none_names_a_missing_endpoint(
    served: tuple[Project, Server],
) -> None:
    project, _ = served
    none = _with(project, "requirements.declared", None)
    assert none.status == "fail" and none.weight == "low"
    assert none.outcome.evidence == ("fraud: live, no review.requirements entry",) and none.outcome.refs == (
        "endpoint:fraud",
    )
    stray = _with(project, "requirements.declared", {"fraud": {"p99_ms": 50}, "ghost": {}})
    assert stray.status == "fail" and "setting:review.requirements.ghost" in stray.outcome.refs
    assert "ghost: a requirement is stated, but no such endpoint is deployed" in stray.outcome.evidence
    assert _with(project, "requirements.declared", {"fraud": {"p99_ms": 50}}).status == "pass"


def test_the_last_days_p99_must_be_within_the_requirement(served: tuple[Project, Server]) -> None:
    project, _ = served
    assert (
        _with(project, "requirements.latency", {"fraud": {"availability": 0.9}}).status == "n/a"
    )  # no p99_ms
    slow = _with(project, "requirements.latency", {"fraud": {"p99_ms": 0.001}})
    assert slow.status == "fail" and slow.weight == "high" and slow.outcome.refs[0] == "endpoint:fraud"
    assert f"over {ANSWERED} answered request(s) of the last day; target 0.001 ms" in slow.outcome.evidence[0]
    assert _with(project, "requirements.latency", {"fraud": {"p99_ms": 60_000}}).status == "pass"
    before = datetime.now(UTC) - timedelta(days=3)  # a day without traffic (and without a probe)
    quiet = _with(project, "requirements.latency", {"fraud": {"p99_ms": 60_000}}, now=before)
    assert quiet.status == "n/a" and "no traffic" in quiet.outcome.summary


def test_throughput_is_shown_by_a_peak_minute_or_by_a_probe(served: tuple[Project, Server]) -> None:
    project, server = served
    unshown = _with(project, "requirements.throughput", {"fraud": {"throughput_rps": 20}})
    assert unshown.status == "warn" and unshown.fix == "`mloop review --probe fraud`"
    assert unshown.outcome.evidence[0].startswith("fraud: peak minute of the last day 0.")
    assert _with(project, "requirements.throughput", {"fraud": {"throughput_rps": 0.1}}).status == "pass"
    assert _with(project, "requirements.throughput", {"fraud": {}}).status == "n/a"
    result = project.reviews.probe("fraud", url=server.url, rps=25, seconds=1.2)
    shown = _with(project, "requirements.throughput", {"fraud": {"throughput_rps": 20}})
    assert shown.status == "pass" and f"event:{result.event}" in shown.outcome.refs
    assert any("probe (event" in line and "at 25 rps" in line for line in shown.outcome.evidence)
    # the probe's p99 is cited by the latency check too, and a target it breaks fails there
    cited = _with(project, "requirements.latency", {"fraud": {"p99_ms": 60_000}})
    assert cited.status == "pass" and f"event:{result.event}" in cited.outcome.refs
    assert _with(project, "requirements.throughput", {"fraud": {"throughput_rps": 1_000}}).status == "warn"


def test_real_time_needs_a_live_deployment_and_batch_should_not_be_served_online(
    served: tuple[Project, Server],
) -> None:
    project, _ = served
    assert _with(project, "requirements.mode", None).status == "n/a"
    assert _with(project, "requirements.mode", {"fraud": {"mode": "real-time"}}).status == "pass"
    missing = _with(project, "requirements.mode", {"fraud": {}, "ghost": {"mode": "real-time"}})
    assert missing.status == "fail" and missing.outcome.refs == ("endpoint:ghost",)
    online = _with(project, "requirements.mode", {"fraud": {"mode": "batch"}})
    assert online.status == "warn" and "no batch job is visible" in online.outcome.evidence[0]
    assert "fraud: batch, yet live online at revision 2 with " in online.outcome.evidence[0]
    assert _with(project, "requirements.mode", {"ghost": {"mode": "batch"}}).status == "pass"


@given(target=st.floats(min_value=0.5, max_value=0.99))
@settings(max_examples=6, deadline=None)
def test_availability_is_the_answered_share_of_the_last_days_requests(
    served: tuple[Project, Server], target: float
) -> None:
    project, _ = served
    found = _with(project, "requirements.availability", {"fraud": {"availability": target}})
    assert found.status == "pass"  # every request so far answered
    assert "answered without error (100.0000%)" in found.outcome.evidence[0]


def test_server_errors_break_the_availability_requirement(served: tuple[Project, Server]) -> None:
    project, _ = served
    answered = sum(v["requests"] - v["errors"] for v in project.monitoring.traffic("fraud", since="1d"))
    start = datetime.now(UTC) - timedelta(hours=2)
    write(project, failures(start, minutes=1, per_minute=answered), "failed")  # as the server logs them
    try:
        found = _with(project, "requirements.availability", {"fraud": {"availability": 0.9}})
        assert found.status == "fail" and found.weight == "high" and found.outcome.refs == ("endpoint:fraud",)
        assert (
            f"{answered} of {2 * answered} request(s) answered without error (50.0000%)"
            in (found.outcome.evidence[0])
        )
        assert _with(project, "requirements.availability", {"fraud": {"availability": 0.4}}).status == "pass"
    finally:
        for part in Path(project.root).rglob("part-failed.parquet"):
            part.unlink()

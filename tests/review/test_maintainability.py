"""The maintainability checks, each made to fail and pass on a real project: a registered model deployed on
``fraud``, prediction-log rows written as the server leaves them, labels sent through the feedback service
and the monitor run on them; settings changed in mloop.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop import Project
from tests.monitoring.stream import START, failures, label, records, register, write
from tests.review.conftest import finding, reopen

END = START + timedelta(hours=6)

SLO = {"kind": "availability", "target": 0.99, "period": "1d"}


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, dict[str, int]]]:
    """``fraud`` v1 deployed, with six hours of answered requests from :data:`START` (100 an hour), and the
    true labels of half of them (not sent yet)."""
    project = Project.open(tmp_path_factory.mktemp("served"), env={})
    model = register(project)
    project.deploy("fraud", "fraud", version=1)
    recs, truth = records(model, range(6), 100, seed=1)
    write(project, recs, "ok")
    yield project, dict(list(truth.items())[::2])
    project.close()


@pytest.fixture
def served(stream: tuple[Project, dict[str, int]]) -> Project:
    return stream[0]


def test_an_endpoint_without_an_slo_fails_until_one_is_stated(served: Project) -> None:
    bare = finding(served, "maintainability.slo")
    assert bare.status == "fail" and bare.outcome.evidence == ("fraud: 0 SLO(s)",)
    assert finding(served, "maintainability.slo-budget").status == "n/a"
    stated = reopen(served, monitoring={"endpoints": {"fraud": {"slos": [SLO]}}})
    try:
        found = finding(stated, "maintainability.slo")
        assert found.status == "pass" and found.outcome.evidence == ("fraud: 1 SLO(s) availability",)
    finally:
        stated.close()
        reopen(served, monitoring=None).close()


def test_an_outage_spends_the_budget_and_a_page_left_open_a_day_fails(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        model = register(project)
        project.deploy("fraud", "fraud", version=1)
        write(project, records(model, range(6), 100, seed=2)[0], "ok")
        watched = reopen(project, monitoring={"endpoints": {"fraud": {"slos": [SLO]}}})
        try:
            healthy = finding(watched, "maintainability.slo-budget", now=START + timedelta(hours=6))
            assert healthy.status == "pass" and "0 bad of 600" in healthy.outcome.evidence[0]
            outage = START + timedelta(hours=6)
            write(watched, failures(outage, minutes=10, per_minute=20), "outage")  # 200 of 800 fail
            after = outage + timedelta(minutes=10)
            spent = finding(watched, "maintainability.slo-budget", now=after)
            assert spent.status == "fail" and spent.weight == "high"
            assert "200 bad of 800" in spent.outcome.evidence[0] and spent.outcome.refs == ("endpoint:fraud",)

            assert (
                finding(watched, "maintainability.open-alerts", now=after).outcome.summary
                == "no paging alert is open"
            )
            opened = watched.monitoring.check("fraud", now=after)["opened"]
            assert [(a["name"], a["severity"]) for a in opened] == [("slo_burn", "page")]
            fresh = finding(watched, "maintainability.open-alerts", now=after + timedelta(hours=1))
            assert fresh.status == "pass" and "fraud: page slo_burn open 1.0 h" in fresh.outcome.evidence[0]
            ignored = finding(watched, "maintainability.open-alerts", now=after + timedelta(days=2))
            assert ignored.status == "fail" and ignored.outcome.numbers["alerts"] == [opened[0]["key"]]
            later = after + timedelta(days=4)  # the outage has left every burn window: the page resolves
            assert [a["name"] for a in watched.monitoring.check("fraud", now=later)["resolved"]] == [
                "slo_burn"
            ]
            assert finding(watched, "maintainability.open-alerts", now=later).status == "pass"
        finally:
            watched.close()
    finally:
        project.close()


def test_live_quality_needs_labels_and_the_monitor_to_store_performance(
    stream: tuple[Project, dict[str, int]],
) -> None:
    served, truth = stream
    # the review looks back from its clock: the stream's end, not today (the stream is of November 2026)
    unlabelled = finding(served, "maintainability.live-quality", now=END)
    assert unlabelled.status == "fail" and unlabelled.outcome.numbers["no_labels"] == ["fraud"]
    label(served, truth)
    labelled = finding(served, "maintainability.live-quality", now=END)
    assert labelled.status == "fail" and labelled.outcome.numbers["not_computed"] == ["fraud"]
    assert "300 labelled rows" in labelled.outcome.evidence[0]
    served.monitoring.update("fraud", now=START + timedelta(hours=6), lookback=timedelta(hours=6))
    computed = finding(served, "maintainability.live-quality", now=END)
    assert computed.status == "pass" and "6 window(s) of realised performance" in computed.outcome.evidence[0]


KINDS = st.lists(st.sampled_from(["log", "webhook", "alertmanager"]), max_size=3)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=KINDS)
def test_alerts_leave_the_database_once_a_sink_beyond_the_log_is_configured(
    served: Project, kinds: list[str]
) -> None:
    sinks = [{"kind": k, "name": f"{k}-{i}", **({} if k == "log" else {"url": "http://127.0.0.1:9/hook"})}
             for i, k in enumerate(kinds)]  # fmt: skip
    configured = reopen(served, monitoring={"sinks": sinks})
    try:
        found = finding(configured, "maintainability.alert-sinks")
        assert found.status == ("pass" if set(kinds) - {"log"} else "fail"), kinds
        assert found.outcome.refs == ("setting:monitoring.sinks",)
    finally:
        configured.close()
        reopen(served, monitoring=None).close()


def test_a_sink_that_cannot_be_built_delivers_nothing(served: Project) -> None:
    broken = reopen(served, monitoring={"sinks": [{"kind": "pager-of-dreams"}]})
    try:
        found = finding(broken, "maintainability.alert-sinks")
        assert found.status == "fail" and "cannot be built" in found.outcome.summary
    finally:
        broken.close()
        reopen(served, monitoring=None).close()

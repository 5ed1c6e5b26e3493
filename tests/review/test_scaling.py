"""The scaling checks, each made to fail and pass on a real project that a real ``mloop serve`` (which
announced itself) answered; a second replica announces itself the way its own start would."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop import Project
from mloop.access.servers import Announcement
from mloop.review.checks.scaling import peak_per_second
from tests.review.conftest import finding, fraud_project, reopen
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

ANSWERED = 20


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = fraud_project(tmp_path_factory.mktemp("scaling"))
    with mloop_serve(project.root) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for row in fraud_rows(project.root, ANSWERED):
            answer = client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
            assert answer.status_code == 200, answer.text
    yield project
    project.close()


def test_the_local_prediction_log_rate_is_measured_against_its_threshold(served: Project) -> None:
    calm = finding(served, "risk.local-log-rate")
    assert calm.status == "pass" and calm.outcome.refs == ("setting:data_url",)
    assert calm.outcome.evidence[0].startswith(f"{ANSWERED} logged answers in the last day")
    busy = reopen(served, review={"thresholds": {"local_log_rows_per_second": 0.01}})
    try:
        over = finding(busy, "risk.local-log-rate")
        assert over.status == "fail" and over.weight == "medium"
        assert over.outcome.numbers["peak_per_second"] == pytest.approx(
            calm.outcome.numbers["peak_per_second"]
        )
        assert 0 < over.outcome.numbers["peak_per_second"] <= ANSWERED / 60
    finally:
        busy.close()
        reopen(served, review=None).close()


def test_sqlite_metadata_fails_past_its_measured_write_rate(served: Project) -> None:
    one = finding(served, "risk.sqlite-writers")
    assert one.status == "pass"
    assert one.outcome.evidence[1] == f"hosts that started a server in the last day: {socket.gethostname()}"
    # The events of the last day, counted by minute as the check counts them.
    events = served.audit.events()
    busiest = max(sum(1 for e in events if e.ts.replace(second=0, microsecond=0) == m)
                  for m in {e.ts.replace(second=0, microsecond=0) for e in events})  # fmt: skip
    assert one.outcome.numbers["peak_per_second"] == pytest.approx(busiest / 60)
    strict = reopen(served, review={"thresholds": {"sqlite_writes_per_second": 0.001}})
    try:
        busy = finding(strict, "risk.sqlite-writers")
        assert busy.status == "fail" and "writes/s at peak" in busy.outcome.summary
    finally:
        strict.close()
        reopen(served, review=None).close()


def test_a_latency_critical_endpoint_needs_a_second_replica(served: Project) -> None:
    assert finding(served, "risk.single-replica").status == "n/a"  # nothing said latency-critical
    critical = reopen(served, review={"requirements": {"fraud": {"latency_critical": True}}})
    try:
        alone = finding(critical, "risk.single-replica")
        assert alone.status == "fail" and alone.outcome.numbers["servers"] == 1
        assert alone.outcome.refs[0] == "endpoint:fraud"
        # `mloop ui` serves no endpoint: it is not a replica.
        critical.servers.announce(Announcement("127.0.0.1", 8701, False, 1, True, socket.gethostname(), 1, "x",
                                               kind="ui"))  # fmt: skip
        assert finding(critical, "risk.single-replica").status == "fail"
        critical.servers.announce(Announcement("0.0.0.0", 8700, True, 4, False, "web2", 77, "x"))
        assert finding(critical, "risk.single-replica").status == "pass"
        # Now two hosts write the SQLite file: a network share under a single-writer database.
        shared = finding(critical, "risk.sqlite-writers")
        assert shared.status == "fail" and shared.outcome.summary.startswith("SQLite metadata under 2 hosts")
    finally:
        critical.close()
        reopen(served, review=None).close()


def test_nothing_deployed_has_no_log_rate(tmp_path: Path) -> None:
    project = fraud_project(tmp_path, deploy=False)
    try:
        assert finding(project, "risk.local-log-rate").status == "n/a"
        assert finding(project, "risk.single-replica").status == "n/a"
    finally:
        project.close()


T0 = datetime(2026, 3, 1, tzinfo=UTC)


@given(st.lists(st.tuples(st.integers(0, 3 * 3600 - 1), st.integers(1, 50)), max_size=60))
def test_the_peak_minute_is_the_busiest_whole_minute(offsets: list[tuple[int, int]]) -> None:
    counted = [(T0 + timedelta(seconds=s), n) for s, n in offsets]
    rate, minute = peak_per_second(counted)
    if not counted:
        assert (rate, minute) == (0.0, None)
        return
    by_minute = {m: sum(n for s, n in offsets if s // 60 == m) for m in {s // 60 for s, _ in offsets}}
    assert rate == max(by_minute.values()) / 60
    assert minute is not None and by_minute[int((minute - T0).total_seconds()) // 60] == max(
        by_minute.values()
    )

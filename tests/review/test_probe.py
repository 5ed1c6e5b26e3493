"""The probe against a real ``mloop serve`` on a free loopback port, and its refusal of other targets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import NotFound, PermissionDenied
from mloop.review.probe import ACTION, MAX_RPS, ProbeRefused, target
from mloop.security.actor import Actor
from mloop.security.roles import Grant
from tests.review.conftest import fraud_project
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import Server, mloop_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    """The fraud project (v2 live on ``fraud``) behind a real server, with a few real predictions logged."""
    project = fraud_project(tmp_path_factory.mktemp("probe"))
    with mloop_serve(Path(project.root)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for row in fraud_rows(project.root, 20):
                answer = client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
                assert answer.status_code == 200, answer.text
        yield project, server
    project.close()


def _probes(project: Project) -> list[int]:
    return [e.seq for e in project.audit.events(action=ACTION)]


def test_a_probe_sends_the_logged_rows_at_the_rate_asked_and_records_what_it_measured(
    served: tuple[Project, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, server = served
    monkeypatch.delenv("MLOOP_API_KEY", raising=False)
    result = project.reviews.probe("fraud", url=server.url, rps=40, seconds=1.5)
    assert result.sent == 60 and result.answered == 60 and result.errors == {}
    assert result.p50_ms is not None and result.p99_ms is not None and result.max_ms is not None
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert 25 < result.achieved_rps <= 40.5  # the schedule's rate at most; a loaded CI box answers late
    event = project.audit.event(result.event or 0)
    assert (event.action, event.resource) == (ACTION, "endpoint:fraud")
    assert event.payload["answered"] == 60 and event.payload["p99_ms"] == result.p99_ms
    assert event.payload["target_rps"] == 40 and event.payload["url"].startswith("http://127.0.0.1:")


def test_a_probe_counts_the_errors_by_status(served: tuple[Project, Server]) -> None:
    project, server = served
    result = project.reviews.probe("fraud", url=server.url, rps=20, seconds=0.5, rows=[{"no_such_input": 1}])
    assert result.sent == 10 and result.answered == 0 and result.p99_ms is None
    assert sum(result.errors.values()) == 10 and all(code.startswith("4") for code in result.errors)
    assert result.error_share == 1.0


def test_a_stopped_server_counts_as_connection_errors(served: tuple[Project, Server]) -> None:
    project, _ = served
    closed = f"http://127.0.0.1:{_closed_port()}"
    result = project.reviews.probe("fraud", url=closed, rps=10, seconds=0.3, timeout=2)
    assert result.errors == {"connection": 3} and result.answered == 0


@pytest.mark.parametrize(
    "url", ["http://10.0.0.7:8000", "https://example.com", "http://localhost.example.com:80", "http://[2001:db8::1]/",
            "http://192.168.1.5", "http://0.0.0.0:8000"],
)  # fmt: skip
def test_a_remote_target_is_refused_before_anything_is_sent(served: tuple[Project, Server], url: str) -> None:
    project, _ = served
    before = _probes(project)
    with pytest.raises(ProbeRefused, match="not this machine"):
        project.reviews.probe("fraud", url=url, rps=10, seconds=1)
    assert _probes(project) == before
    assert target(url, allow_remote=True).host  # the CLI passes allow_remote only for a --url the user typed


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8000", "http://"])
def test_a_target_that_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ProbeRefused, match="http"):
        target(url, allow_remote=True)


@given(st.ip_addresses())
@settings(max_examples=200, deadline=None)
def test_only_loopback_addresses_pass_without_allow_remote(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    if address.is_loopback:
        assert target(f"http://{host}:8000").host == str(address)
    else:
        with pytest.raises(ProbeRefused):
            target(f"http://{host}:8000")


def test_the_load_is_bounded(served: tuple[Project, Server]) -> None:
    project, server = served
    for rps, seconds in ((MAX_RPS + 1, 1), (10, 61), (0, 1), (10, 0)):
        with pytest.raises(ProbeRefused):
            project.reviews.probe("fraud", url=server.url, rps=rps, seconds=seconds)


def test_a_probe_needs_predict_on_the_endpoint_and_an_endpoint_that_exists(
    served: tuple[Project, Server],
) -> None:
    project, server = served
    auditor = project.as_actor(Actor("ann", "user", (Grant("auditor"),)))
    with pytest.raises(PermissionDenied):
        auditor.reviews.probe("fraud", url=server.url, rps=10, seconds=0.2)
    with pytest.raises(NotFound):
        project.reviews.probe("nope", url=server.url, rps=10, seconds=0.2)
    engineer = project.as_actor(Actor("eve", "user", (Grant("ml_engineer", "endpoint:fraud"),)))
    result = engineer.reviews.probe("fraud", url=server.url, rps=10, seconds=0.2)
    assert result.answered == 2 and project.audit.event(result.event or 0).actor == "eve"


def _closed_port() -> int:
    from tests.serving.http.running import free_port

    return free_port()  # bound then released: nothing listens there


def test_a_server_that_needs_a_key_gets_the_one_of_mloop_api_key(
    served: tuple[Project, Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = served
    project.users.add("prober", ["ml_engineer"])
    token = project.keys.issue("prober").token
    monkeypatch.setenv("MLOOP_LOCAL_ADMIN", "false")  # the server below inherits it: keys required
    monkeypatch.setenv("MLOOP_API_KEY", token)  # the server's own identity, then the probe's
    with mloop_serve(Path(project.root)) as strict:
        monkeypatch.delenv("MLOOP_API_KEY")
        anonymous = project.reviews.probe("fraud", url=strict.url, rps=10, seconds=0.3)
        assert anonymous.errors == {"401": 3} and anonymous.answered == 0
        # as the CLI opens the project for a user: the key in MLOOP_API_KEY is who acts and what is sent
        with Project.open(project.root, env={"MLOOP_API_KEY": token, "MLOOP_LOCAL_ADMIN": "false"}) as prober:
            keyed = prober.reviews.probe("fraud", url=strict.url, rps=10, seconds=0.3)
        assert keyed.answered == 3 and keyed.errors == {}


def test_mloop_review_probe_loads_the_named_server_then_reviews_the_requirements_with_it(
    served: tuple[Project, Server], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mloop.cli import _state
    from mloop.cli.main import main

    project, server = served
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MLOOP_API_KEY", raising=False)
    before = _probes(project)
    with pytest.raises(SystemExit) as exited:
        main(["-C", str(project.root), "review", "--probe", "fraud", "--url", server.url, "--rps", "20",
              "--seconds", "0.5", "--only", "requirements", "--format", "markdown"])  # fmt: skip
    _state.close()
    captured = capsys.readouterr()
    shown = captured.out
    assert exited.value.code in (0, None), (
        f"exit {exited.value.code}; stderr: {captured.err}\nstdout: {shown}"
    )
    assert f"Probe of fraud at {server.url}" in shown and "10 / 10 in 0.5 s" in shown
    assert len(_probes(project)) == len(before) + 1 and "requirements.throughput" in shown

"""The alert sink conformance suite: every sink kind in the table, built from its ``monitoring.sinks``
entry, delivers to a real receiver (a local HTTP server, or the log) and survives a dead one."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mloop.monitoring.alerts import SINKS, Alert, AlertSink, deliver, sinks_from_settings
from tests.monitoring.conftest import Receiver

START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
GROUPED_BY = ("key", "status", "severity", "summary", "labels")  # what a receiver routes and groups by
AM_LABELS = ("alertname", "severity", "endpoint", "mloop_key")


@dataclass
class Harness:
    """One sink kind wired to a live receiver and to a dead one, and what the live receiver got."""

    live: dict[str, Any]  # the monitoring.sinks entry of a sink whose receiver is up
    dead: dict[str, Any]  # ... and of one whose receiver is down
    delivered: Callable[[], list[dict[str, Any]]]  # the alerts received, as GROUPED_BY dicts


class FailingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise OSError("the log's disk is full")


def log_harness(receiver: Receiver, dead_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    live, dead = f"mloop.tests.sinks.{uuid.uuid4().hex}", f"mloop.tests.sinks.{uuid.uuid4().hex}"
    caplog.set_level(logging.INFO, logger=live)
    failing = FailingHandler()
    logging.getLogger(dead).addHandler(failing)
    try:
        yield Harness(
            {"kind": "log", "logger_name": live},
            {"kind": "log", "logger_name": dead},
            lambda: [_grouped(r.alert) for r in caplog.records if r.name == live],  # type: ignore[attr-defined]
        )
    finally:
        logging.getLogger(dead).removeHandler(failing)


def webhook_harness(receiver: Receiver, dead_url: str, caplog: pytest.LogCaptureFixture) -> Iterator[Harness]:
    yield Harness(
        {"kind": "webhook", "url": f"{receiver.url}/hook"},
        {"kind": "webhook", "url": dead_url, "retries": 0},
        lambda: [_grouped(a) for r in receiver.requests for a in r["json"]["alerts"]],
    )


def alertmanager_harness(
    receiver: Receiver, dead_url: str, caplog: pytest.LogCaptureFixture
) -> Iterator[Harness]:
    def delivered() -> list[dict[str, Any]]:
        entries = [entry for request in receiver.requests for entry in request["json"]]
        return [
            {"key": e["labels"]["mloop_key"], "status": "resolved" if "endsAt" in e else "firing",
             "severity": e["labels"]["severity"], "summary": e["annotations"]["summary"],
             "labels": {k: v for k, v in e["labels"].items() if k not in AM_LABELS}}
            for e in entries
        ]  # fmt: skip

    yield Harness(
        {"kind": "alertmanager", "url": receiver.url},
        {"kind": "alertmanager", "url": dead_url, "retries": 0},
        delivered,
    )


HARNESSES = {"log": log_harness, "webhook": webhook_harness, "alertmanager": alertmanager_harness}


@pytest.fixture(params=list(SINKS))
def harness(
    request: pytest.FixtureRequest, receiver: Receiver, closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> Iterator[Harness]:
    if request.param not in HARNESSES:
        pytest.fail(f"Sink kind {request.param!r} has no harness: add one to HARNESSES in {__name__}.")
    yield from HARNESSES[request.param](receiver, closed_port_url, caplog)


def build(spec: dict[str, Any]) -> AlertSink:
    [sink] = sinks_from_settings([spec])
    return sink


def _grouped(alert: dict[str, Any]) -> dict[str, Any]:
    return {name: alert[name] for name in GROUPED_BY}


def alerts() -> list[Alert]:
    firing = Alert(key="fraud/drift/amount", name="drift", severity="ticket", endpoint="fraud",
                   summary="amount drifted (PSI 0.31 > 0.2)", value=0.31, threshold=0.2,
                   labels={"column": "amount"}, started_at=START)  # fmt: skip
    page = Alert(key="fraud/slo/latency", name="slo_burn", severity="page", endpoint="fraud",
                 summary="p99 latency burns the budget 14x", started_at=START)  # fmt: skip
    return [firing, page.resolved(START + timedelta(minutes=5))]


def test_every_alert_of_a_batch_arrives_in_order_with_what_receivers_group_by(harness: Harness) -> None:
    sent = alerts()
    build(harness.live).send(sent)
    assert harness.delivered() == [_grouped(alert.to_dict()) for alert in sent]


def test_an_empty_batch_delivers_nothing(harness: Harness) -> None:
    build(harness.live).send([])
    assert harness.delivered() == []


def test_a_dead_receiver_is_reported_by_name_and_the_next_sink_still_delivers(harness: Harness) -> None:
    dead, live = build({**harness.dead, "name": "dead"}), build(harness.live)
    failures = deliver([dead, live], alerts())
    assert list(failures) == ["dead"] and failures["dead"]
    assert len(harness.delivered()) == 2


def test_a_sink_is_named_by_its_kind_unless_the_entry_names_it(harness: Harness) -> None:
    assert build(harness.live).name == harness.live["kind"]
    assert build({**harness.live, "name": "ops"}).name == "ops"

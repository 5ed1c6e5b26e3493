"""Alerts and sinks: the alert record, delivery to a real local HTTP receiver, retries, and settings."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import ConfigError, MalformedInput
from mloop.monitoring.alerts import SEVERITIES, Alert, deliver, no_longer_serving, sinks_from_settings
from mloop.monitoring.sinks import (
    AlertDeliveryError,
    AlertmanagerSink,
    LogSink,
    WebhookSink,
    payload_for_alertmanager,
)
from tests.monitoring.conftest import Receiver
from tests.monitoring.stream import START as STREAM_START
from tests.monitoring.stream import records, register, write

START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def make_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "key": "fraud/drift/amount",
        "name": "drift",
        "severity": "ticket",
        "endpoint": "fraud",
        "summary": "amount drifted (PSI 0.31 > 0.2)",
        "value": 0.31,
        "threshold": 0.2,
        "labels": {"column": "amount", "version": "3"},
        "started_at": START,
    }
    return Alert(**{**fields, **changes})


# The alert record


def test_an_unknown_severity_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(MalformedInput, match="'urgent'.*info, ticket, page"):
        make_alert(severity="urgent")
    assert [make_alert(severity=s).severity for s in SEVERITIES] == ["info", "ticket", "page"]


def test_an_alert_fires_until_a_resolved_copy_is_made() -> None:
    alert = make_alert()
    done = alert.resolved(START + timedelta(minutes=5))
    assert (alert.status, alert.resolved_at) == ("firing", None)
    assert done.status == "resolved" and done.resolved_at == START + timedelta(minutes=5)
    assert done.to_dict()["status"] == "resolved" and done.key == alert.key
    with pytest.raises(MalformedInput, match="before it started"):
        alert.resolved(START - timedelta(seconds=1))


def test_times_are_stored_in_utc_and_label_values_as_strings() -> None:
    naive = make_alert(started_at=datetime(2026, 12, 1, 9, 30), labels={"version": 3})
    assert naive.started_at == START and naive.started_at.tzinfo is not None
    assert naive.labels == {"version": "3"}


def test_non_finite_values_survive_strict_json() -> None:
    data = json.loads(json.dumps(make_alert(value=float("inf"), threshold=None).to_dict(), allow_nan=False))
    assert data["value"] == "inf"
    assert Alert.from_dict(data).value == float("inf")


def test_from_dict_names_what_is_missing() -> None:
    data = make_alert().to_dict()
    del data["started_at"]
    with pytest.raises(MalformedInput, match="lacks started_at"):
        Alert.from_dict(data)
    with pytest.raises(MalformedInput, match="ISO-8601"):
        Alert.from_dict({**make_alert().to_dict(), "started_at": "yesterday"})


texts = st.text(max_size=30)
numbers = st.none() | st.floats(allow_nan=False)


@settings(max_examples=60)
@given(
    key=texts, summary=texts, description=texts, value=numbers, threshold=numbers,
    labels=st.dictionaries(texts, texts, max_size=3),
    severity=st.sampled_from(SEVERITIES),
    started_at=st.datetimes(timezones=st.just(UTC)),
    resolved_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)  # fmt: skip
def test_to_dict_and_from_dict_round_trip_through_json(
    key: str, summary: str, description: str, value: float | None, threshold: float | None,
    labels: dict[str, str], severity: str, started_at: datetime, resolved_after: timedelta | None,
) -> None:  # fmt: skip
    resolved_at = None
    if resolved_after is not None and started_at + resolved_after <= datetime.max.replace(tzinfo=UTC):
        resolved_at = started_at + resolved_after
    alert = Alert(key=key, name="quality", severity=severity, endpoint="fraud", summary=summary,
                  description=description, value=value, threshold=threshold, labels=labels,
                  started_at=started_at, resolved_at=resolved_at)  # fmt: skip
    assert Alert.from_dict(json.loads(json.dumps(alert.to_dict(), allow_nan=False))) == alert


# An alert about a version ends when the version stops serving


@pytest.mark.parametrize(
    ("labels", "serving", "reason"),
    [
        ({"version": "1"}, {2}, "v1 no longer serves fraud"),
        ({"version": "1"}, set(), "v1 no longer serves fraud"),  # undeployed
        ({"version": "1"}, {1, 2}, ""),  # still one of the routes (a canary, an A/B test, a shadow)
        ({"version": "1"}, None, ""),  # never deployed: monitored whatever the version
        ({"objective": "latency"}, {2}, ""),  # about the endpoint, not a version (an SLO)
    ],
)
def test_no_longer_serving_names_the_version_and_the_endpoint(
    labels: dict[str, str], serving: set[int] | None, reason: str
) -> None:
    assert no_longer_serving(make_alert(labels=labels), serving) == reason


def test_the_resolution_survives_the_alert_record() -> None:
    done = make_alert().resolved(START + timedelta(minutes=1), "v3 no longer serves fraud")
    assert Alert.from_dict(json.loads(json.dumps(done.to_dict()))).resolution == "v3 no longer serves fraud"
    assert make_alert().resolved(START).resolution == ""


def test_a_drift_alert_of_a_version_that_stops_serving_resolves_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    monitoring = {"window": "1h", "sinks": [{"kind": "log"}], "endpoints": {"fraud": {}}}
    with Project.open(tmp_path / "p", env={}, monitoring=monitoring) as project:
        model = register(project)
        register(project, seed=1)  # v2
        project.deploy("fraud", "fraud", version=1)
        shifted, _ = records(model, [0, 1], 1500, seed=4, shift_from=STREAM_START + timedelta(hours=1))
        write(project, shifted, "a")
        end, lookback = STREAM_START + timedelta(hours=2), timedelta(hours=2)
        first = project.monitoring.update("fraud", now=end, lookback=lookback)
        project.deploy("fraud", "fraud", version=2)  # v1 promoted away; its drifted window is still recent
        second = project.monitoring.check("fraud", now=end + timedelta(minutes=1))
        third = project.monitoring.check("fraud", now=end + timedelta(minutes=2))
        project.deploy("fraud", "fraud", version=1)  # back: the drifted window fires again
        fourth = project.monitoring.check("fraud", now=end + timedelta(minutes=3))
        project.deployments.undeploy("fraud")
        fifth = project.monitoring.check("fraud", now=end + timedelta(minutes=4))
        incidents = project.monitoring.alerts("fraud")
    assert [a["key"] for a in first["alerts"]["opened"]] == ["fraud/drift/v1"]
    assert [(a["key"], a["resolution"]) for a in second["resolved"]] == [
        ("fraud/drift/v1", "v1 no longer serves fraud")
    ]
    assert second["firing"] == [] and third["opened"] == third["resolved"] == third["firing"] == []
    assert [a["key"] for a in fourth["opened"]] == ["fraud/drift/v1"]
    assert [a["resolution"] for a in fifth["resolved"]] == ["v1 no longer serves fraud"]
    assert [i["status"] for i in incidents] == ["resolved", "resolved"]


# Sinks


def test_webhook_posts_the_versioned_body_with_the_configured_headers(receiver: Receiver) -> None:
    alerts = [make_alert(), make_alert(key="fraud/slo/latency", name="slo_burn", severity="page")]
    WebhookSink(f"{receiver.url}/hook", headers={"Authorization": "Bearer s3cret"}).send(alerts)

    [request] = receiver.requests
    assert request["path"] == "/hook"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {"version": "1", "source": "mloop", "alerts": [a.to_dict() for a in alerts]}


def test_an_empty_batch_sends_nothing(receiver: Receiver) -> None:
    WebhookSink(receiver.url).send([])
    AlertmanagerSink(receiver.url).send([])
    assert receiver.requests == []


def test_alertmanager_gets_the_v2_payload(receiver: Receiver) -> None:
    firing = make_alert(labels={"column": "amount", "version": 3, "severity": "mine"})
    resolved = make_alert(key="fraud/slo/latency", name="slo_burn", value=None, threshold=None).resolved(
        START + timedelta(hours=1)
    )
    sink = AlertmanagerSink(receiver.url + "/", generator_url="http://mloop:8000/monitoring")
    sink.send([firing, resolved])

    [request] = receiver.requests
    assert request["path"] == "/api/v2/alerts"
    first, second = request["json"]
    assert first["labels"] == {"alertname": "drift", "severity": "ticket", "endpoint": "fraud",
                               "mloop_key": "fraud/drift/amount", "column": "amount", "version": "3"}  # fmt: skip
    assert first["annotations"] == {"summary": firing.summary, "description": "", "value": "0.31",
                                    "threshold": "0.2"}  # fmt: skip
    assert first["startsAt"] == "2026-12-01T09:30:00+00:00" and "endsAt" not in first
    assert first["generatorURL"] == "http://mloop:8000/monitoring"
    assert second["endsAt"] == "2026-12-01T10:30:00+00:00"
    assert "value" not in second["annotations"]
    for entry in request["json"]:
        assert all(isinstance(v, str) for v in [*entry["labels"].values(), *entry["annotations"].values()])


def test_payload_for_alertmanager_omits_generator_url_unless_given() -> None:
    assert "generatorURL" not in payload_for_alertmanager([make_alert()])[0]


def test_a_5xx_is_retried_until_it_succeeds(receiver: Receiver) -> None:
    receiver.fail_first = 1
    WebhookSink(receiver.url).send([make_alert()])
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["json"] == receiver.requests[1]["json"]


def test_a_5xx_that_persists_raises_after_the_retries(receiver: Receiver) -> None:
    receiver.fail_first = 10
    with pytest.raises(AlertDeliveryError, match="after 2 attempt.*HTTP 500") as caught:
        AlertmanagerSink(receiver.url, retries=1).send([make_alert()])
    assert len(receiver.requests) == 2 and caught.value.status == 500


def test_a_4xx_raises_at_once_with_the_status_and_the_start_of_the_body(receiver: Receiver) -> None:
    receiver.reject = True
    url = f"{receiver.url}/hook"
    with pytest.raises(AlertDeliveryError, match="HTTP 400") as caught:
        WebhookSink(url).send([make_alert()])
    message = str(caught.value)
    assert url in message and "monitoring.sinks" in message
    assert ("bad alert: " + "x" * 300)[:200] in message and "x" * 300 not in message
    assert (caught.value.url, caught.value.status) == (url, 400)
    assert len(receiver.requests) == 1


def test_log_sink_warns_for_firing_tickets_and_pages_and_informs_otherwise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page, info = make_alert(severity="page"), make_alert(severity="info")
    resolved = page.resolved(START + timedelta(minutes=1))
    with caplog.at_level(logging.INFO, logger="mloop.alerts"):
        LogSink().send([page, info, resolved])

    records = [r for r in caplog.records if r.name == "mloop.alerts"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO, logging.INFO]
    assert [r.alert for r in records] == [page.to_dict(), info.to_dict(), resolved.to_dict()]
    assert "fraud/drift/amount" in records[0].getMessage()


def test_deliver_reaches_the_live_sink_and_reports_the_dead_one(
    receiver: Receiver, closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = WebhookSink(closed_port_url, retries=1, name="dead")
    live = AlertmanagerSink(receiver.url)
    with caplog.at_level(logging.WARNING):
        failures = deliver([dead, live], [make_alert()])

    assert list(failures) == ["dead"] and "no answer" in failures["dead"]
    assert [r["path"] for r in receiver.requests] == ["/api/v2/alerts"]
    assert any("dead" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert deliver([live], [make_alert()]) == {}


# Settings


def test_sinks_from_settings_builds_each_kind_and_defaults_to_the_log() -> None:
    [default] = sinks_from_settings([])
    assert isinstance(default, LogSink)
    log, hook, am = sinks_from_settings([
        {"kind": "log"},
        {"kind": "webhook", "url": "https://hooks.example.com/x", "headers": {"X-Token": "t"}, "retries": 0},
        {"kind": "alertmanager", "url": "http://am:9093"},
    ])  # fmt: skip
    assert isinstance(log, LogSink) and isinstance(hook, WebhookSink) and isinstance(am, AlertmanagerSink)
    assert (hook.headers, hook.retries, am.url) == ({"X-Token": "t"}, 0, "http://am:9093")
    assert [s.name for s in (log, hook, am)] == ["log", "webhook", "alertmanager"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([{"kind": "log"}, {"kind": "slack"}], "Entry 1 of monitoring.sinks.*'slack'.*log, webhook, alertmanager"),
        ([{"url": "http://x"}], "Entry 0 .*kind None.*log, webhook, alertmanager"),
        ([{"kind": "webhook"}], "Entry 0 .*'webhook'.*needs `url:`"),
        ([{"kind": "alertmanager", "url": "am:9093"}], "url: 'am:9093'.*http:// or https://"),
        ([{"kind": "webhook", "url": "http://x", "header": {}}], "unknown key.*header;.*headers"),
        ([{"kind": "webhook", "url": "http://x", "retries": "two"}], "retries: 'two'.*whole number"),
        ([{"kind": "webhook", "url": "http://a"}, {"kind": "webhook", "url": "http://b"}],
         "Entries 0 and 1 .*both named 'webhook'.*distinct `name:`"),
        (["log"], "Entry 0 .*mapping with a `kind:`"),
    ],
)  # fmt: skip
def test_sinks_from_settings_says_which_entry_is_wrong_and_how(specs: list[Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sinks_from_settings(specs)


def test_two_sinks_of_one_kind_load_with_distinct_names() -> None:
    sinks = sinks_from_settings([{"kind": "webhook", "url": "http://a", "name": "ops"},
                                 {"kind": "webhook", "url": "http://b", "name": "data-team"}])  # fmt: skip
    assert [s.name for s in sinks] == ["ops", "data-team"]

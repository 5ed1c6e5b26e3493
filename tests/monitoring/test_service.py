"""project.monitoring over a real prediction log: windows of drift and performance stored in the
metadata store, late labels, SLOs from the log, and alerts de-duplicated, sent and logged as events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mloop import Project
from mloop.errors import PermissionDenied
from tests.monitoring.conftest import Receiver
from tests.monitoring.stream import START, bulk, failures, label, records, register, write


def _open(root: Path, hook_url: str | None = None, **endpoint: Any) -> Project:
    sinks = [{"kind": "webhook", "url": hook_url}] if hook_url else [{"kind": "log"}]
    return Project.open(
        root, env={}, monitoring={"window": "1h", "sinks": sinks, "endpoints": {"fraud": endpoint}}
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "p").mkdir()
    return tmp_path / "p"


def test_an_injected_shift_is_flagged_in_the_first_full_window_after_it(root: Path) -> None:
    with _open(root) as project:
        model = register(project)
        # hours 0-7 at 1,500 rows each, hour 2 empty; x1 shifts by one standard deviation at 4:30
        recs, _ = records(model, [0, 1, 3, 4, 5, 6, 7], 1500, seed=1, shift_from=START + timedelta(hours=4.5))
        write(project, recs, "a")
        found = project.monitoring.drift("fraud", since=START, until=START + timedelta(hours=8))
    by_hour = {(int((_t(e["start"]) - START).total_seconds()) // 3600): e for e in found}
    assert len(by_hour) == 8
    assert by_hour[2]["empty"] and by_hour[2]["rows"] == 0 and "cannot be decided" in by_hour[2]["note"]
    for hour in (0, 1, 3):
        assert by_hour[hour]["drifted"] == [], (hour, by_hour[hour]["drifted"])
    assert "x1" in by_hour[5]["drifted"]  # the first full window after the shift
    assert all("x1" in by_hour[h]["drifted"] for h in (6, 7))
    assert not {"x2", "channel"} & set(by_hour[5]["drifted"])
    methods = {c["column"]: c["method"] for c in by_hour[5]["columns"]}
    assert methods == {"x1": "psi", "x2": "psi", "channel": "jensen_shannon", "__prediction__": "psi"}


@pytest.mark.slow
def test_an_unshifted_stream_of_large_windows_is_not_flagged(root: Path) -> None:
    with _open(root) as project:
        bulk(
            project, register(project), 240_000, 4, seed=9
        )  # 60,000 predictions an hour: KS would flag noise
        update = project.monitoring.update(
            "fraud", now=START + timedelta(hours=4), lookback=timedelta(hours=4)
        )
    assert [w["rows"] for w in update["drift"]] == [60_000] * 4
    assert all(w["drifted"] == [] and not w["empty"] for w in update["drift"])
    assert {c["method"] for w in update["drift"] for c in w["columns"]} == {"psi", "jensen_shannon"}
    assert update["alerts"]["opened"] == [] and update["alerts"]["firing"] == []


def test_results_are_stored_and_late_labels_update_performance(root: Path) -> None:
    with _open(root, performance={"slices": ["channel"], "min_labels": 50}) as project:
        model = register(project)
        recs, truth = records(model, [0, 1, 2], 800, seed=2)
        write(project, recs, "a")
        end = START + timedelta(hours=3)
        first = project.monitoring.update("fraud", now=end, lookback=timedelta(hours=3))
        assert [p["labelled"] for p in first["performance"]] == [0, 0, 0]
        assert all(p["realised"] is None and p["estimated"]["roc_auc"] > 0.7 for p in first["performance"])
        ids = list(truth)[:1600]  # the first two hours get labels, later
        got = label(project, {rid: bool(truth[rid]) for rid in ids} | {"no-such-request": True})
        assert got["accepted"] == 1600 and got["unknown"] == ["no-such-request"]
        again = project.monitoring.update("fraud", now=end, lookback=timedelta(hours=3))
        assert again["drift"] == []  # its windows were stored already
        perf = project.monitoring.history("fraud", "performance", since=START, until=end)
        drift = project.monitoring.history("fraud", "drift", since=START, until=end)
    assert [p["labelled"] for p in perf] == [800, 800, 0] and len(drift) == 3
    for window in perf[:2]:
        realised, estimated = window["realised"], window["estimated"]
        assert window["coverage"] == 1.0 and realised["roc_auc"] > 0.8
        assert abs(realised["roc_auc"] - estimated["roc_auc"]) < 0.05
        assert set(window["slices"]["channel"]) == {"web", "app", "pos"}
    assert perf[2]["note"].startswith("0 labelled")


def test_labels_of_the_wrong_type_are_counted_and_left_out(root: Path) -> None:
    with _open(root, performance={"min_labels": 10}) as project:
        model = register(project)
        recs, truth = records(model, [0], 200, seed=3)
        write(project, recs, "a")
        ids = list(truth)
        label(project, {rid: truth[rid] for rid in ids[:150]} | {rid: "fraud" for rid in ids[150:160]})
        (window,) = project.monitoring.performance("fraud", since=START, until=START + timedelta(hours=1))
    assert window["labelled"] == 150 and window["invalid_labels"] == 10
    assert "'fraud'" in window["problems"][0] and "true/false or 0/1" in window["problems"][0]


def test_a_drift_alert_is_one_incident_sent_once_logged_and_resolved(root: Path, receiver: Receiver) -> None:
    url = receiver.url + "/hook"
    with _open(root, url) as project:
        model = register(project)
        recs, _ = records(model, [0, 1], 1500, seed=4, shift_from=START + timedelta(hours=1))
        write(project, recs, "a")
        end = START + timedelta(hours=2)
        first = project.monitoring.update("fraud", now=end, lookback=timedelta(hours=2))
        second = project.monitoring.update(
            "fraud", now=end + timedelta(minutes=5), lookback=timedelta(hours=2)
        )
        assert [a["key"] for a in first["alerts"]["opened"]] == ["fraud/drift/v1"]
        assert second["alerts"]["opened"] == [] and [a["key"] for a in second["alerts"]["firing"]] == [
            "fraud/drift/v1"
        ]
        received = [r["json"] for r in receiver.requests]
        assert len(received) == 1 and received[0]["alerts"][0]["labels"]["columns"].startswith("x1")
        calm, _ = records(model, [2], 1500, seed=5)  # the next hour is back to normal
        write(project, calm, "b")
        third = project.monitoring.update("fraud", now=end + timedelta(hours=1), lookback=timedelta(hours=3))
        assert [a["key"] for a in third["alerts"]["resolved"]] == ["fraud/drift/v1"]
        events = [e.action for e in project.audit.events(action="monitoring.*")]
        incidents = project.monitoring.alerts("fraud")
    assert events == ["monitoring.alert", "monitoring.resolve"]
    received = [r["json"] for r in receiver.requests]
    assert len(received) == 2 and received[1]["alerts"][0]["status"] == "resolved"
    assert len(incidents) == 1 and incidents[0]["status"] == "resolved"


def test_an_outage_pages_through_the_availability_slo(root: Path) -> None:
    slos = [
        {"kind": "availability", "target": 0.999},
        {"kind": "latency", "target": 0.99, "threshold_ms": 50},
    ]
    with _open(root, slos=slos) as project:
        model = register(project)
        recs, _ = records(model, range(6), 600, seed=6)
        write(project, recs, "a")
        write(project, failures(START + timedelta(hours=5, minutes=30), 20, 10), "b")
        now = START + timedelta(hours=5, minutes=50)
        status = {s["name"]: s for s in project.monitoring.slo("fraud", now=now)}
        checked = project.monitoring.check("fraud", now=now)
    availability = status["availability"]
    assert availability["bad"] == 200 and availability["remaining"] < 0
    assert {a["severity"] for a in availability["alerts"]} == {"page"}
    assert status["latency"]["alerts"] == [] and status["latency"]["sli"] == 1.0
    assert [(a["key"], a["severity"]) for a in checked["opened"]] == [("fraud/slo/availability", "page")]


def test_a_performance_minimum_alerts_on_the_estimate_before_labels(root: Path) -> None:
    with _open(root, performance={"metrics": {"roc_auc": 0.99}}) as project:
        model = register(project)
        recs, _ = records(model, [0], 500, seed=7)
        write(project, recs, "a")
        out = project.monitoring.update("fraud", now=START + timedelta(hours=1), lookback=timedelta(hours=1))
    (alert,) = [a for a in out["alerts"]["opened"] if a["name"] != "drift"]
    assert alert["name"] == "estimated_performance" and alert["threshold"] == 0.99
    assert "estimated roc_auc" in alert["summary"]


def _t(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_the_report_spans_the_data_not_the_range_asked_for(root: Path) -> None:
    """Three hours of traffic, a report of the week before and after: the windows are the three hours."""
    with _open(root) as project:
        model = register(project)
        recs, _ = records(model, [0, 1, 2], 300, seed=3)
        write(project, recs, "a")
        report = project.monitoring.report("fraud", since=START - timedelta(days=7))
        wide = project.monitoring.report("fraud", since=START - timedelta(days=7), window="5m")
    assert (report["since"], report["until"]) == (START.isoformat(), (START + timedelta(hours=3)).isoformat())
    assert [e["start"] for e in report["drift"]] == [
        (START + timedelta(hours=h)).isoformat() for h in range(3)
    ]
    assert report["window"] == "1h" and report["note"] == ""
    assert wide["window"] == "5m" and len(wide["drift"]) == 36


def test_an_unknown_endpoint_is_not_found_and_names_the_known_ones(root: Path) -> None:
    from mloop.errors import NotFound

    with _open(root) as project:
        recs, _ = records(register(project), [0], 10, seed=3)
        write(project, recs, "a")
        for read in (project.monitoring.drift, project.monitoring.performance, project.monitoring.report,
                     project.monitoring.slo, project.monitoring.alerts):  # fmt: skip
            with pytest.raises(NotFound, match="No endpoint 'fruad'.*known: fraud"):
                read("fruad")


def test_a_user_scoped_to_the_endpoint_reads_its_monitoring_without_reading_the_model(root: Path) -> None:
    """The versions an endpoint served are part of its monitoring: ``ml_engineer@endpoint:fraud`` reads
    drift and performance of windows with predictions in them, and still may not read the model itself."""
    with _open(root) as project:
        recs, _ = records(register(project), [0, 1], 300, seed=4)
        write(project, recs, "a")
        scoped = project.as_actor(project.users.add("dana", ["ml_engineer@endpoint:fraud"]).actor())
        until = START + timedelta(hours=2)
        drift = scoped.monitoring.drift("fraud", since=START, until=until)
        performance = scoped.monitoring.performance("fraud", since=START, until=until)
        assert [w["rows"] for w in drift] == [300, 300] and [w["rows"] for w in performance] == [300, 300]
        with pytest.raises(PermissionDenied, match="models.read"):
            scoped.models.get("fraud", 1)

"""The Monitoring page on a monitored endpoint of its own (tests/monitoring/stream.py): predictions in
the log with x1 shifted for two spells, labels for most of them and a sensitive column, so the page has
drift that comes and goes, two incidents of one alert, live performance with its estimate and fairness
gaps; every number on it is the monitoring service's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.monitoring.report_charts import score
from mloop.ui import create_ui_app
from tests.browser import chromium
from tests.monitoring.stream import START, label, records, register, write
from tests.ui.conftest import login

SINCE = START.strftime("%Y-%m-%dT%H:%M:%SZ")  # no "+" to encode in a URL
SHIFTS = {1: True, 2: True, 3: False, 4: True}  # hour -> x1 shifted; hour 0 is calm


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    settings = {"window": "1h", "sinks": [{"kind": "log"}],
                "endpoints": {"fraud": {"performance": {"sensitive": ["channel"], "min_labels": 50}}}}  # fmt: skip
    with Project.open(tmp_path_factory.mktemp("uimonitoring"), env={}, monitoring=settings) as opened:
        model = register(opened)
        truth: dict[str, Any] = {}
        for hour in range(5):
            shifted = START + timedelta(hours=hour) if SHIFTS.get(hour) else None
            recs, labels = records(model, [hour], 600, seed=hour, shift_from=shifted, shift=1.5)
            write(opened, recs, f"h{hour}")
            truth |= labels
            if hour:  # each hour's alerts are checked when it is over: opened, resolved, opened again
                opened.monitoring.update(
                    "fraud", now=START + timedelta(hours=hour + 1), lookback=timedelta(hours=2)
                )
        label(opened, dict(list(truth.items())[:2400]))  # the first four hours labelled
        # the page shows stored windows: the loop's next update stores the performance the labels give
        opened.monitoring.update("fraud", now=START + timedelta(hours=5), lookback=timedelta(hours=5))
        opened.deploy("fraud", "fraud", version=1)
        opened.users.add("other-endpoint", ["mlops@endpoint:other"])
        opened.users.add(
            "fraud-only", ["mlops@endpoint:fraud", "mlops@model:fraud"]
        )  # the report reads the model
        yield opened


@pytest.fixture(scope="module")
def page(project: Project) -> str:
    with TestClient(create_ui_app(project)) as client:
        answer = client.get(f"/ui/monitoring?since={SINCE}")
    assert answer.status_code == 200, re.findall(r"role=\"alert\">(.*?)<", answer.text, re.S)
    return answer.text


@pytest.fixture(scope="module")
def report(project: Project) -> dict[str, Any]:
    return project.monitoring.report("fraud", since=SINCE, stored=True)


def test_the_stored_report_the_page_shows_equals_a_fresh_computation(project: Project,
                                                                     report: dict[str, Any]) -> None:  # fmt: skip
    fresh = project.monitoring.report("fraud", since=SINCE)
    complete = [e for e in fresh["drift"] if e["end"] <= report["until"] and not e.get("empty")]
    stored = [e for e in report["drift"] if not e.get("empty")]
    key = lambda e: (e["start"], e["version"])  # noqa: E731
    assert sorted(map(key, stored)) == sorted(map(key, complete)) and stored
    for mine, theirs in zip(sorted(stored, key=key), sorted(complete, key=key), strict=True):
        assert mine["drifted"] == theirs["drifted"] and mine["rows"] == theirs["rows"]
    assert report["predictions"] == fresh["predictions"]  # the summaries give the same distribution


def _json(html: str, element: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert found, f"no {element}"
    return json.loads(found.group(1))


def _green(colour: str) -> bool:
    """Green (below the threshold) rather than orange to red: more green than red in the colour."""
    return int(colour[3:5], 16) > int(colour[1:3], 16)


def test_the_drift_heatmap_holds_the_reports_scores_per_column_and_window(
    page: str, report: dict[str, Any]
) -> None:
    assert "mloop monitor report fraud" in page and '<option value="fraud" selected>' in page
    table = page.split('<table class="heatmap">')[1].split("</table>")[0]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S))
    assert set(rows) == {"x1", "x2", "channel", "(model output)"}
    x1 = re.findall(
        r'<td class="num" title="([^"]*)"(?: style="background:(#[0-9a-f]{6})")?>(.*?)</td>', rows["x1"]
    )
    expected = [next(c for c in w["columns"] if c["column"] == "x1") for w in report["drift"]]
    assert len(x1) == len(expected) == 5
    for (title, colour, text), cell in zip(x1, expected, strict=True):
        value = score(cell)
        assert re.sub("<[^>]+>", "", text) == (
            "≥3" if value >= 3 else f"{value:.2f}"
        ) and f"drift score {value:.3g}" in unescape(title)
        assert ("<strong>" in text) == bool(cell["drifted"]) and _green(colour) == (value < 1)
    drifted = [bool(c["drifted"]) for c in expected]
    assert drifted == [False, True, True, False, True]  # the calm hours 0 and 3 are not flagged
    assert f"{sum(drifted)} of 5 windows drifted" in page


def test_predictions_and_performance_are_drawn_from_the_report(page: str, report: dict[str, Any]) -> None:
    assert '<script src="/ui/static/uPlot.iife.min.js"></script>' in page and "https://" not in page
    (dist,) = report["predictions"]
    drawn = _json(page, "data-predictions-1")
    assert (drawn["reference"], drawn["current"]) == (dist["reference"], dist["current"])
    assert len(drawn["bins"]) == len(dist["edges"]) - 1
    perf = _json(page, "data-performance-1")
    assert perf["span"] == 3600  # a window's width: what a version with one window is drawn around
    series = {s["label"]: s["values"] for s in perf["series"]}
    windows = report["performance"]
    assert series["roc_auc (realised)"] == [(w["realised"] or {}).get("roc_auc") for w in windows]
    assert series["roc_auc (estimated)"] == [w["estimated"]["roc_auc"] for w in windows]
    assert series["roc_auc (realised)"][-1] is None and all(v > 0.7 for v in series["roc_auc (realised)"][:4])
    assert perf["x"] == [int(t) for t in perf["x"]] and len(perf["x"]) == 5


def test_fairness_gaps_of_the_sensitive_column_are_shown(page: str, report: dict[str, Any]) -> None:
    newest = [w for w in report["performance"] if w.get("fairness")][-1]
    gaps = newest["fairness"]["channel"]
    row = re.search(r'<th scope="row">channel</th>(.*?)</tr>', page.split('id="fairness"')[1], re.S)
    assert row, "no fairness row for channel"
    assert f"{gaps['demographic_parity_difference']:.3g}" in row.group(1)
    assert all(f"{group}: " in row.group(1) for group in ("web", "app", "pos"))


def test_alerts_list_their_incidents_newest_first_in_pages(project: Project) -> None:
    incidents = project.monitoring.alerts("fraud")
    assert [a["status"] for a in incidents] == ["firing", "resolved"]  # drift came back after a calm hour
    with TestClient(create_ui_app(project)) as client:
        first = client.get(f"/ui/monitoring?endpoint=fraud&since={SINCE}&apage=1&aper=1")
        second = client.get(f"/ui/monitoring?endpoint=fraud&since={SINCE}&apage=2&aper=1")
        assert client.get("/ui/monitoring?endpoint=nope").status_code == 404
        assert client.get("/ui/monitoring?endpoint=fraud&since=yesterday").status_code == 400
    alerts_of = lambda html: html.split('id="alerts"')[1]  # noqa: E731
    assert "firing" in alerts_of(first.text) and "resolved" not in alerts_of(first.text)
    assert 'rel="next"' in alerts_of(first.text) and incidents[0]["summary"] in unescape(
        alerts_of(first.text)
    )
    assert "resolved" in alerts_of(second.text) and 'rel="next"' not in alerts_of(second.text)
    assert f"<h3>{incidents[0]['name']}</h3>" in first.text


def test_a_user_sees_the_endpoints_of_their_scope_only(project: Project) -> None:
    with Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor) as served:
        client = TestClient(create_ui_app(served), follow_redirects=False)
        login(client, served.keys.issue("other-endpoint").token)
        refused = client.get(f"/ui/monitoring?endpoint=fraud&since={SINCE}")
        login(client, served.keys.issue("fraud-only").token)
        allowed = client.get(f"/ui/monitoring?endpoint=fraud&since={SINCE}")
    assert refused.status_code == 403 and "heatmap" not in refused.text
    assert allowed.status_code == 200, re.findall(r"role=\"alert\">(.*?)<", allowed.text, re.S)
    assert 'class="heatmap"' in allowed.text


def test_the_charts_draw_in_a_real_browser(project: Project, tmp_path: Path) -> None:
    """Chromium (tests/browser.py) loads the page, every request answered by the app in-process: both
    uPlot charts draw, with no script error and no request to another host."""
    errors: list[str] = []
    with TestClient(create_ui_app(project)) as client, chromium() as browser:

        def answer(route: Any) -> None:
            url = urlsplit(route.request.url)
            if url.hostname != "mloop.test":
                errors.append(f"request to another host: {route.request.url}")
                route.abort()
                return
            got = client.get(url.path + (f"?{url.query}" if url.query else ""))
            route.fulfill(status=got.status_code, body=got.content, content_type=got.headers["content-type"])

        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.route("**/*", answer)
        page.goto(f"http://mloop.test/ui/monitoring?since={SINCE}")
        page.wait_for_selector("#plot-performance-1 .uplot canvas", timeout=10_000)
        drawn = {i: len(page.query_selector_all(f"#{i} .uplot canvas")) for i in
                 ("plot-predictions-1", "plot-performance-1")}  # fmt: skip
        legend = page.inner_text("#plot-performance-1 .u-legend")
        page.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)
    assert errors == [] and drawn == {"plot-predictions-1": 1, "plot-performance-1": 1}
    assert "roc_auc (realised)" in legend and "roc_auc (estimated)" in legend


def test_mloop_ui_reads_the_log_summaries_ahead_of_the_first_view(project: Project) -> None:
    from mloop.predictions import summary
    from mloop.ui.app import warm

    summary._MEMO.items.clear()
    thread = warm(project)
    thread.join(120)
    assert not thread.is_alive()
    read = {key[0] for key in summary._MEMO.items}
    assert "histogram" in read  # the distribution's (this endpoint has no SLO: no minute counts to read)

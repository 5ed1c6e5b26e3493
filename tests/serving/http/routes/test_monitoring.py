"""``/v1/monitoring``: drift, performance, SLOs, alerts and the report of a served endpoint over HTTP,
computed from the predictions and labels that went through the same server."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.errors import PermissionDenied
from mloop.serving.http.app import create_app
from tests.serving.conftest import Served


def _predict_and_label(served: Served, count: int) -> None:
    for i in range(count):
        answer = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(i)]}).json()
        served.client.post("/v1/feedback", json={"request_id": answer["request_id"], "label": i % 7 == 0})
    served.client.app.state.feedback.log.flush()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_open_window_shows_the_served_traffic_with_its_labels(served: Served) -> None:
    _predict_and_label(served, 60)
    drift = served.client.get("/v1/monitoring/fraud/drift", params={"since": "1m", "partial": "true"})
    assert drift.status_code == 200, drift.text
    newest = drift.json()[-1]
    assert newest["version"] == 1 and newest["rows"] >= 60
    signature = served.project.models.load("fraud", version=1).signature
    assert {c.name for c in signature.inputs} | {"__prediction__"} == {c["column"] for c in newest["columns"]}
    perf = served.client.get("/v1/monitoring/fraud/performance", params={"since": "1m", "partial": "true"})
    window = perf.json()[-1]
    assert window["labelled"] >= 60 and window["task"] == "binary" and window["estimated"] is not None
    assert served.client.get("/v1/monitoring/fraud/slo").json() == []
    assert served.client.get("/v1/monitoring/fraud/alerts", params={"open": "true"}).json() == []


def test_the_report_is_html_or_json(served: Served) -> None:
    _predict_and_label(served, 5)
    page = served.client.get("/v1/monitoring/fraud/report", params={"since": "1h"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="plot-drift' in page.text and "<script src" not in page.text
    data = served.client.get("/v1/monitoring/fraud/report", params={"since": "1h", "format": "json"}).json()
    assert data["endpoint"] == "fraud" and data["drift"]


def test_a_bad_since_is_a_4xx_that_says_what_to_write(served: Served) -> None:
    for since in ("yesterday", "99999999999999w", "2000000d"):
        response = served.client.get("/v1/monitoring/fraud/drift", params={"since": since})
        assert 400 <= response.status_code < 500, (since, response.text)
        assert "duration" in response.text or "shorter" in response.text


def test_an_unknown_endpoint_is_a_404_that_names_the_known_ones(served: Served) -> None:
    for path in ("drift", "performance", "slo", "alerts", "report"):
        response = served.client.get(f"/v1/monitoring/fruad/{path}")
        assert response.status_code == 404, (path, response.text)
        assert "No endpoint 'fruad'" in response.text and "fraud" in response.text


def test_the_report_takes_a_window(served: Served) -> None:
    _predict_and_label(served, 5)
    data = served.client.get("/v1/monitoring/fraud/report", params={"window": "1m", "format": "json"})
    assert data.status_code == 200, data.text
    assert data.json()["window"] == "1m" and data.json()["drift"]


def test_any_role_reads_monitoring_and_a_read_stores_nothing(served: Served) -> None:
    """Issue 17: monitoring GETs needed monitoring.write (a 403 after the work) and every read stored its
    windows. A read needs monitoring.read, which every role has, and writes nothing; storing is
    `monitor check`'s and the controller's, with monitoring.write checked before the work."""
    _predict_and_label(served, 20)
    time.sleep(1.1)  # the 1 s windows of those predictions are complete: a read that stored would store them
    project = served.project
    name = f"watcher-{uuid.uuid4().hex[:8]}"
    project.users.add(name, ["auditor"])
    token = project.keys.issue(name).token
    stored = len(project.monitoring.history("fraud", "drift", since="7d"))
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor)
    with strict, TestClient(create_app(strict), raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {token}"}
        for path in ("drift", "performance", "report"):
            response = client.get(f"/v1/monitoring/fraud/{path}", params={"since": "1h", "window": "1s"},
                                  headers=auth)  # fmt: skip
            assert response.status_code == 200, (path, response.text)
        missing = client.get("/v1/monitoring/nope/drift", headers=auth)
        assert missing.status_code == 404 and "No endpoint 'nope'" in missing.text
    assert len(project.monitoring.history("fraud", "drift", since="7d")) == stored
    auditor = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false", "MLOOP_API_KEY": token})
    with auditor, pytest.raises(PermissionDenied, match="monitoring.write"):
        auditor.monitoring.update("fraud")
    assert len(project.monitoring.history("fraud", "drift", since="7d")) == stored

"""The v1 prediction API: online features looked up and merged, the signature checked, the traffic
policy followed, changes picked up without a failed request."""

from __future__ import annotations

import collections
import json
import threading
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.serving.http.app import create_app
from tests.serving.conftest import Served


@pytest.mark.slow
def test_one_entity_is_scored_with_its_online_features(served: Served) -> None:
    row = served.row(3)
    response = served.client.post(
        "/v1/endpoints/fraud/predict",
        json={"entities": {"customer_id": row["customer_id"]}, "features": {"amount": row["amount"]}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "fraud" and body["version"] == 1 and len(body["request_id"]) == 32
    model = served.project.models.load("fraud", version=1)
    refs = model.info.lineage["features"]
    online = served.project.features.online([row], refs)
    assert any(v is not None for k, v in online.items() if k != "customer_id" for v in v)  # fresh values
    inputs = pd.DataFrame({c.name: online.get(c.name, [row.get(c.name)]) for c in model.signature.inputs})
    assert body["predictions"] == pytest.approx(model.predict(inputs).tolist())


def test_a_batch_of_rows_is_one_lookup_and_one_answer_per_row(served: Served) -> None:
    rows = [served.row(i) for i in range(25)]
    body = served.client.post("/v1/endpoints/fraud/predict", json={"rows": rows}).json()
    assert len(body["predictions"]) == 25
    assert all(0.0 <= p <= 1.0 for p in body["predictions"])
    single = [
        served.client.post("/v1/endpoints/fraud/predict", json={"rows": [r]}).json()["predictions"][0]
        for r in rows[:5]
    ]
    assert single == pytest.approx(body["predictions"][:5])


def test_request_values_take_precedence_over_looked_up_ones(served: Served) -> None:
    row = served.row(1)
    a = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [{**row, "distance_km": 0.0}]})
    b = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [{**row, "distance_km": 9000.0}]})
    assert a.status_code == b.status_code == 200
    assert a.json()["predictions"] != b.json()["predictions"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"rows": [{"amount": 3.0}]}, 422, "customer_id"),
        ({"rows": [{"customer_id": 1, "amount": "lots"}]}, 422, "amount"),
        ({"rows": []}, 422, "rows"),
        ({"rows": [{"customer_id": 1, "amount": {"a": 1}}]}, 422, "nested"),
        ({"entities": {"customer_id": 1}, "rows": [{}]}, 422, "not both"),
        ({}, 422, "give rows"),
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "version": 9}, 400, "does not serve version 9"),
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_field(
    served: Served, body: dict, status: int, needle: str
) -> None:
    response = served.client.post("/v1/endpoints/fraud/predict", json=body)
    assert response.status_code == status, response.text
    assert needle in response.text
    assert "Traceback" not in response.text


def test_a_type_mismatch_lists_each_field(served: Served) -> None:
    response = served.client.post(
        "/v1/endpoints/fraud/predict",
        json={"rows": [{"customer_id": 1, "amount": "x", "distance_km": "far"}]},
    )
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["problems"]] == ["distance_km"]
    # A request field of an on-demand view is checked against its declared type before the view runs.
    response = served.client.post(
        "/v1/endpoints/fraud/predict", json={"rows": [{"customer_id": 1, "amount": "x"}]}
    )
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["problems"]] == ["amount"]


def test_malformed_json_non_finite_numbers_and_unknown_endpoints(served: Served) -> None:
    raw = served.client.post(
        "/v1/endpoints/fraud/predict", content=b'{"rows": [', headers={"content-type": "application/json"}
    )
    assert raw.status_code == 422
    nan = served.client.post(
        "/v1/endpoints/fraud/predict",
        content=b'{"rows": [{"customer_id": 1, "amount": NaN}]}',
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422 and "finite" in nan.text
    missing = served.client.post("/v1/endpoints/nope/predict", json={"rows": [served.row()]})
    assert missing.status_code == 404 and "fraud" in missing.json()["message"]


@pytest.mark.slow
def test_a_canary_sends_its_share_and_sticky_keys_stay_put(served: Served) -> None:
    served.project.deploy("fraud", "fraud", version=2, canary=0.3)
    served.refresh()
    rows = [served.row(i) for i in range(200)]
    seen = collections.Counter(
        served.client.post("/v1/endpoints/fraud/predict", json={"rows": [r]}).json()["version"] for r in rows
    )
    assert set(seen) == {1, 2} and 0.15 < seen[2] / 200 < 0.45

    served.project.deploy("fraud", "fraud", ab={"v1": 0.5, "v2": 0.5}, sticky_key="customer_id")
    served.refresh()
    for row in rows[:20]:
        versions = {
            served.client.post("/v1/endpoints/fraud/predict", json={"rows": [row]}).json()["version"]
            for _ in range(5)
        }
        assert len(versions) == 1


@pytest.mark.slow
def test_a_canary_split_holds_within_3_points_over_10k_requests(served: Served) -> None:
    served.project.deploy("fraud", "fraud", version=2, canary=0.1)
    served.refresh()
    inference = served.client.app.state.inference  # type: ignore[attr-defined]
    looked_up = inference.predict(served.project, "fraud", [served.row(3)]).inputs
    row = {"customer_id": 7, **{name: values[0] for name, values in looked_up.items()}}  # no lookup: fast
    seen = collections.Counter(
        inference.predict(served.project, "fraud", [row]).version for _ in range(10_000)
    )
    assert abs(seen[2] / 10_000 - 0.1) <= 0.03, seen
    served.project.deploy("fraud", "fraud", ab={"v1": 0.7, "v2": 0.3}, sticky_key="customer_id")
    served.refresh()
    sticky = collections.Counter(
        inference.predict(served.project, "fraud", [{**row, "customer_id": i}]).version for i in range(10_000)
    )
    assert abs(sticky[2] / 10_000 - 0.3) <= 0.03, sticky


def test_a_shadow_sees_the_traffic_and_never_answers(served: Served) -> None:
    served.project.deploy("fraud", "fraud", version=1, shadow=2)
    served.refresh()
    inference = served.client.app.state.inference  # type: ignore[attr-defined]
    answers = [served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(i)]}).json()
               for i in range(20)]  # fmt: skip
    assert {a["version"] for a in answers} == {1}
    inference.drain()
    shadowed = {r["request_id"]: r for r in inference.shadow_results if r["version"] == 2}
    assert {a["request_id"] for a in answers} <= set(shadowed)
    assert all("predictions" in shadowed[a["request_id"]] for a in answers)
    logged = served.client.app.state.prediction_log.read("fraud")  # type: ignore[attr-defined]
    shadow_rows = logged[logged.status == "shadow"]
    assert {a["request_id"] for a in answers} <= set(shadow_rows.request_id)
    assert set(shadow_rows.version) == {2}
    answered = logged[logged.request_id.isin({a["request_id"] for a in answers}) & (logged.status == "ok")]
    assert set(answered.version) == {1} and len(answered) == len(answers)


@pytest.mark.slow
def test_a_redeploy_under_load_fails_no_request(served: Served) -> None:
    statuses: list[int] = []
    versions: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            r = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(7)]})
            statuses.append(r.status_code)
            if r.status_code == 200:
                versions.append(r.json()["version"])

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 10
    while not versions and time.monotonic() < deadline:  # the load is running
        time.sleep(0.01)
    served.project.deploy("fraud", "fraud", version=2)
    deadline = time.monotonic() + 10
    while (not versions or versions[-1] != 2) and time.monotonic() < deadline:  # the server polls itself
        time.sleep(0.05)
    served.project.rollback("fraud")
    deadline = time.monotonic() + 10
    while versions[-1] != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join()
    assert statuses and set(statuses) == {200}
    assert 2 in versions and versions[-1] == 1


def test_a_version_that_does_not_load_leaves_the_endpoint_as_it_was(served: Served) -> None:
    table = served.client.app.state.endpoints  # type: ignore[attr-defined]
    real = table._load

    def broken(project, name, version, runtime):  # type: ignore[no-untyped-def]
        if version == 2:
            raise OSError("artifact store unreachable")
        return real(project, name, version, runtime)

    table._load = broken
    try:
        assert set(table.endpoints()["fraud"].predictors) == {1}
        served.project.deploy("fraud", "fraud", version=2)
        table.refresh()
        body = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row()]}).json()
        assert body["version"] == 1
        ready = served.client.get("/v2/health/ready")
        assert ready.status_code == 503 and "artifact store unreachable" in ready.text
    finally:
        table._load = real
    table.refresh()
    assert (
        served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row()]}).json()["version"]
        == 2
    )
    assert served.client.get("/v2/health/ready").status_code == 200


def test_predicting_needs_the_predict_permission(served: Served) -> None:
    project = served.project
    project.users.add("pos-terminal", ["auditor"])
    project.users.add("gateway", ["mlops@endpoint:fraud"])
    reader = project.keys.issue("pos-terminal").token
    writer = project.keys.issue("gateway").token
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor)
    with strict, TestClient(create_app(strict), raise_server_exceptions=False) as client:
        body = {"rows": [served.row()]}
        assert client.post("/v1/endpoints/fraud/predict", json=body).status_code == 401
        denied = client.post("/v1/endpoints/fraud/predict", json=body,
                             headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
        assert denied.status_code == 403 and "predict" in denied.text
        allowed = client.post("/v1/endpoints/fraud/predict", json=body,
                              headers={"Authorization": f"Bearer {writer}"})  # fmt: skip
        assert allowed.status_code == 200, allowed.text


def test_metrics_count_requests_per_endpoint_version_and_status(served: Served) -> None:
    served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row()]})
    served.client.post("/v1/endpoints/fraud/predict", json={"rows": [{"amount": 1.0}]})
    text = served.client.get("/metrics").text
    assert 'mloop_predict_requests_total{endpoint="fraud",status="ok",version="1"}' in text
    assert 'mloop_predict_requests_total{endpoint="fraud",status="rejected",version="1"}' in text
    assert "mloop_feature_lookup_latency_seconds_bucket" in text


def test_at_looks_the_features_up_as_of_that_time(served: Served) -> None:
    from datetime import UTC, datetime, timedelta

    row = served.row(3)
    model = served.project.models.load("fraud", version=1)
    refs = model.info.lineage["features"]
    later = datetime.now(UTC) + timedelta(days=60)  # beyond every view's TTL: the looked-up values are gone
    replay = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [row], "at": later.isoformat()})
    assert replay.status_code == 200, replay.text
    expected = served.project.features.online([row], refs, at=later)
    frame = pd.DataFrame({k: v for k, v in expected.items() if k in {c.name for c in model.signature.inputs}})
    assert replay.json()["predictions"] == pytest.approx(
        list(model.predict(frame.assign(**row)[frame.columns]))
    )
    now = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [row]}).json()
    assert now["predictions"] != replay.json()["predictions"]
    naive = served.client.post(
        "/v1/endpoints/fraud/predict", json={"rows": [row], "at": "2026-01-01T00:00:00"}
    )
    assert naive.status_code == 422 and "timezone" in naive.text.lower()


def test_a_page_of_another_origin_cannot_drive_predict_without_a_key(served: Served) -> None:
    """Issue 17, item 7: /predict (its own fast path) read a text/plain body from any web page as JSON,
    so a page could drive a developer's local server. Now the rule of every other route holds there."""
    body = json.dumps({"rows": [served.row(0)]}).encode()

    def post(content_type: str | None, **headers: str) -> int:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if content_type is not None:
            sent["content-type"] = content_type
        return served.client.post("/v1/endpoints/fraud/predict", content=body, headers=sent).status_code

    assert post("text/plain", origin="https://evil.example") == 403
    assert post(None, sec_fetch_site="cross-site") == 403
    assert post("text/plain", origin="http://testserver") == 200  # the server's own page
    assert post(None) == 200  # a client that sends no content type and no origin (tritonclient, scripts)
    assert post("application/json", origin="https://evil.example") == 200  # the browser asked CORS first


def test_a_join_key_of_the_wrong_type_is_a_422_naming_it(served: Served) -> None:
    """Issue 17, item 6: {"customer_id": "abc"} was answered 200, as a customer with no features."""
    bodies = [{"entities": {"customer_id": "abc"}, "features": {"amount": 1.0}},
              {"rows": [served.row(0), {"customer_id": "abc", "amount": 1.0}]}]  # fmt: skip
    for body in bodies:
        response = served.client.post("/v1/endpoints/fraud/predict", json=body)
        assert response.status_code == 422, response.text
        assert (
            "Join key 'customer_id' must be an integer (int64), got string 'abc'"
            in response.json()["message"]
        )
    for value in (2**63, True, 1.5):
        response = served.client.post(
            "/v1/endpoints/fraud/predict", json={"rows": [{**served.row(0), "customer_id": value}]}
        )
        assert response.status_code == 422 and "customer_id" in response.text, response.text
    assert (
        served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(0)]}).status_code == 200
    )


def test_a_prediction_whose_log_line_the_disk_refuses_is_a_503_naming_the_disk(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = served.client.app.state.prediction_log  # type: ignore[attr-defined]
    body = {"rows": [served.row(0)]}
    with monkeypatch.context() as patched:  # the disk refuses every line, as a full one does
        patched.setattr(log, "_append", lambda line: OSError(28, "No space left on device"))
        refused = served.client.post("/v1/endpoints/fraud/predict", json=body)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "DiskFull"
    assert "no space left on" in refused.json()["message"] and "(data_url)" in refused.json()["message"]
    answered = served.client.post("/v1/endpoints/fraud/predict", json=body)  # room again: answered
    assert answered.status_code == 200
    assert log.find([answered.json()["request_id"]])

"""The feature server routes of ``mloop serve``: online reads, push, auth, errors, metrics."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mloop as ml
from mloop import Project
from mloop.serving.http.app import create_app
from tests.features.fixtures import T0, at, customer, transactions, views, write


@pytest.fixture
def client(sqlite_project: Project, tmp_path: Path) -> TestClient:
    path = write(transactions(), tmp_path / "txns.parquet")
    last, stats = views(path)
    clicks = ml.PushSource("clicks", schema=[ml.Field("customer_id", "int64"), ml.Field("ts", "timestamp"),
                                             ml.Field("page", "string")])  # fmt: skip
    sqlite_project.apply([last, stats, ml.FeatureView("customer_clicks", entities=[customer], source=clicks,
                                                      features=[ml.Field("page", "string")])])  # fmt: skip
    sqlite_project.features.materialize(T0 - timedelta(days=1), at)
    return TestClient(create_app(sqlite_project), raise_server_exceptions=False)


def test_online_answers_columns_in_the_order_asked(client: TestClient) -> None:
    response = client.post("/v1/features/online", json={"features": ["customer_stats:amount_count_24h"],
                                                        "entities": {"customer_id": [1, 2, 404]}})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()["features"]
    assert list(body) == ["customer_id", "amount_count_24h"]
    assert body["customer_id"] == [1, 2, 404] and len(body["amount_count_24h"]) == 3


def test_push_then_read(client: TestClient) -> None:
    now = pd.Timestamp.now(tz="UTC").isoformat()
    pushed = client.post("/v1/features/push", json={"push_source": "clicks",
                                                    "rows": [{"customer_id": 5, "ts": now, "page": "home"}]})  # fmt: skip
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["views"] == ["customer_clicks"]
    read = client.post(
        "/v1/features/online",
        json={"features": ["customer_clicks:page"], "entity_rows": [{"customer_id": 5}]},
    )
    assert read.json()["features"]["page"] == ["home"]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"features": ["nope:x"], "entities": {"customer_id": [1]}}, 422, "Unknown feature view"),
        ({"features": ["customer_stats:*"], "entities": {"client": [1]}}, 422, "customer_id"),
        ({"features": [], "entities": {"customer_id": [1]}}, 422, "features"),
        ({"features": ["customer_stats:*"]}, 422, "either entities"),
        ({"features": ["customer_stats:*"], "entities": {"customer_id": [1]}, "extra": 1}, 422, "extra"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(client: TestClient, body: dict, status: int, text: str) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/features/online", json=body)
    assert response.status_code == status
    assert text in response.text
    assert "Traceback" not in response.text


def test_malformed_json_is_422_not_500(client: TestClient) -> None:
    response = client.post(
        "/v1/features/online", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_api_keys_are_required_when_local_admin_is_off(sqlite_project: Project) -> None:
    sqlite_project.users.add("reader", ["auditor"])
    token = sqlite_project.keys.issue("reader").token
    strict = Project.open(sqlite_project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=sqlite_project.actor)
    try:
        strict_client = TestClient(create_app(strict))
        assert strict_client.get("/v2/health/live").status_code == 200
        anonymous = strict_client.post(
            "/v1/features/online", json={"features": ["x:y"], "entities": {"a": [1]}}
        )
        assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["message"]
        bad = strict_client.post("/v1/features/online", json={"features": ["x:y"], "entities": {"a": [1]}},
                                 headers={"Authorization": "Bearer mlk_000000000000_nope-nope-nope-nope-nope"})  # fmt: skip
        assert bad.status_code == 401
        ok = strict_client.post("/v1/features/online", json={"features": ["x:y"], "entities": {"a": [1]}},
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert ok.status_code == 422  # authenticated; the feature does not exist
        denied = strict_client.post("/v1/features/push", json={"push_source": "clicks", "rows": [{"a": 1}]},
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert denied.status_code == 403 and "features.push" in denied.json()["message"]
    finally:
        strict.close()


def test_metrics_export_freshness(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "mloop_feature_view_materialization_lag_seconds" in text
    assert 'view="customer_stats"' in text


def test_a_revoked_key_or_role_stops_working_within_the_cache_time(sqlite_project: Project) -> None:
    """Issue 17, item 3: a revoked key kept working ~5 s through the worker's cache. The bound is
    half a second (docs/security.md); past it the next request is refused."""
    sqlite_project.users.add("revoked-soon", ["data_engineer"])
    issued = sqlite_project.keys.issue("revoked-soon")
    strict = Project.open(sqlite_project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=sqlite_project.actor)
    body = {"features": ["x:y"], "entities": {"a": [1]}}
    headers = {"Authorization": f"Bearer {issued.token}"}
    with strict, TestClient(create_app(strict)) as client:
        assert client.post("/v1/features/online", json=body, headers=headers).status_code == 422  # admitted
        sqlite_project.users.revoke_role("revoked-soon", "data_engineer")
        time.sleep(0.55)  # the documented bound: half a second
        assert client.post("/v1/features/online", json=body, headers=headers).status_code == 403
        sqlite_project.keys.revoke(issued.key_id)
        time.sleep(0.55)  # the documented bound: half a second
        assert client.post("/v1/features/online", json=body, headers=headers).status_code == 401


@pytest.mark.parametrize(("local_admin", "metrics_auth", "needs_key"),
                         [("true", None, False), ("false", None, True), ("false", "false", False),
                          ("true", "true", True)])  # fmt: skip
def test_metrics_needs_a_key_when_the_server_does(
    sqlite_project: Project, local_admin: str, metrics_auth: str | None, needs_key: bool
) -> None:
    """Issue 17, item 12: /metrics named every endpoint, model and feature view to anyone. It follows
    local_admin unless serving.metrics_auth says otherwise; a key needs monitoring.read (every role)."""
    name = f"scraper-{local_admin}-{metrics_auth}"
    sqlite_project.users.add(name, ["auditor"])
    sqlite_project.users.add(f"{name}-blank")
    good = {"Authorization": f"Bearer {sqlite_project.keys.issue(name).token}"}
    blank = {"Authorization": f"Bearer {sqlite_project.keys.issue(f'{name}-blank').token}"}
    serving = {} if metrics_auth is None else {"metrics_auth": metrics_auth == "true"}
    opened = Project.open(sqlite_project.root, env={"MLOOP_LOCAL_ADMIN": local_admin},
                          actor=sqlite_project.actor, serving=serving)  # fmt: skip
    assert opened.settings.serving.metrics_auth == (None if metrics_auth is None else metrics_auth == "true")
    with opened, TestClient(create_app(opened)) as client:
        anonymous = client.get("/metrics")
        assert anonymous.status_code == (401 if needs_key else 200), anonymous.text
        assert client.get("/metrics", headers=good).status_code == 200
        assert client.get("/metrics", headers=blank).status_code == (403 if needs_key else 200)

"""``POST /v1/endpoints/{name}/counterfactual`` end to end: a LightGBM fraud-like model served with two of
its inputs looked up online, counterfactuals that ``/predict`` itself confirms, and the bad inputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mloop as ml
from mloop import Project
from mloop.serving.http.app import create_app
from tests.explain import fraudlike

URL = "/v1/endpoints/fraud/counterfactual"
CUSTOMERS = 40


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Endpoint ``fraud`` (counterfactuals declared) and ``plain`` (none) serve a model whose distance_km,
    country and device come from the online store by customer_id; amount and hour come with the request."""
    root = tmp_path_factory.mktemp("counterfactual")
    project = Project.open(root, env={}, serving={"max_queue_ms": None},
                           explain={"counterfactuals": {"fraud": fraudlike.SETTINGS}})  # fmt: skip
    x, _ = fraudlike.frame()
    now = datetime.now(UTC).replace(microsecond=0)
    profiles = x.head(CUSTOMERS)[["distance_km", "country", "device"]].astype({"country": str, "device": str})
    profiles.insert(0, "customer_id", np.arange(CUSTOMERS, dtype="int64"))
    profiles["ts"] = pd.Timestamp(now - timedelta(hours=1)).as_unit("us")
    profiles.to_parquet(root / "profiles.parquet", index=False)
    customer = ml.Entity("customer", join_keys=["customer_id"])
    view = ml.FeatureView("customer_profile", entities=[customer], ttl="30d",
                          source=ml.ParquetSource(str(root / "profiles.parquet"), timestamp="ts"),
                          features=[ml.Field("distance_km", "float64"), ml.Field("country", "string"),
                                    ml.Field("device", "string")])  # fmt: skip
    project.apply([view])
    project.features.materialize(now - timedelta(days=1), now)
    project.models.register("fraud", fraudlike.model(), input_example=x.head(50),
                            lineage={"features": ["customer_profile:*"]})  # fmt: skip
    project.deploy("fraud", "fraud", version=1)
    project.deploy("plain", "fraud", version=1)
    with TestClient(create_app(project), raise_server_exceptions=False) as test_client:
        test_client.project = project  # type: ignore[attr-defined]
        yield test_client
    project.close()


def blocked(client: TestClient) -> dict[str, Any]:
    """A request (customer plus amount and hour) that the endpoint blocks."""
    for customer in range(CUSTOMERS):
        for hour in (2, 14):
            body = {"entities": {"customer_id": customer}, "features": {"amount": 900.0, "hour": hour}}
            if client.post("/v1/endpoints/fraud/predict", json=body).json()["predictions"][0] > 0.5:
                return body
    raise AssertionError("no blocked payment in the fixture")


def test_counterfactuals_are_confirmed_by_predict_and_respect_the_constraints(client: TestClient) -> None:
    body = blocked(client)
    before = client.post("/v1/endpoints/fraud/predict", json=body).json()["predictions"][0]
    response = client.post(URL, json={**body, "k": 3})
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["endpoint"], found["model"], found["version"]) == ("fraud", "fraud", 1)
    assert found["prediction"] == pytest.approx(before) and (found["threshold"], found["want"]) == (
        0.5,
        "below",
    )
    assert "country" not in found["actionable"] and found["counterfactuals"], found.get("reason")
    declared = fraudlike.SETTINGS["features"]
    for answer in found["counterfactuals"]:
        changed = {name: change["to"] for name, change in answer["changes"].items()}
        assert changed and set(changed) <= set(found["actionable"]) and answer["distance"] > 0
        for name, value in changed.items():
            if name == "device":
                assert value in fraudlike.DEVICES
            else:
                assert declared[name]["min"] <= value <= declared[name]["max"]
        if "amount" in changed:
            assert changed["amount"] < body["features"]["amount"]
            assert float(changed["amount"]).is_integer()  # step 1 from 900.0
        if "hour" in changed:
            assert isinstance(changed["hour"], int)
        again = client.post("/v1/endpoints/fraud/predict", json={
            "entities": body["entities"], "features": {**body["features"], **changed}}).json()  # fmt: skip
        assert again["predictions"][0] < 0.5
        assert again["predictions"][0] == pytest.approx(answer["prediction"])
    sets = [frozenset(a["changes"]) for a in found["counterfactuals"]]
    assert len(set(sets)) == len(sets)
    after = client.post("/v1/endpoints/fraud/predict", json=body).json()["predictions"][0]
    assert after == before  # asking what would change it changes nothing


def test_no_counterfactual_within_the_constraints_is_a_200_with_the_reason(client: TestClient) -> None:
    body = blocked(client)
    hour = body["features"]["hour"]
    narrowed = {"amount": {"immutable": True}, "distance_km": {"immutable": True}, "device": {"immutable": True},
                "hour": {"min": hour, "max": hour + 0.5}}  # fmt: skip
    response = client.post(URL, json={**body, "constraints": narrowed})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["counterfactuals"] == [] and "No change within the constraints" in found["reason"]
    assert found["actionable"] == ["hour"] and "hour" in found["reason"]


@pytest.mark.parametrize(
    ("extra", "field", "needle"),
    [
        ({"constraints": {"balance": {"min": 0}}}, "balance", "not an input of the model"),
        ({"constraints": {"country": {"min": 0}}}, "country", "is immutable"),
        ({"constraints": {"amount": {"direction": "up"}}}, "amount", "contradicts"),
        ({"constraints": {"hour": {"min": 20, "max": 3}}}, "constraints.hour", "above max"),
    ],
)
def test_contradictory_or_unknown_constraints_are_422_naming_the_feature(
    client: TestClient, extra: dict[str, Any], field: str, needle: str
) -> None:
    body = {"entities": {"customer_id": 1}, "features": {"amount": 900.0, "hour": 2}, **extra}
    response = client.post(URL, json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert problems[0]["field"] == field and needle in problems[0]["message"]


def test_more_than_one_row_is_413_with_the_limit(client: TestClient) -> None:
    rows = [{"customer_id": 1, "amount": 900.0, "hour": 2}] * 2
    response = client.post(URL, json={"rows": rows})
    assert response.status_code == 413 and "explains 1 row, got 2" in response.json()["message"]


def test_an_endpoint_without_declared_constraints_says_how_to_declare_them(client: TestClient) -> None:
    body = {"entities": {"customer_id": 1}, "features": {"amount": 900.0, "hour": 2}}
    response = client.post("/v1/endpoints/plain/counterfactual", json=body)
    assert response.status_code == 422 and "counterfactuals:\n    plain:" in response.json()["message"]
    assert client.post("/v1/endpoints/nope/counterfactual", json=body).status_code == 404


def test_loaded_model_counterfactuals_agree_with_its_predict(client: TestClient) -> None:
    loaded = client.project.models.load("fraud", version=1)  # type: ignore[attr-defined]
    row = fraudlike.risky_rows(fraudlike.model(), 1)[0]
    found = loaded.counterfactuals(
        row, fraudlike.SETTINGS["features"], {"threshold": 0.5, "want": "below"}, k=2
    )
    assert found.answers
    assert all(loaded.predict([a.row])[0] < 0.5 for a in found.answers)


def test_the_endpoint_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "422" in paths[URL.replace("fraud", "{name}")]["post"]["responses"]


@pytest.mark.parametrize(
    "body",
    [b'{"rows": [{"customer_id": 1e999}]}', b'{"rows": [{"customer_id": NaN}]}', b'{"entities": {"customer_id": []}}',
     b'{"rows": [{}]}', b'{"rows": [{"customer_id": 1, "amount": "a lot", "hour": 2}]}', b'{"rows": []}',
     b'{"entities": {"customer_id": 1}, "features": {"amount": 900.0}, "k": 0}'],
)  # fmt: skip
def test_hostile_bodies_are_4xx(client: TestClient, body: bytes) -> None:
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text

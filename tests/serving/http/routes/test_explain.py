"""``POST /v1/endpoints/{name}/explain``: the issue's answer, the same numbers as Python's explain, top-k,
and the errors a caller can get; an explanation never changes what /predict answers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsRegressor

from mloop.serving.predictor import Predictor
from tests.serving.explained import Explained, explained_fixture  # noqa: F401  (the shared project)

EXPLAIN, PREDICT = "/v1/endpoints/fraud/explain", "/v1/endpoints/fraud/predict"


@pytest.fixture(scope="module")
def client(explained: Explained) -> Iterator[TestClient]:
    with explained.client() as client:
        yield client


def test_the_answer_has_the_issue_shape_and_adds_up_to_the_served_prediction(
    explained: Explained,
    client: TestClient,
) -> None:
    rows = [explained.row(i) for i in (3, 4)]
    before = client.post(PREDICT, json={"rows": rows}).json()["predictions"]
    response = client.post(EXPLAIN, json={"rows": rows})
    after = client.post(PREDICT, json={"rows": rows}).json()["predictions"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"explanations", "output", "method", "model", "version"}
    assert (body["output"], body["method"], body["model"], body["version"]) == (
        "log_odds",
        "tree_shap",
        "fraud",
        1,
    )
    assert before == after  # explaining changed nothing predict answers
    for entry, served in zip(body["explanations"], before, strict=True):
        assert entry["prediction"] == pytest.approx(served, abs=1e-12)
        total = entry["base_value"] + sum(entry["attributions"].values())
        assert total == pytest.approx(math.log(served / (1 - served)), abs=1e-6)  # additivity, in log-odds
        assert entry["value"] == pytest.approx(total, abs=1e-9)


def test_http_and_python_explain_agree_on_the_same_row(explained: Explained, client: TestClient) -> None:
    row = explained.row(7)
    body = client.post(EXPLAIN, json={"entities": {"customer_id": row["customer_id"]},
                                      "features": {"amount": row["amount"]}}).json()  # fmt: skip
    project = explained.project
    inputs = Predictor.load(project, "fraud", 1).model_inputs(project, [row])
    offline = project.models.load("fraud", version=1).explain(pd.DataFrame(inputs))
    (entry,) = body["explanations"]
    assert entry["base_value"] == pytest.approx(float(offline["base_value"].iloc[0]), abs=1e-9)
    expected = offline.drop(columns="base_value").iloc[0].to_dict()
    assert entry["attributions"] == pytest.approx(expected, abs=1e-9)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, 12), i=st.integers(0, 150))
def test_top_k_keeps_the_k_largest_attributions(
    explained: Explained, client: TestClient, k: int, i: int
) -> None:
    row = explained.row(i)
    full = client.post(EXPLAIN, json={"rows": [row]}).json()["explanations"][0]
    top = client.post(EXPLAIN, json={"rows": [row], "top_k": k}).json()["explanations"][0]
    assert len(top["attributions"]) == min(k, len(full["attributions"]))
    ranked = sorted(full["attributions"].items(), key=lambda kv: -abs(kv[1]))
    smallest_kept = min(abs(v) for v in top["attributions"].values())
    assert all(abs(v) <= smallest_kept for _, v in ranked[len(top["attributions"]) :])
    assert top["base_value"] == full["base_value"] and top["value"] == full["value"]  # the sum is all of them


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"rows": [{"customer_id": 1, "amount": "lots"}]}, 422, "amount"),  # a feature of the wrong type
        ({"rows": [{"amount": 3.0}]}, 422, "customer_id"),  # the join key missing
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "version": 9}, 400, "does not serve version 9"),
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "colour": "red"}, 422, "colour"),
    ],
)
def test_bad_rows_are_refused_as_predict_refuses_them(
    client: TestClient, body: dict, status: int, needle: str
) -> None:
    explained_answer = client.post(EXPLAIN, json=body)
    assert explained_answer.status_code == status == client.post(PREDICT, json=body).status_code
    assert needle in explained_answer.text and "Traceback" not in explained_answer.text


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"rows": [{"customer_id": 1, "amount": 1.0}] * 101}, 413, "at most 100 rows"),
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "top_k": 0}, 422, "top_k"),
        ({"rows": [{"customer_id": 1, "amount": 1.0}], "budget": 0}, 422, "budget"),
    ],
)
def test_explain_limits(client: TestClient, body: dict, status: int, needle: str) -> None:
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == status, response.text
    assert needle in response.text


def test_an_unknown_endpoint_is_404(client: TestClient) -> None:
    assert client.post("/v1/endpoints/nope/explain", json={"rows": [{"a": 1}]}).status_code == 404


def test_a_model_no_method_explains_without_a_budget_is_a_422_that_says_so(explained: Explained) -> None:
    project = explained.project
    frame = pd.DataFrame({"a": np.arange(40, dtype=float), "b": np.arange(40, dtype=float) % 7})
    project.models.register(
        "knn", KNeighborsRegressor(3).fit(frame, frame["a"] * 2), input_example=frame.head(5)
    )
    project.deploy("knn", "knn", version=1)
    try:
        with explained.client() as client:
            response = client.post("/v1/endpoints/knn/explain", json={"rows": [{"a": 1.0, "b": 2.0}]})
            assert (
                client.post("/v1/endpoints/knn/predict", json={"rows": [{"a": 1.0, "b": 2.0}]}).status_code
                == 200
            )
    finally:
        project.deployments.undeploy("knn")
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "ExplainError" and "explain" in body["message"].lower()


def test_explaining_needs_predict_on_the_endpoint(explained: Explained, client: TestClient) -> None:
    project = explained.project
    project.users.add("explain_auditor", ["auditor"])
    auditor = project.keys.issue("explain_auditor").token
    project.users.add("explain_engineer", ["ml_engineer@endpoint:fraud"])
    engineer = project.keys.issue("explain_engineer").token
    body = {"rows": [explained.row(2)]}
    refused = client.post(EXPLAIN, json=body, headers={"authorization": f"Bearer {auditor}"})
    assert refused.status_code == 403, refused.text
    allowed = client.post(EXPLAIN, json=body, headers={"authorization": f"Bearer {engineer}"})
    assert allowed.status_code == 200, allowed.text

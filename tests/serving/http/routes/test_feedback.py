"""``POST /v1/feedback`` over HTTP: labels for logged predictions reach the labelled join."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.predictions import predictions_folder, read_feedback
from mloop.serving.http.app import create_app
from tests.services import free_port
from tests.serving.conftest import Served


@pytest.mark.slow
def test_predict_then_feedback_over_http_shows_in_labelled(served: Served) -> None:
    rows = [served.row(i) for i in range(3)]
    predicted = served.client.post("/v1/endpoints/fraud/predict", json={"rows": rows}).json()
    rid = predicted["request_id"]
    one = served.client.post("/v1/feedback", json={"request_id": rid, "label": True})
    assert one.status_code == 200 and one.json() == {"accepted": 1, "unknown": []}
    many = served.client.post("/v1/feedback", json={"items": [{"request_id": rid, "label": False, "row": 2},
                                                              {"request_id": "f" * 32, "label": 1}]})  # fmt: skip
    assert many.status_code == 200 and many.json() == {"accepted": 1, "unknown": ["f" * 32]}
    joined = served.client.app.state.feedback.labelled("fraud")  # type: ignore[attr-defined]
    mine = joined[joined.request_id == rid].sort_values("row")
    assert mine["row"].tolist() == [0, 2] and mine["label"].tolist() == [True, False]
    assert mine["prediction"].tolist() == pytest.approx(
        [predicted["predictions"][0], predicted["predictions"][2]]
    )
    signature = served.project.models.load("fraud", version=1).signature
    assert {c.name for c in signature.inputs} <= set(mine.columns)  # the inputs after feature lookup
    assert mine["amount_ratio"].notna().all()  # computed from a looked-up feature and the request's amount
    assert set(mine["version"]) == {1} and set(mine["model"]) == {"fraud"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"request_id": "r", "label": NaN}', "finite"),
        ('{"request_id": "r", "label": {"a": 1}}', "an object"),
        ('{"request_id": "r", "label": [1]}', "a list"),
        ('{"request_id": "r", "label": null}', "null"),
        ('{"request_id": "r"}', "give request_id and label"),
        ('{"request_id": "r", "label": 1, "items": [{"request_id": "r", "label": 1}]}', "not both"),
        (
            '{"items": [{"request_id": "r", "label": 1}, {"request_id": "r", "label": Infinity}]}',
            "items.1.label",
        ),
        ('{"items": []}', "items"),
        ('{"request_id": "r", "label": 1, "row": -1}', "row"),
    ],
)
def test_bad_feedback_is_a_422_that_names_the_item(served: Served, body: str, needle: str) -> None:
    response = served.client.post("/v1/feedback", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert needle in response.text and "Traceback" not in response.text


def test_feedback_needs_predict_on_the_request_endpoint(served: Served) -> None:
    project = served.project
    rid = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(0)]}).json()[
        "request_id"
    ]
    project.users.add("fb-reader", ["auditor"])
    project.users.add("fb-scorer", ["mlops@endpoint:fraud"])
    reader, scorer = project.keys.issue("fb-reader").token, project.keys.issue("fb-scorer").token
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor)
    try:
        with TestClient(create_app(strict), raise_server_exceptions=False) as client:
            body = {"request_id": rid, "label": 1}
            assert client.post("/v1/feedback", json=body).status_code == 401
            denied = client.post("/v1/feedback", json=body, headers={"Authorization": f"Bearer {reader}"})
            assert denied.status_code == 403 and "may not predict on any endpoint" in denied.json()["message"]
            ok = client.post("/v1/feedback", json=body, headers={"Authorization": f"Bearer {scorer}"})
            assert ok.status_code == 200 and ok.json()["accepted"] == 1
    finally:
        strict.close()
    labels = read_feedback(predictions_folder(project.settings))
    assert (
        json.dumps(labels[labels.request_id == rid]["label"].tolist()) == "[1]"
    )  # one label: the allowed one


def test_feedback_tells_nothing_about_requests_the_caller_may_not_see(served: Served) -> None:
    """Issue 17, item 5: any user learned whether a request id existed (403 for a real one, "unknown" for
    another) and its row count. Now a caller without predict anywhere is refused before the lookup, and a
    request of an endpoint the caller may not predict on is "unknown", like one never logged."""
    project = served.project
    rid = served.client.post("/v1/endpoints/fraud/predict", json={"rows": [served.row(0)]}).json()[
        "request_id"
    ]
    project.users.add("fb-nobody", ["auditor"])
    project.users.add("fb-elsewhere", ["mlops@endpoint:recs"])
    nobody, elsewhere = project.keys.issue("fb-nobody").token, project.keys.issue("fb-elsewhere").token
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor)
    with strict, TestClient(create_app(strict), raise_server_exceptions=False) as client:

        def post(token: str, body: dict[str, object]) -> tuple[int, str]:
            response = client.post("/v1/feedback", json=body, headers={"Authorization": f"Bearer {token}"})
            return response.status_code, response.text

        real, fake = (
            post(nobody, {"request_id": rid, "label": 1}),
            post(nobody, {"request_id": "f" * 32, "label": 1}),
        )
        assert real == fake and real[0] == 403  # the same answer, existing or not
        status, text = post(
            elsewhere, {"request_id": rid, "label": 1, "row": 5}
        )  # row 5 of a one-row request
        assert status == 200 and json.loads(text) == {"accepted": 0, "unknown": [rid]}
        assert "row" not in text
    labels = read_feedback(predictions_folder(project.settings))
    assert labels[labels.request_id == rid].empty


def test_serving_answers_while_s3_is_down_and_keeps_the_log_for_later(
    trained: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: the data store on S3 is down
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }.items():
        monkeypatch.setenv(name, value)
    spool = tmp_path / "spool"
    trained.deploy("fraud", "fraud", version=1)
    rows = pd.read_parquet(Path(trained.root) / "txns.parquet").head(5)
    down = Project.open(trained.root, env={}, data_url="s3://mloop-data/p", prediction_spool=str(spool),
                        serving={"max_queue_ms": None})  # fmt: skip
    with down, TestClient(create_app(down), raise_server_exceptions=False) as client:
        ids = []
        for row in rows.itertuples():
            body = {"rows": [{"customer_id": int(row.customer_id), "amount": float(row.amount)}]}
            answer = client.post("/v1/endpoints/fraud/predict", json=body)
            assert answer.status_code == 200, answer.text  # from memory: the model and the online store
            ids.append(answer.json()["request_id"])
        label = client.post("/v1/feedback", json={"request_id": ids[0], "label": True})
        assert label.status_code == 503
        assert f"endpoint {endpoint}" in label.text and "bucket 'mloop-data'" in label.text
    logged = [line for p in (spool / "segments").glob("*.jsonl") for line in p.read_bytes().splitlines()]
    assert sorted(json.loads(line)["request_id"] for line in logged) == sorted(ids)  # kept, to compact later

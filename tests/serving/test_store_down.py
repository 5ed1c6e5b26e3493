"""Predictions while the online store (Redis) is down, served in process: the answer of a view with
``on_missing: default`` says which inputs were defaulted, is never cached (the next request reads the
store again), and a view with the default ``on_missing: error`` answers 503."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop.features.fallback import STORE_UNAVAILABLE
from mloop.serving.http.app import create_app
from tests.services import free_port

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    pytest.importorskip("redis")
    root = tmp_path_factory.mktemp("store-down")
    project = ml.Project.open(root, env={}, online_url=f"redis://127.0.0.1:{free_port()}/0",
                              serving={"max_queue_ms": None})  # fmt: skip
    customer = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
    pushed = ml.PushSource("spends", schema=[ml.Field("customer_id", "int64"), ml.Field("spend", "float64"),
                                             ml.Field("ts", "timestamp")])  # fmt: skip
    spend = [ml.Field("spend", "float64")]
    project.apply([customer, pushed,
                   ml.FeatureView("lenient", entities=[customer], source=pushed, features=spend,
                                  on_missing="default", defaults={"spend": 0.0}),
                   ml.FeatureView("strict", entities=[customer], source=pushed, features=spend)])  # fmt: skip
    frame = pd.DataFrame({"spend": np.arange(20) * 1.0, "amount": np.arange(20) % 3 * 1.0})
    model = LogisticRegression().fit(frame, (frame.spend > 9).astype(int))
    for view in ("lenient", "strict"):
        project.models.register(view, model, input_example=frame, lineage={"features": [f"{view}:*"]})
        project.deploy(view, view, version=1, options={"cache_size": 100})
    with TestClient(create_app(project), raise_server_exceptions=False) as served:
        yield served
    project.close()


def test_defaulted_answers_say_so_and_are_not_cached(client: TestClient) -> None:
    body = {"rows": [{"customer_id": 7, "amount": 1.0}]}
    first, again = (client.post("/v1/endpoints/lenient/predict", json=body).json() for _ in range(2))
    assert first["defaulted"] == again["defaulted"] == {"spend": STORE_UNAVAILABLE}
    assert first["predictions"] == again["predictions"]
    series = 'mloop_cache_lookups_total{endpoint="lenient",result='
    lines = client.get("/metrics").text.splitlines()
    lookups = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(series)
    }
    assert lookups.get(series + '"miss"}') == 2.0, lookups
    assert lookups.get(series + '"hit"}', 0.0) == 0.0, lookups  # the second request read the store again


def test_a_view_without_a_fallback_answers_503_naming_the_store(client: TestClient) -> None:
    answer = client.post("/v1/endpoints/strict/predict", json={"rows": [{"customer_id": 7, "amount": 1.0}]})
    assert answer.status_code == 503
    assert answer.json()["error"] == "OnlineStoreUnavailable"
    assert "cannot reach Redis" in answer.json()["message"] and "['strict']" in answer.json()["message"]

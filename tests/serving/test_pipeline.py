"""Pipeline endpoints end to end in process: retrieve (torch tower + vector index) -> rank (LightGBM)
-> top, per-stage canary, cold start, filters, exclusions, index refresh and the deploy-time refusal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.errors import MloopError
from mloop.serving.http.app import create_app
from tests.serving import recs

pytest.importorskip("torch")
pytest.importorskip("lightgbm")
pytest.importorskip("faiss")


@dataclass
class Recs:
    project: Project
    client: TestClient
    tower: Any
    vectors: np.ndarray

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/v1/endpoints/recs/predict", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def embedding(self, user_id: int) -> np.ndarray:
        import torch

        features = self.project.features.online(
            [{"user_id": user_id}], [f"user_profile:u{i}" for i in range(4)]
        )
        row = torch.tensor([[features[f"u{i}"][0] for i in range(4)]], dtype=torch.float32)
        with torch.no_grad():
            return np.asarray(self.tower(row).numpy()[0])

    def logged(self, endpoint: str) -> Any:
        return self.client.app.state.prediction_log.read(endpoint)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recs]:
    root = tmp_path_factory.mktemp("recs")
    project = Project.open(root, env={}, serving={"max_queue_ms": None}, pipelines=recs.PIPELINES)
    tower, vectors = recs.build(project)
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield Recs(project, client, tower, vectors)
    project.close()


def test_a_pipeline_answers_the_ranked_top_n_of_the_retrieved_items_and_logs_every_stage(
    served: Recs,
) -> None:
    answer = served.ask({"inputs": [{"user_id": 2}]})
    row = answer["predictions"][0]
    in_stock = [i for i in range(recs.ITEMS) if i != 5]
    # k=200 is above the index's 12 items: every in-stock item is a candidate; the ranker v1 scores by
    # price (= item id), so the answer is the five dearest in-stock items.
    assert row["items"] == sorted(in_stock, reverse=True)[:5]
    assert row["scores"] == sorted(row["scores"], reverse=True)
    assert row["cold_start"] is False and row["reason"] is None
    assert answer["stages"]["retrieve"]["version"] == 1 and answer["stages"]["rank"]["version"] == 1
    rid = answer["request_id"]
    ranked = served.logged("recs-ranker")
    assert (ranked.request_id == f"{rid}/rank").sum() == len(in_stock)  # one row per candidate
    assert (served.logged("recs-towers").request_id == f"{rid}/retrieve").sum() == 1
    mine = served.logged("recs").query("request_id == @rid")
    assert len(mine) == 1 and mine.iloc[0]["stage.rank.version"] == 1
    metrics = served.client.get("/metrics").text
    assert 'mloop_pipeline_stage_seconds_count{pipeline="recs",stage="rank",version="1"}' in metrics


def test_the_retrieve_stage_searches_the_index_with_the_users_tower_embedding(served: Recs) -> None:
    answer = served.ask({"inputs": [{"user_id": 3}], "n": 3, "filter": {"category": "toys"}})
    toys = [i for i in range(recs.ITEMS) if i % 2 == 1 and i != 5]
    assert answer["predictions"][0]["items"] == sorted(toys, reverse=True)[:3]  # ranked by price
    ranked = served.logged("recs-ranker").query("request_id == @answer['request_id'] + '/rank'")
    # The ranker saw each filtered candidate (its price, looked up by item_id, is the item's id) with its
    # inner product against the user's embedding, in the order of the exact search.
    items = ranked.price.astype(int).to_numpy()
    exact = served.vectors @ served.embedding(3)
    assert list(items) == sorted(toys, key=lambda i: -exact[i])
    np.testing.assert_allclose(ranked.retrieval_score, exact[items], rtol=1e-4, atol=1e-5)


def test_purchased_items_and_request_exclusions_are_left_out(served: Recs) -> None:
    answer = served.ask({"inputs": [{"user_id": 1}, {"user_id": 2}], "exclude": [11], "n": 20})
    first, second = (p["items"] for p in answer["predictions"])
    assert 11 not in first and 11 not in second
    assert not {0, 1} & set(first)  # user 1 bought items 0 and 1 (feature user_profile:purchased)
    assert {0, 1} <= set(second)
    assert len(first) == len(set(first))


def test_an_unknown_user_gets_the_cold_start_fallback_marked(served: Recs) -> None:
    answer = served.ask({"inputs": [{"user_id": 999}, {"user_id": 2}], "exclude": [10]})
    cold, warm = answer["predictions"]
    assert cold["cold_start"] is True and "unknown user" in cold["reason"]
    assert cold["items"] == [11, 9, 5]
    assert warm["cold_start"] is False and len(warm["items"]) == 5


def test_at_looks_every_stage_up_as_of_then(served: Recs) -> None:
    # the users' features were pushed now with a 30-day TTL: as of 31 days on they are stale, so null
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    answer = served.ask({"inputs": [{"user_id": 2}], "at": later})
    assert answer["predictions"][0]["cold_start"] is True
    assert served.ask({"inputs": [{"user_id": 2}]})["predictions"][0]["cold_start"] is False


def test_a_filter_nothing_matches_answers_an_empty_list_with_a_reason(served: Recs) -> None:
    answer = served.ask({"inputs": [{"user_id": 2}], "filter": {"category": "garden"}})
    row = answer["predictions"][0]
    assert row["items"] == [] and "no item matches" in row["reason"]
    bad = served.client.post("/v1/endpoints/recs/predict", json={"inputs": []})
    assert bad.status_code == 422


def test_a_canary_of_the_ranker_serves_beside_v1_and_leaves_the_towers_alone(served: Recs) -> None:
    towers = served.project.deployments.get("recs-towers").revision
    served.project.deploy("recs-ranker", "ranker", version=2, canary=0.5)
    served.client.app.state.endpoints.refresh()  # type: ignore[attr-defined]
    try:
        answers = [served.ask({"inputs": [{"user_id": 1 + i % 8}]}) for i in range(24)]
    finally:
        served.project.deploy("recs-ranker", "ranker", version=1)
        served.client.app.state.endpoints.refresh()  # type: ignore[attr-defined]
    assert {a["stages"]["rank"]["version"] for a in answers} == {1, 2}
    assert {a["stages"]["retrieve"]["version"] for a in answers} == {1}
    assert served.project.deployments.get("recs-towers").revision == towers
    ranked = served.logged("recs-ranker")
    rids = {f"{a['request_id']}/rank" for a in answers}
    assert set(ranked[ranked.request_id.isin(rids)].version) == {1, 2}
    v2 = next(a for a in answers if a["stages"]["rank"]["version"] == 2)["predictions"][0]["items"]
    assert v2 == sorted(v2)  # v2 scores by -price: the cheapest first


def test_items_added_to_the_index_are_served_after_the_poll_without_a_restart(served: Recs) -> None:
    served.client.app.state.endpoints.close()  # stop the poll thread: this test polls by hand
    served.ask({"inputs": [{"user_id": 2}]})  # the index is loaded (on the first request that needs it)
    new = 12
    served.project.features.push("items", pd.DataFrame({"item_id": [new], "ts": [datetime.now(UTC)],
                                                        "price": [100.0]}))  # fmt: skip
    served.project.models.add_to_index("towers", 1, [new], served.vectors[:1], recs.attributes([new]))
    pipelines = served.client.app.state.pipelines  # type: ignore[attr-defined]
    before = served.ask({"inputs": [{"user_id": 2}]})["predictions"][0]["items"]
    assert new not in before  # the request path never reloads an index
    pipelines.refresh_indexes()  # what the server's poll thread does every half second
    assert served.ask({"inputs": [{"user_id": 2}]})["predictions"][0]["items"][0] == new


def test_deploying_a_tower_version_without_its_own_index_is_refused(served: Recs) -> None:
    with pytest.raises(MloopError, match="has no vector index"):
        served.project.deploy("recs-towers", "towers", version=2)
    with pytest.raises(MloopError, match="built from towers v1, so it cannot serve with towers v2"):
        served.project.models.attach_index(
            "towers", 2, recs.build_index([0], served.vectors[:1], None, ("towers", 1))
        )
    with pytest.raises(MloopError, match="has no vector index"):
        served.project.deploy("recs-towers", "towers", version=2)
    with pytest.raises(MloopError, match="is a pipeline endpoint"):
        served.project.deploy("recs", "towers", version=1)
    pipelines = served.client.app.state.pipelines  # type: ignore[attr-defined]
    live = served.project.deployments.get("recs-towers")
    refused = type("Revision", (), {"endpoint": "recs-towers", "model": "towers", "versions": (2,)})()
    with pytest.raises(MloopError, match="vector index is missing"):
        pipelines.check_deployment(refused)
    pipelines.check_deployment(live)


def test_a_pipeline_needs_predict_on_itself_and_its_stages_run_as_the_server(served: Recs) -> None:
    project = served.project
    project.users.add("shop", ["mlops@endpoint:recs"])  # predict on the pipeline, nothing on its stages
    project.users.add("onlooker", ["auditor"])
    shop, onlooker = project.keys.issue("shop").token, project.keys.issue("onlooker").token
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor,
                          pipelines=recs.PIPELINES)  # fmt: skip
    with strict, TestClient(create_app(strict), raise_server_exceptions=False) as client:
        body = {"inputs": [{"user_id": 2}]}
        denied = client.post(
            "/v1/endpoints/recs/predict", json=body, headers={"Authorization": f"Bearer {onlooker}"}
        )
        assert denied.status_code == 403 and "endpoint:recs" in denied.text
        allowed = client.post(
            "/v1/endpoints/recs/predict", json=body, headers={"Authorization": f"Bearer {shop}"}
        )
        assert allowed.status_code == 200 and len(allowed.json()["predictions"][0]["items"]) == 5
        stage = client.post("/v1/endpoints/recs-ranker/predict", json={"rows": [{"item_id": 1}]},
                            headers={"Authorization": f"Bearer {shop}"})  # fmt: skip
        assert stage.status_code == 403  # the key itself cannot call the stage endpoints


def test_a_new_server_holds_the_served_index_before_its_first_request(served: Recs) -> None:
    """Loading an index on the request path stalls the event loop (0.4 s for 100k items): a server loads
    the indexes of the versions it serves when it starts."""
    app = create_app(served.project)
    held = app.state.pipelines.indexes  # type: ignore[attr-defined]
    assert ("towers", 1) in held._held  # loaded when the app was made, before any request
    app.state.endpoints.close()  # type: ignore[attr-defined]

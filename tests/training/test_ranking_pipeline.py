"""Learning to rank in the training pipeline: LGBMRanker on query groups, whole queries per split, early
stopping on the validation NDCG@10, ranking metrics on the run, registered and served through the
LightGBM flavour, and a loop gate on ndcg@10."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop.errors import SchemaError
from mloop.loop import retrain
from mloop.loop.policy import Gate, metric_name
from mloop.metrics import ranking
from mloop.training.ranking import label_impressions
from tests.training import recs


def _pipeline(labelled: pd.DataFrame, **changes: Any) -> ml.TrainingPipeline:
    settings: dict[str, Any] = {
        "features": ["user_profile:*", "item_stats:*"],
        "label": ml.Label(labelled, column="label", timestamp="ts"),
        "model": lightgbm.LGBMRanker(
            objective="lambdarank", n_estimators=60, num_leaves=7, min_child_samples=5, n_jobs=1
        ),
        "split": ml.TimeSplit(valid="2d", test="2d"),
        "group": "request_id",
    }
    settings.update(changes)
    return ml.TrainingPipeline("ranker", **settings)


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ml.Project, ml.TrainingPipeline, Any]]:
    folder = tmp_path_factory.mktemp("ranking_pipeline")
    (folder / "project").mkdir()
    project = ml.Project.open(folder / "project", env={})
    users, items, impressions, clicks = recs.world()
    recs.apply(project, folder, users, items)
    labelled = label_impressions(impressions, clicks, within="1h", grades={"click": 1, "purchase": 2})
    pipeline = _pipeline(labelled)
    try:
        yield project, pipeline, pipeline.run(project)
    finally:
        project.close()


def test_whole_queries_fall_in_one_split_each_contiguous(trained) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = trained
    data = pipeline.training_set(project)
    assert data.task == "ranking" and data.group == "request_id"
    seen = [set(part["request_id"]) for part in (data.train, data.valid, data.test)]
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    for part in (data.train, data.valid, data.test):
        runs = (part["request_id"] != part["request_id"].shift()).sum()
        assert runs == part["request_id"].nunique()  # each query one contiguous run of rows


def test_the_ranker_beats_random_order_and_its_metrics_are_on_the_run(trained) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, run = trained
    metrics = project.runs.get(run.id).metrics
    for part in ("valid", "test"):
        for key in ("ndcg_at_10", "recall_at_5", "mrr", "hit_rate_at_10", "queries"):
            assert f"{part}_{key}" in metrics, key
    data = pipeline.training_set(project)
    rng = np.random.default_rng(0)
    test = data.test.assign(score=rng.random(len(data.test)))
    random_ndcg = ranking.of_frame(test, k=[10])["ndcg@10"]
    assert metrics["test_ndcg_at_10"] > random_ndcg + 0.05
    assert metrics["best_iteration"] >= 1  # early stopping looked at the validation NDCG


def test_the_registered_ranker_scores_rows_after_reloading(trained) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, run = trained
    version = project.models.get("ranker", version=run.model_version.version)
    loaded = project.models.load("ranker", version.version)
    assert type(loaded.model).__name__ == "LGBMRanker"
    data = pipeline.training_set(project)
    x = data.test[["favourite", "category", "quality"]].head(16)
    scores = np.asarray(loaded.predict(x))
    assert scores.shape == (16,) and np.isfinite(scores).all() and len(np.unique(scores)) > 1


def test_a_gate_on_ndcg_at_10_reads_the_runs_metric(trained) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, run = trained
    assert Gate(metric="ndcg@10").metric == "ndcg@10"
    metrics = project.runs.get(run.id).metrics
    # the loop measures the champion on the holdout as the run measured the challenger
    data = pipeline.training_set(project)
    scores = project.models.load("ranker", run.model_version.version).predict(data.test[data.features])
    value = retrain._value(data, data.test, np.asarray(scores), metric_name("ndcg@10"))
    assert value == pytest.approx(metrics["test_ndcg_at_10"])
    assert metric_name("mrr") == "mrr" and metric_name("recall@100") == "recall_at_100"
    with pytest.raises(Exception, match="ndcg@K"):
        metric_name("ndcg@ten")


def test_group_needs_a_ranker_and_grades(trained) -> None:  # type: ignore[no-untyped-def]
    project, pipeline, _ = trained
    labelled = pipeline.label.source
    with pytest.raises(SchemaError, match="LGBMRanker"):
        _pipeline(labelled, model=lightgbm.LGBMRegressor(n_estimators=5), register=False).run(project)
    with pytest.raises(SchemaError, match="whole number"):
        _pipeline(labelled.assign(label=labelled["label"] - 0.5)).training_set(project)
    with pytest.raises(SchemaError, match="query groups"):
        pipeline.tune(project, {"num_leaves": [3, 7]}, trials=1)
    with pytest.raises(SchemaError, match="no column"):
        _pipeline(labelled, group="query").training_set(project)


def test_an_endpoint_serves_the_rankers_scores(trained) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from mloop.serving.http.app import create_app

    project, pipeline, run = trained
    version = run.model_version.version
    project.deploy("ranker", "ranker", version=version)
    rows = (
        pipeline.training_set(project)
        .test[["user_id", "item_id", "favourite", "category", "quality"]]
        .head(8)
    )
    body = {"rows": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                     for r in rows.to_dict("records")]}  # fmt: skip
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        answer = client.post("/v1/endpoints/ranker/predict", json=body)
    assert answer.status_code == 200, answer.text
    local = project.models.load("ranker", version).predict(rows[["favourite", "category", "quality"]])
    assert answer.json()["predictions"] == pytest.approx(np.asarray(local).tolist())

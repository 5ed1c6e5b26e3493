"""Explanations in the record: a sampled share of an endpoint's answers explained off the request path into
the prediction log, read back with their labels ("why was every disputed decision made"); the queue that
feeds the explainer drops and counts rather than grows; the in-process explaining service."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.errors import MloopError, PayloadTooLarge
from mloop.explain import Attributions
from mloop.predictions import Answer, PredictionLog, read_predictions
from mloop.predictions.explanations import read_explanations
from mloop.predictions.log import predictions_folder
from mloop.serving.explainer import explain_here
from mloop.serving.explaining import Explaining
from mloop.serving.sampling import AttributionSampler
from tests.serving.explained import Explained, explained_fixture  # noqa: F401  (the shared project)

PREDICT = "/v1/endpoints/fraud/predict"


@pytest.fixture(scope="module")
def sampled(explained: Explained) -> Iterator[tuple[list[str], list[float]]]:
    """Endpoint ``fraud`` deployed with every answer explained (explain_sample 1); 12 answers given and
    the samples drained: their request ids and predictions."""
    project = explained.project
    project.deploy("fraud", "fraud", version=1, options={"explain_sample": 1.0})
    ids, predictions = [], []
    with explained.client() as client:
        for i in range(12):
            body = client.post(PREDICT, json={"rows": [explained.row(i)]}).json()
            ids.append(body["request_id"])
            predictions.append(body["predictions"][0])
        client.app.state.inference.drain()  # type: ignore[attr-defined]
        assert client.app.state.inference.sampler.explained == 12  # type: ignore[attr-defined]
    yield ids, predictions
    project.deploy("fraud", "fraud", version=1)


def test_sampled_answers_are_logged_with_their_attributions(explained: Explained, sampled: Any) -> None:
    ids, predictions = sampled
    why = explained.project.predictions.explanations("fraud", since="1h")
    why = why[why["request_id"].isin(ids)].set_index("request_id").loc[ids]
    assert why["prediction"].tolist() == pytest.approx(predictions)
    assert set(why["method"]) == {"tree_shap"} and set(why["output"]) == {"log_odds"}
    project = explained.project
    for (_, entry), served in zip(why.iterrows(), predictions, strict=True):
        total = entry["base_value"] + sum(entry["attributions"].values())
        assert total == pytest.approx(math.log(served / (1 - served)), abs=1e-6)  # what the model answered
    # the explained lines are not predictions: monitoring's reader sees each answer once
    logged = read_predictions(predictions_folder(project.settings), "fraud")
    assert logged["request_id"].isin(ids).sum() == len(ids)


def test_disputed_only_keeps_the_labelled_rows_whose_label_contradicts_the_decision(
    explained: Explained,
    sampled: Any,
) -> None:
    ids, predictions = sampled
    project = explained.project
    cut = project.models.get("fraud", 1).card["threshold"]  # the version's decision threshold, not 0.5
    wrong = [int(p < cut) for p in predictions[:4]]  # the opposite of each decision
    right = [int(p >= cut) for p in predictions[4:8]]
    with explained.client() as client:
        for rid, label in zip(ids[:8], wrong + right, strict=True):
            answer = client.post("/v1/feedback", json={"request_id": rid, "label": label})
            assert answer.status_code == 200, answer.text
    every = project.predictions.explanations("fraud", since="1h")
    labelled = every[every["request_id"].isin(ids[:8])]
    assert labelled["label"].tolist() and labelled["label"].notna().all()
    assert every[every["request_id"].isin(ids[8:])]["label"].isna().all()  # no feedback yet: None
    disputed = project.predictions.explanations("fraud", since="1h", disputed_only=True)
    assert sorted(disputed["request_id"][disputed["request_id"].isin(ids)]) == sorted(ids[:4])


def test_with_no_share_nothing_is_explained(explained: Explained) -> None:
    explained.project.deploy("fraud", "fraud", version=1)  # no options: explain_sample 0
    with explained.client() as client:
        rid = client.post(PREDICT, json={"rows": [explained.row(20)]}).json()["request_id"]
        client.app.state.inference.drain()  # type: ignore[attr-defined]
        assert client.app.state.inference.sampler.explained == 0  # type: ignore[attr-defined]
    assert rid not in set(explained.project.predictions.explanations("fraud", since="1h")["request_id"])


def test_explain_sample_is_a_share(explained: Explained) -> None:
    with pytest.raises(MloopError, match="explain_sample must be a number from 0 to 1"):
        explained.project.deploy("fraud", "fraud", version=1, options={"explain_sample": 1.5})


class _Blocking:
    """A predictor whose explainer waits until released: the sampler's one thread is then busy."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.name, self.version = "m", 1
        self.model = SimpleNamespace(attributions=self._attributions)

    def _attributions(self, frame: pd.DataFrame) -> Any:
        self.started.set()
        self.release.wait(5)
        raise RuntimeError("not a real model")


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Any) -> None:
    with PredictionLog(tmp_path / "log", compact_in_child=False) as log:
        sampler = AttributionSampler(log, queue_size=1, explainer=explain_here)
        blocking = _Blocking()
        answer = Answer("r", "e", "m", 1, 1, [0.5], {"x": [1.0]}, 0.001)
        assert sampler.offer("e", blocking, answer, answer, share=1.0)  # type: ignore[arg-type]
        assert blocking.started.wait(5)  # the thread holds the first
        assert sampler.offer("e", blocking, answer, answer, share=1.0)  # type: ignore[arg-type]  # queued
        assert not sampler.offer("e", blocking, answer, answer, share=1.0)  # type: ignore[arg-type]  # full
        assert sampler.dropped == 1
        blocking.release.set()
        sampler.drain()
        assert sampler.failed == 2 and sampler.explained == 0  # a failing explainer is counted, never raised
        sampler.close()


def test_the_in_process_service_needs_predict_and_caps_the_rows(explained: Explained) -> None:
    project = explained.project
    service = Explaining.in_process(project)
    found = service.explain(project, "fraud", [explained.row(1)], top_k=2)
    assert found.version == 1 and len(found.to_dict()["explanations"][0]["attributions"]) == 2
    with pytest.raises(PayloadTooLarge, match="at most 100 rows"):
        service.explain(project, "fraud", [explained.row(1)] * 101)
    with pytest.raises(MloopError, match="does not serve version 4"):
        service.explain(project, "fraud", [explained.row(1)], version=4)


class _Picky:
    """A model explained in batches that fails on any batch holding a negative ``x``."""

    def __init__(self) -> None:
        self.name, self.version, self.calls = "m", 1, []
        self.gate = threading.Event()
        self.model = SimpleNamespace(attributions=self._attributions)

    def _attributions(self, frame: pd.DataFrame) -> Attributions:
        self.gate.wait(5)
        self.calls.append(len(frame))
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        return Attributions(
            frame[["x"]] * 2, np.zeros(len(frame)), np.ones(len(frame)), "value", "fake", True
        )


def test_samples_waiting_together_are_explained_in_one_call_and_a_bad_one_costs_only_itself(
    tmp_path: Any,
) -> None:
    picky = _Picky()
    with PredictionLog(tmp_path / "log", compact_in_child=False) as log:
        sampler = AttributionSampler(log, pause=0, explainer=explain_here)
        first, good, bad = (Answer(rid, "e", "m", 1, 1, [1.0], {"x": [x]}, 0.001) for rid, x in
                            (("first", 1.0), ("good", 2.0), ("bad", -1.0)))  # fmt: skip
        for answer in (first, good, bad):
            assert sampler.offer("e", picky, answer, answer, share=1.0)  # type: ignore[arg-type]
        picky.gate.set()
        sampler.drain()
        sampler.close()
        assert (sampler.explained, sampler.failed) == (2, 1)
        why = read_explanations(tmp_path / "log", "e")
    assert sorted(why["request_id"]) == ["first", "good"]
    assert why.set_index("request_id").loc["good", "attributions"] == {"x": 4.0}
    assert max(picky.calls) >= 2  # the waiting samples went to the model together first


def test_only_a_few_rows_through_an_exact_numpy_explainer_run_on_the_event_loop(explained: Explained) -> None:
    project = explained.project
    service = Explaining.in_process(project)
    row = explained.row(1)
    assert service.inline(project, "fraud", [row]) and service.inline(project, "fraud", [row] * 4)
    assert not service.inline(project, "fraud", [row] * 5)  # more rows: a worker thread
    assert not service.inline(project, "fraud", [row], budget=100)  # a model-agnostic method
    assert not service.inline(project, "nowhere", [row])  # the error is raised by explain itself

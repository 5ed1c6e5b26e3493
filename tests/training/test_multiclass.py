"""Multiclass classification through the training pipeline: metrics, slices, the registered model's
class-probability matrix, and the search, with a scikit-learn model and with a torch one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score

import mloop as ml
from mloop import Project
from mloop.metrics.multiclass import of_labels
from tests.training.digits import PIXELS, setup


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=40).flatmap(
        lambda labels: st.tuples(
            st.just(labels),
            st.lists(
                st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4),
                min_size=len(labels),
                max_size=len(labels),
            ),
        )
    )
)
@settings(max_examples=40, deadline=None)
def test_multiclass_metrics_agree_with_scikit_learn(case: tuple[list[int], list[list[float]]]) -> None:
    labels, raw = case
    proba = np.asarray(raw) / np.asarray(raw).sum(axis=1, keepdims=True)
    classes = [0, 1, 2, 3]
    m = of_labels(labels, proba, classes)
    predicted = proba.argmax(axis=1)
    assert m["rows"] == len(labels)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert m["macro_f1"] == pytest.approx(
        f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)
    )
    recalls = recall_score(labels, predicted, labels=classes, average=None, zero_division=0)
    for c, value in zip(classes, recalls, strict=True):
        assert m["per_class_recall"][str(c)] == (pytest.approx(value) if c in labels else None)
    json.dumps(m, allow_nan=False)  # plain JSON, never NaN


def test_a_multiclass_pipeline_is_evaluated_per_class_and_per_slice(
    sqlite_project: Project, tmp_path: Path
) -> None:
    pipeline = setup(sqlite_project, tmp_path, LogisticRegression(max_iter=300), rows=400)
    run = pipeline.run(sqlite_project)
    info = sqlite_project.runs.get(run.id)
    assert info.tags["task"] == "multiclass"
    assert info.metrics["test_accuracy"] > 0.7 and info.metrics["valid_macro_f1"] > 0.6
    assert 0 < info.metrics["test_log_loss"] < 2
    assert {f"test_recall/d{k}" for k in range(10)} <= set(info.metrics)
    evaluation = json.loads(sqlite_project.runs.artifact(run.id, "evaluation.json"))
    assert set(evaluation["slices"]["ink"]) == {"heavy", "light"}
    assert (
        sum(s["rows"] for s in evaluation["slices"]["ink"].values()) == evaluation["metrics"]["test"]["rows"]
    )
    assert evaluation["classes"] == [f"d{k}" for k in range(10)]

    version = sqlite_project.models.get("digits")
    assert [c["name"] for c in version.signature.to_dict()["outputs"]] == [f"d{k}" for k in range(10)]
    rows = pipeline.training_set(sqlite_project).test[PIXELS].head(5).reset_index(drop=True)
    proba = np.asarray(sqlite_project.models.load("digits", version=1).predict(rows))
    assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1)


def test_three_numeric_classes_are_multiclass_too(sqlite_project: Project, tmp_path: Path) -> None:
    pipeline = setup(sqlite_project, tmp_path, LogisticRegression(max_iter=300), rows=300, slices=())
    frame = pipeline.label.source.assign(digit=lambda f: f["digit"].str[1:].astype(int) % 3)
    pipeline.label = ml.Label(frame, "digit", "ts")
    info = sqlite_project.runs.get(pipeline.run(sqlite_project).id)
    assert info.tags["task"] == "multiclass" and {"test_recall/0", "test_recall/2"} <= set(info.metrics)


torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from mloop.training.torch import TorchClassifier  # noqa: E402
from tests.training.test_torch import MLP  # noqa: E402


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_torch_model_trains_through_the_pipeline_and_its_search(
    sqlite_project: Project, tmp_path: Path
) -> None:
    net = TorchClassifier(MLP, module__hidden=32, max_epochs=8, lr=1e-2, batch_size=32, early_stopping=3)
    pipeline = setup(sqlite_project, tmp_path, net, rows=400)
    run = pipeline.run(sqlite_project)
    info = sqlite_project.runs.get(run.id)
    assert info.metrics["test_accuracy"] > 0.7
    epochs = sqlite_project.runs.metric_history(run.id, "valid_loss")
    assert [step for step, _, _ in epochs] == list(range(1, len(epochs) + 1)) and len(epochs) >= 3
    assert "checkpoints/last.pt" in info.artifacts
    assert info.params["module__hidden"] == "32" and info.params["seed"] == "0"

    result = pipeline.tune(sqlite_project, {"lr": (1e-3, 3e-2, "log"), "module__hidden": [16, 32]}, trials=2,
                           metric="accuracy")  # fmt: skip
    assert [t["state"] for t in result.trials] == ["complete", "complete"]
    best = sqlite_project.runs.get(result.best_run_id)
    assert best.metrics["valid_accuracy"] == result.best_value
    assert (
        len(sqlite_project.runs.metric_history(best.id, "valid_loss")) >= 3
    )  # per epoch, on the trial's run
    parent = sqlite_project.runs.get(result.parent_run_id)
    assert "valid_loss" not in parent.metrics and "checkpoints/last.pt" not in parent.artifacts

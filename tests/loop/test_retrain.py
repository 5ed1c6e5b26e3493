"""The retraining gate's data checks and metric values for a multiclass model, and for a pipeline that
measures its models itself."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from mloop import Project
from mloop.loop.policy import Gate
from mloop.loop.retrain import _value, data_checks, decide, retrain


def training_set(labels: list[str]) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    n = len(labels)
    frame = pd.DataFrame({"x": rng.normal(size=n), "label": labels})
    return SimpleNamespace(task="multiclass", train=frame, test=frame.head(60), label="label", features=["x"])


def test_a_multiclass_set_needs_two_classes_in_each_part_not_exactly_two() -> None:
    three = training_set(["a", "b", "c"] * 100)
    assert {c["name"]: c["passed"] for c in data_checks(three)}["train_classes"]
    one = training_set(["a"] * 300)
    assert not {c["name"]: c["passed"] for c in data_checks(one)}["test_classes"]


def test_a_multiclass_metric_is_read_from_the_probability_matrix() -> None:
    data = training_set(["a", "b", "c"] * 100)
    holdout = pd.DataFrame({"label": ["a", "b", "c", "c"]})
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    assert _value(data, holdout, proba, "accuracy") == 0.75
    assert _value(data, holdout, proba, "auc") is None


class Measured:
    """A pipeline that measures its models itself (``evaluate``), as a retrieval model judged with its own
    index is: the gate reads the challenger's figure from its run, the champion's from ``evaluate``."""

    name, seed = "scorer", 0

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.asked: list[int] = []

    def training_set(self, project: Any) -> SimpleNamespace:
        return SimpleNamespace(
            task="retrieval", train=self.frame, test=self.frame.head(80), label="y", features=["x"]
        )

    def run(self, project: Any, data: Any) -> Any:
        model = LinearRegression().fit(self.frame[["x"]], self.frame["y"])
        with project.run("scorer") as run:
            run.model_version = run.register(model, self.name, input_example=self.frame[["x"]].head(3))
            run.log_metric("test_recall_at_100", 0.7)
        return run

    def evaluate(self, project: Any, model: Any, holdout: pd.DataFrame) -> float:
        self.asked.append(model.version)
        return 0.5 + 0.01 * len(holdout) / 80


def test_a_pipeline_that_measures_its_models_itself_is_gated_on_its_own_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=300)}).assign(y=lambda f: 2 * f["x"])
    pipeline = Measured(frame)
    with Project.open(tmp_path, env={}) as project:
        first = pipeline.run(project, None).model_version.version
    report = retrain(Project.open, str(tmp_path), {}, pipeline, ("scorer", first), Gate(metric="recall@100"))
    assert report["stage"] == "trained" and report["challenger"] == first + 1
    assert report["challenger_value"] == 0.7 and report["champion_value"] == 0.51
    assert pipeline.asked == [first] and report["holdout_rows"] == 80
    assert report["latency_p99_ms"] is not None
    passed, checks = decide(Gate(metric="recall@100", max_latency_ms=None), report)
    assert passed and checks[-1]["name"] == "recall_at_100_gain"

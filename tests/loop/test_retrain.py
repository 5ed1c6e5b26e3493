"""The retraining gate's data checks and metric values for a multiclass model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from mloop.loop.retrain import _value, data_checks


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

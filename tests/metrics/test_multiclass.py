"""Multiclass metrics equal scikit-learn's; labels map to classes by name or index, never guessed."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score

from mloop.metrics import multiclass
from mloop.metrics.multiclass import class_matrix, label_indices, multiclass_metrics


def test_doctests() -> None:
    assert doctest.testmod(multiclass).failed == 0


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 60), width=st.integers(2, 6))
def test_equal_to_scikit_learn(seed: int, rows: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(width), size=rows)
    y = rng.integers(0, width, rows)
    found = multiclass_metrics(y, proba)
    predicted = np.argmax(proba, axis=1)
    labels = list(range(width))
    assert found["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert found["macro_f1"] == pytest.approx(
        f1_score(y, predicted, labels=labels, average="macro", zero_division=0)
    )
    assert found["log_loss"] == pytest.approx(log_loss(y, proba, labels=labels))
    recall = recall_score(y, predicted, labels=labels, average=None, zero_division=0)
    for k in range(width):
        expected = recall[k] if (y == k).any() else None
        assert found["per_class_recall"][str(k)] == (
            pytest.approx(expected) if expected is not None else None
        )


def test_labels_map_to_classes_by_name_or_index() -> None:
    assert label_indices(["cat", "dog", 3, "bird", None], ["cat", "dog", 3], 3).tolist()[:3] == [0, 1, 2]
    assert all(math.isnan(v) for v in label_indices(["bird", None, True], ["cat", "dog"], 2))
    assert label_indices([0, 2.0, 5, "1", -1], None, 3).tolist()[:2] == [0, 2]
    assert all(math.isnan(v) for v in label_indices([5, "1", -1], None, 3))


def test_rows_that_are_not_probability_lists_are_nan() -> None:
    matrix = class_matrix([[0.2, 0.8], [0.5, 0.5], 0.3, None, [1.0, 0.0, 0.0]])
    assert matrix.shape == (5, 2) and np.isnan(matrix[2:]).all() and matrix[1].tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="class indices"):
        multiclass_metrics([0, 3], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="one label per row"):
        multiclass_metrics([0], [[0.5, 0.5], [0.5, 0.5]])


def test_a_label_outside_the_classes_is_wrong_not_an_error() -> None:
    proba = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    m = multiclass.of_labels(["cat", "dog", "emu"], proba, ["cat", "dog"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_class_recall"] == {"cat": 1.0, "dog": 1.0}
    assert m["log_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(1e-15)) / 3)


def test_no_rows_give_none_not_an_error() -> None:
    m = multiclass.of_labels([], np.empty((0, 2)), ["a", "b"])
    assert m["rows"] == 0 and m["accuracy"] is None and m["per_class_recall"] == {"a": None, "b": None}

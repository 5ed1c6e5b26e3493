"""Evaluation metrics: equal to scikit-learn's, defined on edge cases, plain JSON."""

from __future__ import annotations

import doctest
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mloop.errors import MloopError, SchemaError
from mloop.metrics import evaluation
from mloop.metrics.evaluation import (
    best_threshold,
    by_slice,
    classification_metrics,
    fairness,
    regression_metrics,
)


def assert_plain_json(value: Any) -> None:
    """Only builtin types (no numpy scalars), and strict JSON (no NaN)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert value is None or type(value) in (bool, int, float, str), (value, type(value))
        if isinstance(value, float):
            assert math.isfinite(value)
    json.dumps(value, allow_nan=False)


@st.composite
def binary_data(draw: st.DrawFn, both_classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2 if both_classes else 1, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if both_classes:
        y[0], y[1] = 0, 1
    # a few distinct values, so ties are common, or any probability
    grid = draw(st.booleans())
    element = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 1.0]) if grid else st.floats(0, 1)
    s = np.array(draw(st.lists(element, min_size=n, max_size=n)), dtype=float)
    return y, s


@pytest.mark.slow
@settings(max_examples=120, deadline=None)
@given(binary_data(), st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_classification_metrics_equal_scikit_learn(
    data: tuple[np.ndarray, np.ndarray], threshold: float
) -> None:
    y, s = data
    m = classification_metrics(y, s, threshold=threshold)
    predicted = (s >= threshold).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, s, labels=[0, 1]), rel=1e-9, abs=1e-12)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, predicted, zero_division=0.0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, predicted, zero_division=0.0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, predicted, zero_division=0.0))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert (m["rows"], m["positives"]) == (len(y), int(y.sum()))
    assert m["positive_rate"] == pytest.approx(y.mean())
    assert m["single_class"] is False and m["probabilities"] is True
    assert_plain_json(m)


def test_extreme_probabilities_are_clipped_like_scikit_learn() -> None:
    y, s = [0, 1, 1, 0], [0.0, 1.0, 0.0, 0.5]
    assert classification_metrics(y, s)["log_loss"] == pytest.approx(skm.log_loss(y, s))


def test_expected_calibration_error_by_hand() -> None:
    # bin 1 ([0.1, 0.2)): scores 0.1, 0.15, labels 0, 1 -> |0.5 - 0.125| = 0.375, weight 2/5
    # bin 8 ([0.8, 0.9)): score 0.8, label 1 -> 0.2, weight 1/5
    # bin 9 ([0.9, 1.0]): scores 0.9, 1.0, labels 1, 1 -> |1 - 0.95| = 0.05, weight 2/5
    m = classification_metrics([0, 1, 1, 1, 1], [0.1, 0.15, 0.8, 0.9, 1.0])
    assert m["ece"] == pytest.approx(0.4 * 0.375 + 0.2 * 0.2 + 0.4 * 0.05)


def test_perfectly_calibrated_bins_have_no_calibration_error() -> None:
    y = [1, 0, 0, 0, 1, 1, 1, 0]
    s = [0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75]
    assert classification_metrics(y, s)["ece"] == pytest.approx(0.0)


def test_scores_that_are_not_probabilities_keep_the_ranking_metrics() -> None:
    y, s = [0, 1, 0, 1], [-2.0, 3.0, 0.5, 1.5]
    m = classification_metrics(y, s, threshold=0.0)
    assert m["probabilities"] is False
    assert m["log_loss"] is m["brier"] is m["ece"] is None
    assert m["roc_auc"] == 1.0 and m["precision"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1], [True]])
def test_a_single_class_leaves_the_ranking_metrics_undefined(labels: list[int]) -> None:
    m = classification_metrics(labels, [0.2, 0.6, 0.9][: len(labels)])
    assert m["single_class"] is True
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["log_loss"] is not None and m["accuracy"] is not None
    assert_plain_json(m)


def test_no_rows() -> None:
    m = classification_metrics([], [])
    assert m["rows"] == 0 and m["single_class"] is True
    assert m["roc_auc"] is m["accuracy"] is m["positive_rate"] is m["log_loss"] is None
    assert_plain_json(m)
    assert regression_metrics([], []) == {"rows": 0, "rmse": None, "mae": None, "r2": None}


def test_pandas_inputs_are_used_by_position() -> None:
    y = pd.Series([True, False, True], index=[10, 3, 7])
    s = pd.Series([0.9, 0.2, 0.4], index=[0, 1, 2])
    assert classification_metrics(y, s) == classification_metrics(np.array([1, 0, 1]), [0.9, 0.2, 0.4])
    nullable = pd.Series([1, 0, 1], dtype="Int64")
    assert classification_metrics(nullable, s)["recall"] == 0.5
    assert classification_metrics(np.array([[1], [0], [1]]), s.to_numpy()[:, None])["recall"] == 0.5


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, 2], "needs labels 0/1"),
        (["yes", "no", "no"], "Encode the positive class as 1"),
        (pd.Series([1, None, 0], dtype="Int64"), "1 missing label"),
        ([0.0, float("nan"), 1.0], "1 missing label"),
    ],
)
def test_labels_that_are_not_binary_are_refused(labels: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        classification_metrics(labels, [0.1, 0.2, 0.3])


def test_bad_scores_are_refused() -> None:
    with pytest.raises(MloopError, match="1 NaN or infinite"):
        classification_metrics([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="aligned row by row"):
        classification_metrics([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"proba\[:, 1\]"):
        classification_metrics([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        classification_metrics([0, 1], [0.1, 0.2], threshold=float("nan"))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
        min_size=2,
        max_size=50,
    )
)
def test_regression_metrics_equal_scikit_learn(pairs: list[tuple[float, float]]) -> None:
    t, p = (np.array(v) for v in zip(*pairs, strict=True))
    m = regression_metrics(t, p)
    assert m["rows"] == len(t)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(t, p)), rel=1e-9, abs=1e-9)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-9, abs=1e-9)
    expected_r2 = skm.r2_score(t, p, force_finite=False)
    if np.isfinite(expected_r2) and np.ptp(t) > 0:
        assert m["r2"] == pytest.approx(expected_r2, rel=1e-6, abs=1e-9)
    else:
        assert m["r2"] is None
    assert_plain_json(m)


def test_r2_is_undefined_for_a_constant_target_or_one_row() -> None:
    assert regression_metrics([3.0, 3.0], [3.0, 4.0])["r2"] is None
    assert regression_metrics([3.0], [4.0]) == {"rows": 1, "rmse": 1.0, "mae": 1.0, "r2": None}


def split_metric(y: np.ndarray, predicted: np.ndarray, metric: str) -> float:
    tp = np.sum(predicted & (y == 1))
    fp = np.sum(predicted & (y == 0))
    fn = np.sum(~predicted & (y == 1))
    tn = np.sum(~predicted & (y == 0))
    if metric == "f1":
        return 2 * tp / (2 * tp + fp + fn)
    if metric == "accuracy":
        return (tp + tn) / len(y)
    return (tp / (tp + fn) + tn / (tn + fp)) / 2


@settings(max_examples=150, deadline=None)
@given(binary_data(), st.sampled_from(evaluation.THRESHOLD_METRICS))
def test_best_threshold_reaches_the_best_split(data: tuple[np.ndarray, np.ndarray], metric: str) -> None:
    y, s = data
    t = best_threshold(y, s, metric=metric)
    # brute force: every threshold that splits the rows differently
    best = max(split_metric(y, s >= candidate, metric) for candidate in [*np.unique(s), np.inf])
    assert split_metric(y, s >= t, metric) == pytest.approx(best)
    assert isinstance(t, float)


def test_split_metric_is_scikit_learn_s() -> None:
    y, predicted = np.array([1, 0, 1, 1, 0]), np.array([True, True, False, True, False])
    assert split_metric(y, predicted, "f1") == pytest.approx(skm.f1_score(y, predicted))
    assert split_metric(y, predicted, "balanced_accuracy") == pytest.approx(
        skm.balanced_accuracy_score(y, predicted)
    )


def test_best_threshold_lies_between_the_scores_it_separates() -> None:
    assert best_threshold([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.9]) == pytest.approx(0.4)
    # predicting nobody positive is the most accurate split here
    t = best_threshold([0, 0, 0, 1], [0.1, 0.2, 0.9, 0.3], metric="accuracy")
    assert t > 0.9


def test_best_threshold_needs_both_classes() -> None:
    with pytest.raises(MloopError, match="both classes are needed"):
        best_threshold([1, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match="must be one of f1, accuracy"):
        best_threshold([0, 1], [0.2, 0.4], metric="auc")


@pytest.fixture
def known() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 100
    return pd.DataFrame(
        {
            "country": (["fr", "de", "es", None] * 25),
            "age": np.arange(n, dtype=float),  # 100 distinct values: bucketed
            "tier": np.tile([1, 2, 3, 4, 5], 20),  # 5 distinct values: one slice each
            "y": rng.integers(0, 2, n),
            "score": rng.random(n),
        }
    )


def test_slices_of_a_known_frame(known: pd.DataFrame) -> None:
    result = by_slice(known, ["country", "age", "tier"], known["y"], known["score"])
    assert list(result["country"]) == ["de", "es", "fr", "null"]
    assert list(result["age"]) == ["[0, 19.8]", "(19.8, 39.6]", "(39.6, 59.4]", "(59.4, 79.2]", "(79.2, 99]"]
    assert [m["rows"] for m in result["age"].values()] == [20, 20, 20, 20, 20]
    assert list(result["tier"]) == ["1", "2", "3", "4", "5"]
    fr = known[known["country"] == "fr"]
    assert result["country"]["fr"] == classification_metrics(fr["y"], fr["score"])
    nulls = known[known["country"].isna()]
    assert result["country"]["null"] == classification_metrics(nulls["y"], nulls["score"])
    young = known[known["age"] <= 19.8]
    assert result["age"]["[0, 19.8]"] == classification_metrics(young["y"], young["score"])
    assert_plain_json(result)


def test_slices_take_column_names_and_drop_small_slices(known: pd.DataFrame) -> None:
    frame = known.assign(big=np.where(np.arange(100) < 97, "a", "b"))
    result = by_slice(frame, ["big"], "y", "score", min_rows=5)
    assert list(result["big"]) == ["a"]
    assert result["big"]["a"]["rows"] == 97


def test_slices_of_a_regression(known: pd.DataFrame) -> None:
    result = by_slice(known, ["tier"], known["age"], known["age"] + 1.0, task="regression")
    assert result["tier"]["3"] == {"rows": 20, "rmse": 1.0, "mae": 1.0, "r2": pytest.approx(1 - 20 / 16625)}


def test_slice_edge_cases() -> None:
    frame = pd.DataFrame(
        {
            "mixed": pd.Series([1, "1", "x", None], dtype=object),  # 1 and "1" print the same: one slice
            "flag": [True, False, True, True],
            "inf": [1.0, np.inf, 2.0, np.nan],  # non-finite numbers are null
        }
    )
    result = by_slice(frame, ["mixed", "flag", "inf"], [0, 1, 1, 0], [0.2, 0.8, 0.5, 0.1])
    assert {k: m["rows"] for k, m in result["mixed"].items()} == {"1": 2, "x": 1, "null": 1}
    assert {k: m["rows"] for k, m in result["flag"].items()} == {"False": 1, "True": 3}
    assert {k: m["rows"] for k, m in result["inf"].items()} == {"1.0": 1, "2.0": 1, "null": 2}
    empty = by_slice(frame.iloc[:0], ["flag", "inf"], [], [])
    assert empty == {"flag": {}, "inf": {}}


def test_slices_are_checked(known: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match=r"\['region'\] are not in the evaluation data"):
        by_slice(known, ["region"], "y", "score")
    with pytest.raises(ValueError, match=r"use \['country'\]"):
        by_slice(known, "country", "y", "score")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aligned row by row"):
        by_slice(known, ["country"], [0, 1], [0.1, 0.2])


def test_fairness_by_hand() -> None:
    frame = pd.DataFrame({"sex": ["f", "f", "f", "m", "m", "m", "x"]})
    y = [1, 1, 0, 1, 0, 0, 0]
    s = [0.9, 0.3, 0.6, 0.7, 0.8, 0.1, 0.9]
    result = fairness(frame, ["sex"], y, s)["sex"]
    assert result["groups"] == {
        "f": {"rows": 3, "positives": 2, "selection_rate": pytest.approx(2 / 3), "true_positive_rate": 0.5},
        "m": {"rows": 3, "positives": 1, "selection_rate": pytest.approx(2 / 3), "true_positive_rate": 1.0},
        "x": {"rows": 1, "positives": 0, "selection_rate": 1.0, "true_positive_rate": None},
    }
    assert result["demographic_parity_difference"] == pytest.approx(1 / 3)
    assert result["equal_opportunity_difference"] == 0.5  # x has no positives: left out
    assert result["excluded_from_equal_opportunity"] == ["x"]
    assert_plain_json(result)


def test_fairness_with_one_group_or_no_positives() -> None:
    frame = pd.DataFrame({"g": ["a", "a", "b"]})
    one = fairness(frame.iloc[:2], ["g"], [1, 0], [0.9, 0.1])["g"]
    assert one["demographic_parity_difference"] == 0.0 and one["equal_opportunity_difference"] == 0.0
    none = fairness(frame, ["g"], [0, 0, 0], [0.9, 0.1, 0.2])["g"]
    assert none["equal_opportunity_difference"] is None
    assert none["excluded_from_equal_opportunity"] == ["a", "b"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 1), st.floats(0, 1)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([0.3, 0.5]),
)
def test_fairness_matches_its_definition(rows: list[tuple[Any, int, float]], threshold: float) -> None:
    frame = pd.DataFrame(rows, columns=["g", "y", "s"])
    result = fairness(frame, ["g"], frame["y"], frame["s"], threshold=threshold)["g"]
    frame["g"] = frame["g"].fillna("null")
    frame["p"] = frame["s"] >= threshold
    selection = frame.groupby("g")["p"].mean()
    tpr = frame[frame["y"] == 1].groupby("g")["p"].mean()
    assert result["demographic_parity_difference"] == pytest.approx(selection.max() - selection.min())
    if len(tpr):
        assert result["equal_opportunity_difference"] == pytest.approx(tpr.max() - tpr.min())
    else:
        assert result["equal_opportunity_difference"] is None
    assert sorted(result["excluded_from_equal_opportunity"]) == sorted(set(selection.index) - set(tpr.index))
    for group, rate in selection.items():
        assert result["groups"][group]["selection_rate"] == pytest.approx(rate)
    assert_plain_json(result)


def test_docstring_examples() -> None:
    assert doctest.testmod(evaluation).failed == 0

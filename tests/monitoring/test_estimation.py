"""Confidence-based performance estimation: within 0.03 AUC of the realised value on a shifted stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from mloop.errors import MalformedInput
from mloop.monitoring.estimation import PerformanceEstimator, expected_metrics


def stream(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariate shift: the inputs move, P(y | x) stays. The model's raw scores are miscalibrated."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    truth = 1 / (1 + np.exp(-(2.0 * x - 2.5)))
    labels = (rng.random(n) < truth).astype(int)
    raw = 1 / (1 + np.exp(-(4.0 * x - 5.0)))  # over-confident: the same ranking, wrong probabilities
    return x, raw, labels


def test_estimates_land_within_003_auc_of_the_realised_value_before_and_after_a_shift() -> None:
    _, reference_scores, reference_labels = stream(20_000, 0.0, seed=1)
    estimator = PerformanceEstimator(threshold=0.5).fit(reference_scores, reference_labels)
    for window, shift in enumerate([0.0, 0.0, 0.7, -0.8, 1.2]):
        _, scores, labels = stream(5_000, shift, seed=10 + window)
        estimate = estimator.estimate(scores)
        realised = roc_auc_score(labels, scores)
        assert estimate.roc_auc == pytest.approx(realised, abs=0.03), (shift, estimate, realised)
        predicted = estimator.calibrated(scores) >= 0.5
        assert estimate.recall == pytest.approx(recall_score(labels, predicted), abs=0.05)
        assert estimate.precision == pytest.approx(precision_score(labels, predicted), abs=0.05)
        assert estimate.positive_rate == pytest.approx(labels.mean(), abs=0.02)


def test_the_estimate_follows_a_real_drop_in_auc_under_covariate_shift() -> None:
    _, reference_scores, reference_labels = stream(20_000, 0.0, seed=2)
    estimator = PerformanceEstimator().fit(reference_scores, reference_labels)
    # Inputs concentrated where the classes overlap: the realised AUC falls, and so does the estimate.
    rng = np.random.default_rng(3)
    x = rng.normal(1.25, 0.3, 5_000)
    truth = 1 / (1 + np.exp(-(2.0 * x - 2.5)))
    labels = (rng.random(len(x)) < truth).astype(int)
    scores = 1 / (1 + np.exp(-(4.0 * x - 5.0)))
    realised = roc_auc_score(labels, scores)
    assert realised < 0.7
    assert estimator.estimate(scores).roc_auc == pytest.approx(realised, abs=0.03)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=200))
def test_expected_auc_is_the_auc_averaged_over_the_labels_the_scores_imply(scores: list[float]) -> None:
    p = np.asarray(scores)
    estimate = expected_metrics(p)
    if p.sum() == 0 or (1 - p).sum() == 0:
        assert estimate.roc_auc is None
        return
    assert 0.0 <= estimate.roc_auc <= 1.0 + 1e-12
    # Perfectly separated probabilities (0s and 1s only) give the AUC of those labels: 1.
    hard = (p >= 0.5).astype(float)
    if 0 < hard.sum() < len(hard):
        assert expected_metrics(hard).roc_auc == pytest.approx(1.0)


def test_bad_scores_and_labels_are_refused_with_the_fix() -> None:
    with pytest.raises(MalformedInput, match="calibrate them first"):
        expected_metrics([0.2, 1.5])
    with pytest.raises(MalformedInput, match="No finite score"):
        expected_metrics([float("nan")])
    with pytest.raises(MalformedInput, match="both classes"):
        PerformanceEstimator().fit([0.1, 0.2], [1, 1])
    with pytest.raises(MalformedInput, match="one label per score"):
        PerformanceEstimator().fit([0.1, 0.2], [1])

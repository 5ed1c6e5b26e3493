"""Performance before the labels arrive: confidence-based performance estimation (CBPE).

A calibrated binary classifier's score is the probability that the row is positive, so a window of
scores alone gives the *expected* confusion matrix at any threshold: a row scored p counts p toward the
positives and 1 - p toward the negatives. From it follow the expected precision and recall at the
decision threshold, and the expected ROC curve (walk the rows from the highest score down: the expected
true-positive rate grows by p / sum(p) per row, the false-positive rate by (1 - p) / sum(1 - p)), whose
area is the expected ROC AUC. This is the method NannyML calls CBPE. It stays right while the inputs
shift (covariate shift), which is when monitoring needs it, and it is wrong when the relation between
inputs and label changes (concept drift): then only the realised metrics, from delayed labels, can tell.

Scores are calibrated first, on the reference data with its labels (isotonic regression, as NannyML
does), because a model's raw scores are often not probabilities (a boosted model's are pushed to the
extremes):

>>> estimator = PerformanceEstimator(threshold=0.5).fit(valid_scores, valid_labels)   # doctest: +SKIP
>>> estimator.estimate(window_scores)                                                 # doctest: +SKIP
Estimate(rows=5000, roc_auc=0.912, precision=0.71, recall=0.64, positive_rate=0.05)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.isotonic import IsotonicRegression

from mloop.errors import MalformedInput


@dataclass(frozen=True)
class Estimate:
    rows: int
    roc_auc: float | None  # None when the window cannot have both classes (every score 0 or every 1)
    precision: float | None  # None when no row is expected to be predicted positive
    recall: float | None
    positive_rate: float  # the expected share of positives

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected_metrics(probabilities: Any, threshold: float = 0.5) -> Estimate:
    """The expected ROC AUC, precision and recall of calibrated ``probabilities`` (see the module doc)."""
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if not len(p):
        raise MalformedInput("No finite score in the window: nothing to estimate from.")
    if (p < 0).any() or (p > 1).any():
        raise MalformedInput(
            "Scores must be probabilities in [0, 1]; calibrate them first (fit on the reference)."
        )
    positives, negatives = p.sum(), (1 - p).sum()
    predicted = p >= threshold
    tp, fp = p[predicted].sum(), (1 - p[predicted]).sum()
    precision = float(tp / (tp + fp)) if predicted.any() else None
    recall = float(tp / positives) if positives > 0 else None
    auc = None
    if positives > 0 and negatives > 0:
        order = np.argsort(-p, kind="stable")
        ranked = p[order]
        # Rows with equal scores are one step of the curve: group them, as roc_auc_score does with ties.
        distinct = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
        tpr = np.r_[0.0, np.cumsum(ranked)[distinct] / positives]
        fpr = np.r_[0.0, np.cumsum(1 - ranked)[distinct] / negatives]
        auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # the trapezoid rule
    return Estimate(len(p), auc, precision, recall, float(positives / len(p)))


class PerformanceEstimator:
    """Calibrates a model's scores on labelled reference data, then estimates each window's metrics."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._calibration: IsotonicRegression | None = None

    def fit(self, scores: Any, labels: Any) -> PerformanceEstimator:
        s = np.asarray(scores, dtype=np.float64).ravel()
        y = np.asarray(labels).ravel()
        if len(s) != len(y):
            raise MalformedInput(f"{len(s)} scores and {len(y)} labels: give one label per score.")
        keep = np.isfinite(s)
        s, y = s[keep], y[keep]
        classes = set(np.unique(y).tolist())
        if not classes <= {0, 1} or len(classes) < 2:  # True and False are 1 and 0
            raise MalformedInput(
                f"Calibration needs binary labels with both classes present; got {sorted(map(str, classes))}."
            )
        from sklearn.isotonic import IsotonicRegression  # here: importing scikit-learn costs a CLI ~1 s

        self._calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            s, y.astype(float)
        )
        return self

    def calibrated(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64).ravel()
        if self._calibration is None:
            return s
        return np.asarray(self._calibration.predict(s[np.isfinite(s)]))

    def estimate(self, scores: Any) -> Estimate:
        """The expected metrics of a window of raw model scores (calibrated if :meth:`fit` was called)."""
        return expected_metrics(self.calibrated(scores), self.threshold)


__all__ = ["Estimate", "PerformanceEstimator", "expected_metrics"]

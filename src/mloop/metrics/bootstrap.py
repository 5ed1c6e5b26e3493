"""How sure the gate is that a challenger beats the champion: a paired bootstrap of the metric's gain.

Both models score the same holdout rows; each resample draws rows with replacement and measures the
gain (challenger minus champion, or champion minus challenger for an error metric) on the same draw,
so the rows both find hard cancel out. ``low`` is the ``1 - confidence`` quantile of the gains: with
``Gate(confidence=0.9)`` a challenger passes only when that bound is at least ``min_gain``. On a holdout
of a few hundred rows with a handful of positives, an AUC gain of a few hundredths is well inside the
noise; the point estimate alone would promote a coin flip.

>>> r = paired_gain("roc_auc", "binary", y, new_scores, old_scores, confidence=0.9)  # doctest: +SKIP
>>> r["gain"], r["low"]                                                               # doctest: +SKIP
(0.041, 0.012)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from mloop.metrics import evaluation

Metric = Callable[[np.ndarray, np.ndarray], float]
_FAST: dict[str, Metric] = {
    "roc_auc": lambda y, s: float(roc_auc_score(y, s)),
    "pr_auc": lambda y, s: float(average_precision_score(y, s)),
    "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
    "mae": lambda y, p: float(np.mean(np.abs(y - p))),
}


def paired_gain(metric: str, task: str, truth: Any, new: Any, old: Any, *, lower_is_better: bool = False,
                confidence: float = 0.9, resamples: int = 500, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """``{"gain", "low", "high", "resamples"}``: the gain on all rows and its two-sided ``confidence``
    interval's bounds over the resamples that hold both classes (binary)."""
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (truth, new, old))
    measure = _measure(metric, task)
    sign = -1.0 if lower_is_better else 1.0
    gain = sign * (measure(y, a) - measure(y, b))
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if task == "binary" and np.unique(y[rows]).size < 2:
            continue
        gains.append(sign * (measure(y[rows], a[rows]) - measure(y[rows], b[rows])))
    if not gains:
        return {"gain": gain, "low": None, "high": None, "resamples": 0}
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(gains, [tail, 100 - tail])
    return {"gain": gain, "low": float(low), "high": float(high), "resamples": len(gains)}


def _measure(metric: str, task: str) -> Metric:
    if metric in _FAST:
        return _FAST[metric]
    if task == "binary":
        return lambda y, s: float(evaluation.classification_metrics(y, s)[metric])
    return lambda y, p: float(evaluation.regression_metrics(y, p)[metric])

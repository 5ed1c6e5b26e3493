"""Live performance of one window of predictions: realised metrics from the labels that have arrived,
the estimate from the scores alone (binary classifiers), label coverage, slices and fairness gaps.

Labels come back from the feedback API as JSON values. A binary model's label is ``true``/``false``,
0/1, or the strings ``"0"``/``"1"``/``"true"``/``"false"``; a regression's is a number; a multiclass
model's is one of its classes (by name, ``"cat"`` or ``3``; by index when the model names none), and
its predictions are class-probability lists, scored by accuracy, macro F1, per-class recall and log
loss (:mod:`mloop.metrics.multiclass`). Any other label is counted and described in ``problems`` and
left out of the metrics, never guessed at.

A window's realised metrics need ``min_labels`` labelled rows (and both classes for ROC AUC): below that
``realised`` is None and ``note`` says why, so three lucky labels never read as "AUC 1.0".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.metrics import evaluation, multiclass
from mloop.monitoring.estimation import PerformanceEstimator

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
KEPT = {  # the metrics a window keeps (slices keep the same)
    "binary": ("rows", "positives", "positive_rate", "threshold", "precision", "recall", "f1", "accuracy",
               "roc_auc", "pr_auc", "log_loss", "brier", "ece"),
    "regression": ("rows", "rmse", "mae", "r2"),
    "multiclass": ("rows", "accuracy", "macro_f1", "log_loss", "per_class_recall"),
}  # fmt: skip


def coerce_labels(labels: pd.Series, task: str) -> tuple[np.ndarray, int, list[Any]]:
    """``(values, bad, examples)``: labels as floats (NaN where missing or unusable for ``task``), how
    many were present but unusable, and up to three of those."""
    out = np.full(len(labels), np.nan)
    bad: list[Any] = []
    for i, value in enumerate(labels.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        number = _binary(value) if task == "binary" else _number(value)
        if number is None:
            bad.append(value)
        else:
            out[i] = number
    return out, len(bad), bad[:3]


def _binary(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        return 1.0 if text in _TRUE else 0.0 if text in _FALSE else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return float(value) if np.isfinite(value) else None


def scores(predictions: pd.Series) -> np.ndarray:
    """One float per prediction (NaN where the model answered something else, e.g. a list)."""
    values = pd.to_numeric(predictions, errors="coerce")
    return np.asarray(values, dtype=np.float64)


def predictions_of(predictions: pd.Series, classes: Sequence[str] | None) -> np.ndarray:
    """A multiclass model's ``(rows, classes)`` probabilities (NaN rows where it answered something
    else) when it has ``classes``; else :func:`scores`."""
    if classes:
        matrix = multiclass.class_matrix(predictions.tolist())
        if matrix.shape[1] == len(classes):
            return matrix
        return np.full((len(predictions), len(classes)), np.nan)
    return scores(predictions)


def window_performance(
    frame: pd.DataFrame,
    *,
    task: str,
    threshold: float = 0.5,
    slices: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    estimator: PerformanceEstimator | None = None,
    min_labels: int = 50,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The performance of the predictions in ``frame`` (columns ``prediction``, ``label``, and the input
    columns named by ``slices`` and ``sensitive``); ``label`` is missing (None) where none arrived.
    ``classes`` names a multiclass model's classes in the order of its probabilities."""
    raw = frame["label"] if "label" in frame else pd.Series([None] * len(frame), dtype=object)
    if task == "multiclass":
        matrix = multiclass.class_matrix(frame["prediction"].tolist()) if len(frame) else np.empty((0, 0))
        y = multiclass.label_indices(raw.tolist(), classes, matrix.shape[1])
        absent = raw.isna().to_numpy() if len(raw) else np.zeros(0, dtype=bool)
        unusable = [v for v, i, a in zip(raw.tolist(), y, absent, strict=True) if not a and np.isnan(i)]
        bad, examples = len(unusable), unusable[:3]
        s = (
            np.where(np.isfinite(matrix).all(axis=1), 0.0, np.nan)
            if matrix.size
            else np.full(len(frame), np.nan)
        )
    else:
        s = scores(frame["prediction"]) if len(frame) else np.empty(0)
        y, bad, examples = coerce_labels(raw, task)
    keep = np.isfinite(y) & np.isfinite(s)
    labelled = int(keep.sum())
    out: dict[str, Any] = {
        "rows": len(frame), "labelled": labelled, "coverage": labelled / len(frame) if len(frame) else None,
        "invalid_labels": bad, "problems": [], "realised": None, "estimated": None, "slices": {},
        "fairness": {}, "note": "",
    }  # fmt: skip
    if bad:
        expected = {"binary": "true/false or 0/1", "regression": "numbers"}.get(
            task, f"one of the classes {', '.join(map(str, classes))}" if classes else "class indices"
        )
        out["problems"].append(
            f"{bad} label(s) are not {expected} for a {task} model (for example "
            f"{', '.join(repr(v) for v in examples)}); they are left out. Send labels of the model's type."
        )
    if task == "binary" and estimator is not None and np.isfinite(s).any():
        finite = s[np.isfinite(s)]
        if ((finite >= 0) & (finite <= 1)).all():
            out["estimated"] = estimator.estimate(finite).to_dict()
    if not len(frame):
        out["note"] = "no predictions in this window"
        return out
    if labelled < min_labels:
        out["note"] = f"{labelled} labelled row(s); metrics need at least {min_labels}"
        return out
    if task == "multiclass":
        out["realised"] = _kept(multiclass.multiclass_metrics(y[keep], matrix[keep], classes), task)
        if slices or sensitive:
            out["problems"].append(
                "slices and fairness gaps are computed for binary and regression models only"
            )
        return out
    labels, predicted = y[keep], s[keep]
    part = frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)
    if task == "binary":
        metrics = evaluation.classification_metrics(labels, predicted, threshold=threshold)
    else:
        metrics = evaluation.regression_metrics(labels, predicted)
    out["realised"] = _kept(metrics, task)
    present = [c for c in slices if c in part.columns]
    missing = [c for c in [*slices, *sensitive] if c not in part.columns]
    if missing:
        out["problems"].append(f"no input column {', '.join(map(repr, missing))} to slice by in the log")
    if present:
        found = evaluation.by_slice(part, present, labels, predicted, task=task, threshold=threshold)
        out["slices"] = {c: {k: _kept(v, task) for k, v in groups.items()} for c, groups in found.items()}
    fair = [c for c in sensitive if c in part.columns]
    if fair and task == "binary":
        out["fairness"] = evaluation.fairness(part, fair, labels, predicted, threshold=threshold)
    return out


def _kept(metrics: dict[str, Any], task: str) -> dict[str, Any]:
    return {k: _plain(metrics.get(k)) for k in KEPT[task] if k in metrics}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

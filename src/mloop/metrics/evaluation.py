"""Evaluation metrics of a model on held-out data: overall, per slice, and fairness across groups.

Pure functions over numpy arrays or pandas Series; every result is plain JSON (``int``, ``float``,
``bool``, ``str``, ``None``; never a numpy type, never NaN: an undefined metric is ``None``).

>>> m = classification_metrics([0, 1, 1, 0], [0.1, 0.8, 0.25, 0.3])
>>> m["roc_auc"], m["recall"]
(0.75, 0.5)

Definitions that other code relies on:

- A row is predicted positive when ``score >= threshold``.
- ``precision``, ``recall`` and ``f1`` are 0.0 where their denominator is zero (scikit-learn's default).
- ``roc_auc`` and ``pr_auc`` (average precision, scikit-learn's step-wise definition) are ``None`` and
  ``single_class`` is True when ``y_true`` holds fewer than two classes (including no rows).
- ``log_loss`` (probabilities clipped to ``[eps, 1 - eps]``, eps of float64, as scikit-learn),
  ``brier`` and ``ece`` are ``None`` and ``probabilities`` is False when a score lies outside [0, 1].
- ``ece``, the expected calibration error: scores go to ``ECE_BINS`` equal-width bins, bin
  ``min(floor(score * 10), 9)``; ECE = sum over bins of ``(rows in bin / rows) * |mean label - mean
  score|`` in the bin; empty bins add nothing.
- Slices are cut as :mod:`mloop.metrics.slices` cuts them (quantile bins of a numeric column with many
  values, else one slice per value, ``"null"`` last).
- Fairness: a ``*_difference`` is the largest minus the smallest group rate (fairlearn's ``method=
  "between_groups"``); groups are formed as slices are.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import MloopError, SchemaError
from mloop.metrics import slices as slicing

ECE_BINS = 10
THRESHOLD_METRICS = ("f1", "accuracy", "balanced_accuracy")

_EPS = float(np.finfo(np.float64).eps)

ArrayLike = Any  # numpy array, pandas Series or a sequence of numbers


# -- public API ---------------------------------------------------------------------------------------


def classification_metrics(
    y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5
) -> dict[str, Any]:
    """Metrics of a binary classifier from labels (0/1 or bool) and scores (probabilities of class 1).

    Keys: ``rows``, ``positives``, ``positive_rate``, ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``,
    ``precision``, ``recall``, ``f1``, ``accuracy`` (at the threshold), ``roc_auc``, ``pr_auc``,
    ``single_class``, ``log_loss``, ``brier``, ``ece``, ``probabilities``. See the module docstring for
    the definitions; nothing here raises on a single class or no rows, the caller decides.

    >>> classification_metrics([1, 1], [0.9, 0.2])["single_class"]
    True
    """
    y = _binary_labels(y_true)
    s = _scores(y_score, len(y), "y_score")
    return _classification(y, s, _threshold(threshold))


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, Any]:
    """``rmse``, ``mae``, ``r2`` and ``rows`` of a regression.

    ``r2`` is ``None`` when it is undefined: fewer than two rows, or a constant ``y_true``.

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])["mae"]
    0.3333333333333333
    """
    t = _scores(y_true, None, "y_true")
    p = _scores(y_pred, len(t), "y_pred")
    return _regression(t, p)


def best_threshold(y_true: ArrayLike, y_score: ArrayLike, metric: str = "f1") -> float:
    """The decision threshold that maximises ``metric`` (one of ``THRESHOLD_METRICS``) on these rows.

    Use validation data, never the test set. Every split of the rows by score is tried; the threshold
    returned lies halfway between the lowest score predicted positive and the highest predicted
    negative, so scores near the validation scores fall on the same side. Ties go to the highest
    threshold. Raises :class:`MloopError` when ``y_true`` does not hold both classes.

    >>> best_threshold([0, 0, 1, 1], [0.1, 0.25, 0.75, 0.8])
    0.5
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(
            f"best_threshold's metric must be one of {', '.join(THRESHOLD_METRICS)}; got {metric!r}."
        )
    y = _binary_labels(y_true)
    s = _scores(y_score, len(y), "y_score")
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        raise MloopError(
            f"Cannot choose a threshold from {len(y)} validation rows with {pos} positive(s) and {neg} "
            "negative(s): both classes are needed. Use a larger or stratified validation split, or keep "
            "the default threshold 0.5."
        )
    distinct, tps, fps = _curve(y, s)
    # candidate j: the j highest distinct scores are predicted positive (j = 0: none of them)
    tp = np.concatenate(([0], tps)).astype(np.float64)
    fp = np.concatenate(([0], fps)).astype(np.float64)
    fn = pos - tp
    tn = neg - fp
    if metric == "f1":
        values = 2 * tp / (2 * tp + fp + fn)
    elif metric == "accuracy":
        values = (tp + tn) / len(y)
    else:
        values = (tp / pos + tn / neg) / 2
    j = int(np.argmax(values))  # first maximum: the highest threshold among ties
    if j == 0:
        return float(np.nextafter(distinct[0], np.inf))
    if j == len(distinct):
        return float(distinct[-1])
    low, high = float(distinct[j]), float(distinct[j - 1])
    middle = low / 2 + high / 2
    return middle if low < middle <= high else high


def by_slice(
    frame: pd.DataFrame,
    slices: list[str],
    y_true: ArrayLike | str,
    y_score: ArrayLike | str,
    *,
    task: str = "binary",  # "binary" or "regression", checked below
    threshold: float = 0.5,
    min_rows: int = 1,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics of each slice of ``frame``: ``{column: {slice label: metrics}}``.

    ``y_true`` and ``y_score`` (predictions for ``task="regression"``) are aligned with the rows of
    ``frame`` by position, or name columns of it. Slices with fewer than ``min_rows`` rows are left out.
    The metrics of a slice are those of :func:`classification_metrics` or :func:`regression_metrics`.

    >>> df = pd.DataFrame({"country": ["fr", "fr", "de", None]})
    >>> r = by_slice(df, ["country"], [0, 1, 1, 0], [0.2, 0.7, 0.9, 0.4])
    >>> list(r["country"]), r["country"]["fr"]["rows"]
    (['de', 'fr', 'null'], 2)
    """
    if task not in ("binary", "regression"):
        raise ValueError(f"by_slice's task must be 'binary' or 'regression'; got {task!r}.")
    if min_rows < 1:
        raise ValueError(f"by_slice's min_rows must be at least 1; got {min_rows}.")
    _check_columns(frame, slices, "slice")
    truth = _column_or_array(frame, y_true, "y_true")
    score = _column_or_array(frame, y_score, "y_score")
    if task == "binary":
        t = _binary_labels(truth)
        threshold = _threshold(threshold)
    else:
        t = _scores(truth, None, "y_true")
    s = _scores(score, len(t), "y_score")
    if len(t) != len(frame):
        raise ValueError(
            f"y_true has {len(t)} rows and the frame {len(frame)}; they must be aligned row by row."
        )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column in slices:
        out[column] = {}
        for label, rows in slicing.groups(frame[column]):
            if len(rows) < min_rows:
                continue
            if task == "binary":
                out[column][label] = _classification(t[rows], s[rows], threshold)
            else:
                out[column][label] = _regression(t[rows], s[rows])
    return out


def fairness(
    frame: pd.DataFrame,
    sensitive: list[str],
    y_true: ArrayLike | str,
    y_score: ArrayLike | str,
    *,
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Group fairness of a binary classifier for each sensitive column.

    For each column: ``demographic_parity_difference`` (largest minus smallest selection rate, the
    share of a group's rows predicted positive), ``equal_opportunity_difference`` (largest minus
    smallest true positive rate), ``groups`` (``{label: {"rows", "positives", "selection_rate",
    "true_positive_rate"}}``) and ``excluded_from_equal_opportunity``: the groups without positives,
    whose true positive rate is ``None`` and which are left out of that difference. A difference is
    ``None`` when no group has the rate defined, and 0.0 with a single group.

    >>> df = pd.DataFrame({"sex": ["f", "f", "m", "m"]})
    >>> fairness(df, ["sex"], [1, 0, 1, 0], [0.9, 0.6, 0.8, 0.1])["sex"]["demographic_parity_difference"]
    0.5
    """
    _check_columns(frame, sensitive, "sensitive")
    t = _binary_labels(_column_or_array(frame, y_true, "y_true"))
    s = _scores(_column_or_array(frame, y_score, "y_score"), len(t), "y_score")
    if len(t) != len(frame):
        raise ValueError(
            f"y_true has {len(t)} rows and the frame {len(frame)}; they must be aligned row by row."
        )
    predicted = s >= _threshold(threshold)
    out: dict[str, dict[str, Any]] = {}
    for column in sensitive:
        groups: dict[str, dict[str, Any]] = {}
        for label, rows in slicing.groups(frame[column]):
            y, p = t[rows], predicted[rows]
            positives = int(y.sum())
            groups[label] = {
                "rows": len(rows),
                "positives": positives,
                "selection_rate": float(p.mean()),
                "true_positive_rate": float((p & y).sum() / positives) if positives else None,
            }
        selection = [g["selection_rate"] for g in groups.values()]
        tpr = [g["true_positive_rate"] for g in groups.values() if g["true_positive_rate"] is not None]
        out[column] = {
            "demographic_parity_difference": max(selection) - min(selection) if selection else None,
            "equal_opportunity_difference": max(tpr) - min(tpr) if tpr else None,
            "groups": groups,
            "excluded_from_equal_opportunity": [
                k for k, g in groups.items() if g["true_positive_rate"] is None
            ],
        }
    return out


# -- metrics on validated arrays ----------------------------------------------------------------------


def _classification(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, Any]:
    n = len(y)
    pos = int(y.sum())
    neg = n - pos
    predicted = s >= threshold
    tp = int((predicted & y).sum())
    fp = int(predicted.sum()) - tp
    fn = pos - tp
    tn = neg - fp
    single_class = pos == 0 or neg == 0
    roc_auc = pr_auc = None
    if not single_class:
        roc_auc, pr_auc = _ranking(y, s, pos, neg)
    probabilities = n > 0 and float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    log_loss = brier = ece = None
    if probabilities:
        p = np.clip(s, _EPS, 1 - _EPS)
        log_loss = _num(-np.mean(np.where(y, np.log(p), np.log(1 - p))))
        brier = _num(np.mean((s - y) ** 2))
        ece = _ece(y, s)
    return {
        "rows": n,
        "positives": pos,
        "positive_rate": pos / n if n else None,
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / pos if pos else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "accuracy": (tp + tn) / n if n else None,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "single_class": single_class,
        "log_loss": log_loss,
        "brier": brier,
        "ece": ece,
        "probabilities": probabilities,
    }


def _regression(t: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    n = len(t)
    if n == 0:
        return {"rows": 0, "rmse": None, "mae": None, "r2": None}
    error = p - t
    ss_res = float(np.sum(error**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "rows": n,
        "rmse": _num(math.sqrt(ss_res / n)),
        "mae": _num(np.mean(np.abs(error))),
        "r2": _num(1 - ss_res / ss_tot) if t.min() < t.max() and ss_tot > 0 else None,
    }


def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (descending) and the true / false positives when predicting ``score >= each``."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    ends = np.concatenate((np.flatnonzero(np.diff(s_sorted)), [len(s) - 1]))
    tps = np.cumsum(y[order], dtype=np.int64)[ends]
    fps = ends + 1 - tps
    return s_sorted[ends], tps, fps


def _ranking(y: np.ndarray, s: np.ndarray, pos: int, neg: int) -> tuple[float | None, float | None]:
    _, tps, fps = _curve(y, s)
    tpr = np.concatenate(([0.0], tps / pos))
    fpr = np.concatenate(([0.0], fps / neg))
    roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    precision = tps / (tps + fps)
    pr_auc = float(np.sum(np.diff(tpr) * precision))  # recall is the true positive rate
    return _num(roc_auc), _num(pr_auc)


def _ece(y: np.ndarray, s: np.ndarray) -> float | None:
    bins = np.minimum((s * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    labels = np.bincount(bins, weights=y.astype(np.float64), minlength=ECE_BINS)
    scores = np.bincount(bins, weights=s, minlength=ECE_BINS)
    # (n_b / n) * |labels_b / n_b - scores_b / n_b| == |labels_b - scores_b| / n
    return _num(np.sum(np.abs(labels - scores)) / len(y))


# -- input validation ---------------------------------------------------------------------------------


def _binary_labels(y_true: ArrayLike) -> np.ndarray:
    """Labels as a bool array; 0/1 or True/False of any numeric or bool dtype are accepted."""
    if not isinstance(y_true, pd.Series):
        array = np.asarray(y_true)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"y_true must be one-dimensional; got shape {array.shape}.")
        y_true = pd.Series(array)
    missing = int(y_true.isna().sum())
    if missing:
        raise SchemaError(f"y_true has {missing} missing label(s); drop those rows before evaluating.")
    if pd.api.types.is_bool_dtype(y_true.dtype):
        return y_true.to_numpy(dtype=bool)
    try:
        values = y_true.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or not np.all((values == 0) | (values == 1)):
        found = sorted({str(v) for v in y_true.unique()})
        raise SchemaError(
            f"Binary classification needs labels 0/1 or True/False; y_true holds {found[:5]}"
            f"{' ...' if len(found) > 5 else ''}. Encode the positive class as 1 (for example "
            "`y == 'fraud'`), or train a regression."
        )
    return values == 1


def _scores(values: ArrayLike, rows: int | None, name: str) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index):
        if values.isna().any():
            missing = int(np.count_nonzero(pd.isna(values)))
            raise MloopError(f"{name} has {missing} missing value(s); every row needs one.")
        array: np.ndarray = values.to_numpy(dtype=np.float64)
    else:
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise MloopError(f"{name} must hold numbers; got {np.asarray(values).dtype} values.") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional; got shape {array.shape}. For predict_proba output pass the "
            "probability of the positive class, proba[:, 1]."
        )
    if rows is not None and len(array) != rows:
        raise ValueError(f"{name} has {len(array)} rows and y_true {rows}; they must be aligned row by row.")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise MloopError(f"{name} has {bad} NaN or infinite value(s); every row needs a finite number.")
    return array


def _threshold(threshold: float) -> float:
    if not isinstance(threshold, int | float | np.number) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number; got {threshold!r}.")
    return float(threshold)


def _column_or_array(frame: pd.DataFrame, values: ArrayLike | str, name: str) -> ArrayLike:
    if isinstance(values, str):
        _check_columns(frame, [values], name)
        return frame[values]
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)  # aligned by position, not by index
    return values


def _check_columns(frame: pd.DataFrame, columns: list[str], role: str) -> None:
    if isinstance(columns, str):
        raise ValueError(
            f"{role} columns must be a list of names; got the string {columns!r}, use [{columns!r}]."
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{role} column(s) {missing} are not in the evaluation data, which has {list(frame.columns)}. "
            "Fix the names, or add the columns to the training set."
        )


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None

"""Evaluation of a multiclass classifier from its class-probability matrix: overall and per slice.

Plain JSON like :mod:`mloop.metrics.evaluation` (an undefined metric is ``None``, never NaN):

- ``accuracy``: share of rows whose most probable class is the label;
- ``macro_f1``: the mean F1 over the classes (scikit-learn's ``average="macro"`` over every class the
  model knows, 0.0 for a class never predicted nor present);
- ``log_loss``: probabilities clipped as scikit-learn does, over every class the model knows;
- ``recall``: per class (its label as text), ``None`` for a class with no row in ``y_true``.

>>> m = multiclass_metrics(["a", "b", "c"], [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]],
...                        classes=["a", "b", "c"])
>>> m["accuracy"], m["recall"]["c"]
(0.6666666666666666, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, log_loss

from mloop.errors import SchemaError
from mloop.metrics.evaluation import _groups as slice_groups  # the slices by_slice cuts, for the same labels


def multiclass_metrics(y_true: Any, proba: Any, *, classes: Sequence[Any]) -> dict[str, Any]:
    """``rows``, ``classes``, ``accuracy``, ``macro_f1``, ``log_loss`` and per-class ``recall`` of the
    probability matrix ``proba`` (one column per class, in ``classes`` order) against labels ``y_true``."""
    labels = np.asarray(y_true)
    matrix = np.asarray(proba, dtype=np.float64)
    known = np.asarray(classes)
    if matrix.ndim != 2 or matrix.shape != (len(labels), len(known)):
        raise SchemaError(
            f"Multiclass scores must be a matrix of one row per label and one column per class: expected "
            f"({len(labels)}, {len(known)}), got {matrix.shape}."
        )
    out: dict[str, Any] = {"rows": len(labels), "classes": [str(c) for c in known]}
    if len(labels) == 0:
        return out | {"accuracy": None, "macro_f1": None, "log_loss": None,
                      "recall": {str(c): None for c in known}}  # fmt: skip
    predicted = known[matrix.argmax(axis=1)]
    out["accuracy"] = float(np.mean(predicted == labels))
    out["macro_f1"] = float(f1_score(labels, predicted, labels=known, average="macro", zero_division=0))
    # float32 softmax rows sum to 1 within rounding only; scikit-learn warns on that, so renormalise.
    clipped = np.clip(matrix, 0.0, 1.0)
    sums = clipped.sum(axis=1, keepdims=True)
    clipped = np.divide(clipped, sums, out=clipped, where=np.abs(sums - 1.0) < 1e-3)
    out["log_loss"] = float(log_loss(labels, clipped, labels=known))
    out["recall"] = {
        str(c): (float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None) for c in known
    }
    return out


def multiclass_by_slice(
    frame: pd.DataFrame, slices: Sequence[str], y_true: Any, proba: Any, *, classes: Sequence[Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`multiclass_metrics` of each slice of ``frame`` (rows aligned by position), sliced as
    :func:`mloop.metrics.evaluation.by_slice` slices: ``{column: {slice label: metrics}}``."""
    labels, matrix = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    return {
        column: {
            label: multiclass_metrics(labels[rows], matrix[rows], classes=classes)
            for label, rows in slice_groups(frame[column].reset_index(drop=True))
        }
        for column in slices
    }


__all__ = ["multiclass_by_slice", "multiclass_metrics"]

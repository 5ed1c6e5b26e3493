"""Multiclass quality: labels against a class-probability matrix ``(rows, classes)``.

The predicted class of a row is the column of its highest probability (the first on a tie, as
``numpy.argmax``). Labels are class *indices* here (0 to classes - 1, or -1 for a label that is none of
the model's classes: always wrong); :func:`label_indices` maps labels as users send them (the class
names, or their indices when the model has no names) to indices, and :func:`of_labels` does both.
Training, tuning, the loop's gate and monitoring all measure with these, so one model has one accuracy.

- ``accuracy``: the share of rows whose predicted class is the label.
- ``macro_f1``: the unweighted mean over the classes of F1 (a class never labelled nor predicted counts
  as 0, as ``sklearn.metrics.f1_score(average="macro", labels=range(classes), zero_division=0)``).
- ``per_class_recall``: ``{class: recall}``; None for a class no row is labelled with.
- ``log_loss``: the mean negative log probability of the label, probabilities clipped to [1e-15, 1]
  (a label outside the classes has probability 0, so 1e-15).

>>> m = multiclass_metrics([0, 1, 2, 2], [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
>>> m["accuracy"], m["per_class_recall"]
(0.75, {'0': 1.0, '1': 1.0, '2': 0.5})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

EPS = 1e-15


def class_matrix(values: Any) -> np.ndarray:
    """``values`` (a matrix, or one list of probabilities per row) as a float64 ``(rows, classes)``
    array; rows that are not a list of the most common length are NaN."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        matrix = values.astype(np.float64, copy=False)
        if matrix.ndim != 2:
            raise ValueError(f"Expected a (rows, classes) matrix of probabilities; got shape {matrix.shape}.")
        return matrix
    rows = list(values)
    lengths = [len(v) if isinstance(v, list | tuple | np.ndarray) else 0 for v in rows]
    sized = [n for n in lengths if n]
    width = max(sorted(set(sized)), key=sized.count) if sized else 0
    out = np.full((len(rows), width), np.nan)
    for i, (value, length) in enumerate(zip(rows, lengths, strict=True)):
        if length == width and width:
            try:
                out[i] = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue
    return out


def label_indices(labels: Sequence[Any], classes: Sequence[Any] | None, width: int) -> np.ndarray:
    """Each label's class index as a float (NaN where missing or not a class). With ``classes`` a label
    matches the class whose text is the same (``"3"`` and ``3`` match); without, integers 0 to width - 1
    are the indices."""
    out = np.full(len(labels), np.nan)
    lookup = {str(c): i for i, c in enumerate(classes)} if classes is not None else None
    for i, label in enumerate(labels):
        if label is None or isinstance(label, bool) or (isinstance(label, float) and not np.isfinite(label)):
            continue
        if lookup is not None:
            key = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label)
            index = lookup.get(key)
        elif isinstance(label, int | np.integer) or (isinstance(label, float) and label.is_integer()):
            index = int(label) if 0 <= int(label) < width else None
        else:
            index = None
        if index is not None:
            out[i] = index
    return out


def multiclass_metrics(
    y_true: Any, probabilities: Any, classes: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class recall and log loss of ``probabilities`` for the class indices
    ``y_true`` (see the module); ``classes`` names the columns in ``per_class_recall`` (default: their
    indices)."""
    matrix = class_matrix(probabilities)
    y = np.asarray(y_true, dtype=np.int64)
    rows, width = matrix.shape
    if len(y) != rows:
        raise ValueError(f"{len(y)} labels for {rows} rows of probabilities: give one label per row.")
    if rows == 0:
        raise ValueError("multiclass_metrics needs at least one row.")
    if ((y < -1) | (y >= width)).any():
        raise ValueError(
            f"Labels must be class indices 0 to {width - 1} (or -1 for none of them); map them with label_indices first."
        )
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(width)]
    predicted = np.argmax(matrix, axis=1)
    known = y >= 0
    labelled = np.bincount(y[known], minlength=width)
    chosen = np.bincount(predicted, minlength=width)
    right = np.bincount(y[predicted == y], minlength=width)
    recall = np.divide(right, labelled, out=np.zeros(width), where=labelled > 0)
    precision = np.divide(right, chosen, out=np.zeros(width), where=chosen > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(width), where=both > 0)
    picked = np.where(known, matrix[np.arange(rows), np.maximum(y, 0)], 0.0)
    return {
        "rows": rows,
        "classes": width,
        "accuracy": float(np.mean(predicted == y)),
        "macro_f1": float(f1.mean()),
        "log_loss": float(-np.mean(np.log(np.clip(picked, EPS, 1.0)))),
        "per_class_recall": {
            name: (float(recall[i]) if labelled[i] else None) for i, name in enumerate(names)
        },
    }


def of_labels(y_true: Any, probabilities: Any, classes: Sequence[Any]) -> dict[str, Any]:
    """:func:`multiclass_metrics` of labels as the data holds them (the class values, ``classes`` in
    the probability columns' order); a label that is none of the classes counts as wrong. No rows: every
    metric None, as plain JSON."""
    labels = list(np.asarray(y_true, dtype=object))
    if not labels:
        return {"rows": 0, "classes": len(classes), "accuracy": None, "macro_f1": None, "log_loss": None,
                "per_class_recall": {str(c): None for c in classes}}  # fmt: skip
    index = label_indices(labels, classes, len(classes))
    return multiclass_metrics(np.nan_to_num(index, nan=-1).astype(np.int64), probabilities, classes)


__all__ = ["class_matrix", "label_indices", "multiclass_metrics", "of_labels"]

"""Evaluation of a multiclass classifier per slice, with the metrics of :mod:`mloop.metrics.multiclass`
(plain JSON: an undefined metric is ``None``, never NaN).

>>> import pandas as pd
>>> frame = pd.DataFrame({"ink": ["light", "heavy", "light"]})
>>> m = multiclass_by_slice(frame, ["ink"], ["a", "b", "c"],
...                         [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3]], classes=["a", "b", "c"])
>>> m["ink"]["light"]["accuracy"], m["ink"]["heavy"]["per_class_recall"]["b"]
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.metrics.multiclass import of_labels
from mloop.metrics.slices import groups


def multiclass_by_slice(
    frame: pd.DataFrame, slices: Sequence[str], y_true: Any, proba: Any, *, classes: Sequence[Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`~mloop.metrics.multiclass.of_labels` of each slice of ``frame`` (rows aligned by position),
    sliced as :func:`mloop.metrics.evaluation.by_slice` slices: ``{column: {slice label: metrics}}``."""
    labels, matrix = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    return {
        column: {
            label: of_labels(labels[rows], matrix[rows], classes)
            for label, rows in groups(frame[column].reset_index(drop=True))
        }
        for column in slices
    }


__all__ = ["multiclass_by_slice"]

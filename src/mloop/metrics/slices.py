"""Slices of a column, as every evaluation cuts them: the rows of each slice, in slice order.

A numeric column (not bool) with more than ``SLICE_MAX_DISTINCT`` distinct values is cut into
``SLICE_QUANTILE_BINS`` quantile bins (edges: quantiles 0, 0.2, ..., 1 of its finite values, linear
interpolation, duplicates dropped), labelled ``"[lo, hi]"`` for the first and ``"(lo, hi]"`` for the
others (numbers written with 6 significant digits, more where two labels would collide). Any other
column slices by value, labelled ``str(value)`` (values that print the same are one slice). Missing values
(and non-finite numbers) form the slice ``"null"``, listed last.

>>> import pandas as pd
>>> [(label, rows.tolist()) for label, rows in groups(pd.Series(["b", None, "a", "b"]))]
[('a', [2]), ('b', [0, 3]), ('null', [1])]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SLICE_MAX_DISTINCT = 20
SLICE_QUANTILE_BINS = 5
NULL_SLICE = "null"


def groups(column: pd.Series) -> list[tuple[str, np.ndarray]]:
    """(label, row positions) of each slice of ``column``, in slice order, ``"null"`` last."""
    codes, labels = _codes(column)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(-1, len(labels) + 1))
    groups = [(label, order[bounds[k + 1] : bounds[k + 2]]) for k, label in enumerate(labels)]
    nulls = order[bounds[0] : bounds[1]]
    groups = [(label, rows) for label, rows in groups if len(rows)]
    if len(nulls):
        groups.append((NULL_SLICE, nulls))
    return groups


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A slice number per row (-1 for null) and the label of each slice number."""
    if not _is_numeric(column):
        return _value_codes(column)
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if len(np.unique(values[finite])) > SLICE_MAX_DISTINCT:
        edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, SLICE_QUANTILE_BINS + 1)))
        codes = np.searchsorted(edges[1:-1], values, side="left")  # right-closed bins
        return np.where(finite, codes, -1), _interval_labels(edges)
    codes, labels = _value_codes(column)
    return np.where(finite, codes, -1), labels  # an infinite value's slice stays empty and is dropped


def _value_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    try:
        codes, uniques = pd.factorize(column, sort=True)
    except TypeError:  # values of mixed types that do not compare
        codes, uniques = pd.factorize(column, sort=False)
    # values that print the same (1 and "1") are one slice
    labels: list[str] = []
    index: dict[str, int] = {}
    remap = np.empty(len(uniques), dtype=np.int64)
    for i, value in enumerate(uniques):
        label = str(value)
        if label not in index:
            index[label] = len(labels)
            labels.append(label)
        remap[i] = index[label]
    codes = np.asarray(codes, dtype=np.int64)
    if not labels:  # nothing but nulls
        return codes, labels
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), labels


def _interval_labels(edges: np.ndarray) -> list[str]:
    for digits in (6, 10, 17):
        text = [f"{e:.{digits}g}" for e in edges]
        if len(set(text)) == len(text):
            break
    return [f"{'[' if i == 0 else '('}{text[i]}, {text[i + 1]}]" for i in range(len(edges) - 1)]


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


__all__ = ["NULL_SLICE", "SLICE_MAX_DISTINCT", "SLICE_QUANTILE_BINS", "groups"]

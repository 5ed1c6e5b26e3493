"""Tensor values: one NumPy array per row, checked against a dtype and a per-row shape.

A tensor column of a signature (``ColumnSpec(..., shape=(1, 28, 28))``) holds one array per row; the batch
dimension is not part of ``shape``, and ``-1`` marks a dimension that may vary (a sequence's length). In a
DataFrame such a column is an ``object`` column of arrays; in JSON each value is a nested list.

:func:`convert` takes what a caller sent (arrays, nested lists, nulls) and returns arrays of exactly the
column's dtype and shape, or the reason it cannot, naming the first bad rows with the expected and the got
shape. Casting follows the scalar rules: integers become floats, floats become integers only when whole,
float64 narrows to float32 within range, booleans are neither numbers nor text, and NaN or infinity pass
only where ``allow_non_finite``. :func:`stack` makes the batch array a model is called with.

>>> values, problem = convert([[[1, 2]], [[3, 4]]], "float32", (1, 2))
>>> stack(values).shape, problem
((2, 1, 2), None)
>>> convert([[1, 2, 3]], "float32", (2,))[1]
'shape (3,) in row 0'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TENSOR_DTYPES = ("float32", "float64", "int32", "int64", "bool")
MAX_ELEMENTS = 16 * 1024 * 1024  # per row: a 64 MB float32 image is a file to score, not a request
_EXAMPLES = 3
_KINDS = {"float32": "f", "float64": "f", "int32": "i", "int64": "i", "bool": "b"}


def describe(dtype: str, shape: Sequence[int]) -> str:
    """``float32 tensor of shape (1, 28, 28)``; a variable dimension shows as ``-1``."""
    return f"{dtype} tensor of shape {tuple(shape)}"


def check_shape(name: str, dtype: str, shape: Sequence[int]) -> str | None:
    """Why ``shape``/``dtype`` cannot describe a tensor column, or None."""
    if dtype not in TENSOR_DTYPES:
        return f"column {name!r}: a tensor's dtype must be one of {', '.join(TENSOR_DTYPES)}, not {dtype!r}"
    if any(not isinstance(d, int) or isinstance(d, bool) or (d < 1 and d != -1) for d in shape):
        return (
            f"column {name!r}: shape {tuple(shape)} must list whole numbers >= 1 (or -1 for a dimension that "
            "varies)"
        )
    return None


def convert(
    values: Sequence[Any],
    dtype: str,
    shape: Sequence[int],
    *,
    nullable: bool = False,
    allow_non_finite: bool = False,
) -> tuple[list[Any], str | None]:
    """``values`` as arrays of ``dtype`` and ``shape`` (None kept where ``nullable``), or the problem."""
    arrays: list[Any] = []
    bad: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            if not nullable:
                bad.setdefault("null values", []).append(i)
            arrays.append(None)
            continue
        try:
            array = value if isinstance(value, np.ndarray) else np.asarray(value)
        except ValueError:  # NumPy refuses an inhomogeneous nested list
            bad.setdefault("a ragged nested list (rows of different lengths)", []).append(i)
            arrays.append(None)
            continue
        problem = _problem(array, shape)
        if problem is not None:
            bad.setdefault(problem, []).append(i)
        arrays.append(array)
    if bad:
        return arrays, _explain(bad)
    present = [a for a in arrays if a is not None]
    if not present:
        return arrays, None
    cast, problem = _cast(present, dtype, allow_non_finite)
    if problem is not None:
        return arrays, problem
    it = iter(cast)
    return [None if a is None else next(it) for a in arrays], None


def stack(values: Sequence[Any]) -> np.ndarray:
    """The batch array of a tensor column's values (every row the same shape)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values
    rows = list(values)
    if any(v is None for v in rows):
        raise ValueError("A tensor column with nulls cannot be stacked into one batch; fill or drop them.")
    shapes = {np.shape(v) for v in rows}
    if len(shapes) > 1:
        raise ValueError(
            f"The rows of one batch have different shapes ({', '.join(map(str, sorted(shapes)))}); pad them "
            "to one length or send them in separate requests."
        )
    return np.stack(rows) if rows else np.empty((0,))


def cells(rows: Sequence[Any] | np.ndarray) -> np.ndarray:
    """An object array holding one row per cell (an array, or None): a tensor column's values, as a
    DataFrame column or a Series holds them."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):  # one by one: NumPy would broadcast a list of equal-shape arrays
        out[i] = row
    return out


def dtype_name(array: np.ndarray) -> str | None:
    """The signature dtype an array's elements map to, or None (text, objects, complex numbers)."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "bool"
    if kind == "f":
        return "float32" if size <= 4 else "float64"
    if kind == "i" or kind == "u":
        return "int32" if size < 4 or (size == 4 and kind == "i") else "int64"
    return None


def spec_shape(arrays: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The per-row shape of several example rows: a dimension that differs between them becomes -1."""
    shapes = [np.shape(a) for a in arrays]
    if len({len(s) for s in shapes}) > 1:
        raise ValueError(f"The example rows have different numbers of dimensions: {sorted(set(shapes))}.")
    return tuple(dims[0] if len(set(dims)) == 1 else -1 for dims in zip(*shapes, strict=True))


def _problem(array: np.ndarray, shape: Sequence[int]) -> str | None:
    if array.ndim != len(shape) or any(
        want != -1 and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        return f"shape {array.shape}"
    if array.size > MAX_ELEMENTS:
        return f"{array.size:,} elements (at most {MAX_ELEMENTS:,} per value)"
    if array.dtype.kind not in "biuf":
        return f"{array.dtype} elements" if array.dtype.kind != "U" else "text elements"
    return None


def _cast(arrays: list[np.ndarray], dtype: str, allow_non_finite: bool) -> tuple[list[Any], str | None]:
    target = np.dtype(dtype)
    out: list[Any] = []
    for i, array in enumerate(arrays):
        kind = array.dtype.kind
        if array.dtype == target:
            converted = array
        elif _KINDS[dtype] == "b" or kind == "b":
            return out, f"{array.dtype} elements in row {i} (expected {dtype})"
        elif _KINDS[dtype] == "i":
            if kind == "f" and not (np.isfinite(array).all() and (array == np.round(array)).all()):
                return out, f"{array.dtype} elements that are not whole numbers in row {i} (expected {dtype})"
            info = np.iinfo(target)
            if array.size and (array.min() < info.min or array.max() > info.max):
                return out, f"values outside the {dtype} range in row {i}"
            converted = array.astype(target)
        else:
            if dtype == "float32" and kind == "f" and array.size:
                finite = array[np.isfinite(array)]
                if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
                    return out, f"values outside the float32 range in row {i}"
            converted = array.astype(target)
        if _KINDS[dtype] == "f" and not allow_non_finite and not np.isfinite(converted).all():
            return out, f"NaN or infinite elements in row {i} (send finite numbers)"
        out.append(converted)
    return out, None


def _explain(bad: dict[str, list[int]]) -> str:
    parts = []
    for problem, rows in bad.items():
        shown = ", ".join(str(r) for r in rows[:_EXAMPLES])
        more = f" and {len(rows) - _EXAMPLES} more" if len(rows) > _EXAMPLES else ""
        where = f"row{'s' if len(rows) > 1 else ''} {shown}{more}"
        parts.append(f"{problem} in {where}")
    return "; ".join(parts)

"""Nested lists as Arrow holds them (lists of lists, fixed-size lists, fixed-shape tensors, a struct of
each row's shape and values, or JSON text), measured per row at every depth with NumPy: sizes, raggedness,
nulls and the flattened leaves, without a Python loop over well-formed rows. :mod:`mloop.data.tensors`
checks a column's declared shape and element type on what this finds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class Nested:
    valid: np.ndarray  # per row: not null
    dims: list[np.ndarray]  # dims[k][i]: row i's size at depth k (the first sub-list's, below depth 0)
    known: list[np.ndarray]  # known[k][i]: row i has any element at depth k (else its size there is moot)
    ragged: np.ndarray  # per row: sub-lists of one depth differ in length
    nulls: np.ndarray  # per row: null sub-lists or null elements
    counts: np.ndarray  # per row: number of leaf values
    leaf: pa.Array  # every leaf value, row-major
    ndims: np.ndarray | None = None  # per row, where rows may differ in their number of dimensions


def parse_text(array: pa.Array, ndim: int) -> tuple[pa.Array, dict[int, str]]:
    """Text cells parsed as nested JSON lists; rows that do not parse, or have another depth, are null
    (with their problem) so the rest make one Arrow nested list. Slow (per row): for CSV and odd cells."""
    parsed: list[Any] = []
    errors: dict[int, str] = {}
    for i, text in enumerate(array.to_pylist()):
        if text is None:
            parsed.append(None)
            continue
        try:
            value = np.asarray(json.loads(text))
        except json.JSONDecodeError:
            errors[i] = "not a nested list of numbers"
            parsed.append(None)
            continue
        except (ValueError, TypeError):  # NumPy: an inhomogeneous nested list
            errors[i] = "ragged nested list"
            parsed.append(None)
            continue
        if value.dtype.kind not in "biuf" or value.ndim == 0:
            errors[i] = "not a nested list of numbers"
        elif value.ndim != ndim:
            errors[i] = f"shape {shape_text(value.shape)}"
        parsed.append(None if i in errors else value.tolist())
    try:
        return pa.array(parsed), errors
    except (
        pa.ArrowException,
        TypeError,
        ValueError,
        OverflowError,
    ):  # pragma: no cover - numbers mixed oddly
        return pa.array([None] * len(parsed), pa.null()), errors


def list_like(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def nest(array: pa.Array) -> Nested | None:
    """Sizes per depth and the flattened leaves of a nested list (or fixed-shape tensor) column."""
    n = len(array)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if isinstance(array.type, pa.FixedShapeTensorType):
        sizes = list(array.type.shape)
        zeros = np.zeros(n, bool)
        counts = valid * math.prod(sizes)
        fixed = [np.where(valid, s, 0) for s in sizes]
        return Nested(
            valid, fixed, [valid] * len(sizes), zeros, zeros.copy(), counts, array.storage.flatten()
        )
    if is_shaped(array.type):
        return nest_shaped(array)
    if not list_like(array.type):
        return None
    bounds = np.arange(n + 1, dtype=np.int64)  # row i's elements at the current depth: [b[i], b[i+1])
    dims: list[np.ndarray] = []
    known: list[np.ndarray] = []
    ragged = np.zeros(n, bool)
    nulls = np.zeros(n, bool)
    level: pa.Array = array
    depth = 0
    while list_like(level.type):
        lengths = pc.list_value_length(level).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        per_row = bounds[1:] - bounds[:-1]
        has = per_row > 0
        first = np.zeros(n, np.int64)
        first[has] = lengths[bounds[:-1][has]]
        if depth > 0:
            nulls |= segment_sum(~level.is_valid().to_numpy(zero_copy_only=False), bounds) > 0
            ragged |= segment_sum(lengths != np.repeat(first, per_row), bounds) > 0
        dims.append(first)
        known.append(has)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        bounds = offsets[bounds]
        level = level.flatten()
        depth += 1
    nulls |= segment_sum(~level.is_valid().to_numpy(zero_copy_only=False), bounds) > 0
    return Nested(valid, dims, known, ragged, nulls, bounds[1:] - bounds[:-1], level)


def is_shaped(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_struct(kind)
        and [kind.field(i).name for i in range(kind.num_fields)] == ["shape", "values"]
        and list_like(kind.field(0).type)
        and list_like(kind.field(1).type)
    )


def nest_shaped(array: pa.StructArray) -> Nested:
    """A struct of each row's ``shape`` and flattened ``values`` (what :func:`arrow_column` makes of
    arrays of different shapes)."""
    n = len(array)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    shape, values = array.field("shape"), array.field("values")
    # The children are read as they lie (a null row's included), so their offsets line up.
    ndims = pc.list_value_length(shape).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    sizes = np.concatenate([[0], np.cumsum(ndims)])
    flat = shape.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    depth = int(ndims[valid].max()) if valid.any() else 0
    ndims = np.where(valid, ndims, 0)
    dims = [np.full(n, -2, np.int64) for _ in range(depth)]  # -2: this row has no such dimension
    for k in range(depth):
        has: np.ndarray = ndims > k
        dims[k][has] = flat[sizes[:-1][has] + k]
    counts = pc.list_value_length(values).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    leaf = values.flatten()
    nulls = segment_sum(~leaf.is_valid().to_numpy(zero_copy_only=False), bounds(counts)) > 0
    ragged = np.zeros(n, bool)
    return Nested(valid, dims, [valid & (ndims == depth)] * depth, ragged, nulls, counts, leaf, ndims)


def segment_sum(flags: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment ``[bounds[i], bounds[i+1])``, how many ``flags`` are set: found from the set flags
    alone (usually none), so a clean column costs one scan."""
    hits = np.flatnonzero(flags)
    result = np.zeros(len(bounds) - 1, np.int64)
    if len(hits):
        np.add.at(result, np.searchsorted(bounds, hits, side="right") - 1, 1)
    return result


def bounds(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)])

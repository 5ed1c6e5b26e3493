"""Tensor columns: checking each row's array against a column's shape and element type, and storing it.

A tensor column's values arrive as Arrow: a fixed-shape tensor, (nested) fixed-size or variable lists, or
text holding a nested JSON list (CSV cells, odd DataFrame cells). :func:`check` validates every row at
once with NumPy on the nested list's lengths and flattened values (no per-row Python for well-formed
input), and returns the reason for each bad row and the good values in their stored form:

- a fixed shape is Arrow's canonical fixed-shape tensor extension type (``pa.fixed_shape_tensor``), a
  fixed-size list of the flattened values that Parquet stores as a list and Arrow reads back, with its
  shape, as a tensor whose values are one contiguous buffer: reading into NumPy is zero-copy;
- a variable first dimension is a list of fixed-size lists (``shape=(-1, 3)`` is ``list<fixed_size_list<
  element, 3>>``), one list per row.

Reading turns either back into a NumPy array of shape ``(n, *shape)`` (:func:`to_numpy`) or into per-row
arrays (:func:`cells`), the representation of a tensor column in a pandas DataFrame.
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

from mloop.data.nested import Nested, bounds, list_like, nest, parse_text, segment_sum, shape_text
from mloop.data.schema import Column

_ARROW = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "bool": pa.bool_(),
}
_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1), "uint8": (0, 255)}


@dataclass
class Checked:
    """The outcome of :func:`check`: ``reasons[i]`` is None for a good row; ``values`` holds every row in
    its stored type (bad and null rows are null)."""

    reasons: list[str | None]
    values: pa.Array

    @property
    def bad(self) -> int:
        return sum(r is not None for r in self.reasons)


def storage_type(column: Column) -> pa.DataType:
    """The Arrow type a tensor column is stored as."""
    assert column.shape is not None and column.element is not None
    element = _ARROW[column.element]
    if column.fixed:
        return pa.fixed_shape_tensor(element, column.shape)
    inner: pa.DataType = element
    for size in reversed(column.shape[1:]):
        inner = pa.list_(inner, size)
    return pa.list_(inner)


# ---- in: DataFrame cells to Arrow ------------------------------------------------------------------------


def arrow_column(cells: Sequence[Any]) -> pa.Array:
    """An object column of per-row arrays or nested lists as Arrow, without checking it against a schema:
    same-shape arrays become a fixed-shape tensor (one ``np.stack``); arrays of different shapes a struct
    of each one's ``shape`` and flattened ``values`` (one ``np.concatenate``); nested lists nested lists;
    and values no Arrow list can hold (ragged depth, text among numbers) their JSON text, which
    :func:`check` then explains row by row."""
    present = [c for c in cells if c is not None]
    arrays = [c for c in present if isinstance(c, np.ndarray)]
    if present and len(arrays) == len(present) and all(a.dtype.kind in "biuf" for a in arrays):
        first = arrays[0]
        usable = first.ndim >= 1 and first.size > 0 and first.dtype != np.float16
        if usable and all(a.shape == first.shape and a.dtype == first.dtype for a in arrays):
            return _stacked(cells, first)
        return _shaped(cells)
    try:
        return pa.array([c.tolist() if isinstance(c, np.ndarray) else c for c in cells])
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([None if c is None else _json(c) for c in cells], pa.string())


def _stacked(cells: Sequence[Any], first: np.ndarray) -> pa.Array:
    valid = np.array([c is not None for c in cells], dtype=bool)
    if valid.all():
        batch = np.stack(cells)
    else:
        batch = np.zeros((len(cells), *first.shape), dtype=first.dtype)
        batch[valid] = np.stack([c for c in cells if c is not None])
    flat = pa.array(batch.reshape(-1))
    mask = pa.array(~valid) if not valid.all() else None
    if first.dtype == np.bool_:
        # Arrow's tensor type has no NumPy view of booleans (bits); nested fixed-size lists keep the shape.
        inner: pa.Array = flat
        for size in reversed(first.shape[1:]):
            inner = pa.FixedSizeListArray.from_arrays(inner, size)
        return pa.FixedSizeListArray.from_arrays(inner, first.shape[0], mask=mask)
    storage = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(first.shape)), mask=mask)
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(flat.type, first.shape), storage)


def _shaped(cells: Sequence[Any]) -> pa.Array:
    """Arrays of any shapes as ``struct<shape: list<int64>, values: list<element>>``, built in bulk."""
    valid = np.array([c is not None for c in cells], dtype=bool)
    arrays = [c if c is not None else np.zeros(0) for c in cells]
    ndims = np.array([a.ndim for a in arrays], dtype=np.int64)
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    shapes = np.fromiter((d for a in arrays for d in a.shape), dtype=np.int64, count=int(ndims.sum()))
    values = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0)
    shape = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(ndims)]).astype(np.int32)), shapes
    )
    flat = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)),
                                    pa.array(values))  # fmt: skip
    return pa.StructArray.from_arrays([shape, flat], ["shape", "values"], mask=pa.array(~valid))


def _json(value: Any) -> str:
    def plain(item: Any) -> Any:
        if isinstance(item, np.ndarray):
            return item.tolist()
        if isinstance(item, np.generic):
            return item.item()
        return str(item)

    return json.dumps(value, default=plain)


# ---- check ---------------------------------------------------------------------------------------------


def check(column: Column, raw: pa.Array | pa.ChunkedArray, *, required: bool) -> Checked:
    """The reason each row of ``raw`` fails ``column`` (None where it passes), and the rows as stored."""
    assert column.shape is not None and column.element is not None
    array = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    n = len(array)
    reasons: list[str | None] = [None] * n
    name, shape, element = column.name, column.shape, column.element
    expected = f"expected shape {shape_text(shape)} of {element}"
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array, parse_errors = parse_text(array, len(shape))
        for i, problem in parse_errors.items():
            reasons[i] = f"{name}: {problem}, {expected}"
    nested = nest(array)
    if nested is None:
        kind = "null" if pa.types.is_null(array.type) else _type_name(array.type)
        present = array.is_valid().to_numpy(zero_copy_only=False)
        _flag(reasons, present, f"{name}: not a tensor (got {kind}), {expected}")
        if required:
            _flag(reasons, ~present, f"{name}: missing value (column may not be null)")
        return Checked(reasons, pa.nulls(n, storage_type(column)))
    if required:
        _flag(reasons, ~nested.valid, f"{name}: missing value (column may not be null)")
    _flag(reasons, nested.valid & nested.nulls, f"{name}: holds null elements, {expected}")
    _flag(reasons, nested.valid & nested.ragged, f"{name}: ragged nested list, {expected}")
    depth = len(nested.dims)
    if depth == len(shape):
        wrong = np.zeros(n, bool)
        for k, size in enumerate(shape):
            if size != -1:
                wrong |= nested.known[k] & (nested.dims[k] != size)
    else:
        wrong = np.ones(n, bool)
    if nested.ndims is not None:
        wrong |= nested.ndims != len(shape)
    for row in np.flatnonzero(nested.valid & wrong & ~nested.ragged & ~nested.nulls):
        got = tuple(int(d[row]) for d in nested.dims if d[row] != -2)
        reasons[row] = reasons[row] or f"{name}: shape {shape_text(got)}, {expected}"
    values, value_reasons = _cast(column, nested)
    for problem, rows in value_reasons:
        _flag(reasons, nested.valid & rows, f"{name}: {problem}")
    good = np.array([r is None for r in reasons], dtype=bool) & nested.valid
    return Checked(reasons, _store(column, values, nested, good))


def _flag(reasons: list[str | None], rows: np.ndarray, reason: str) -> None:
    for i in np.flatnonzero(rows):
        reasons[i] = reasons[i] or reason


def _cast(column: Column, nested: Nested) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The leaves as the element type, and (problem, rows) for each way a row's values do not fit."""
    element = column.element
    assert element is not None
    leaf, counts = nested.leaf, nested.counts
    n = len(counts)
    target = np.dtype(element)
    kind = leaf.type
    got = _type_name(kind)
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    if not numeric or (element == "bool" and not pa.types.is_boolean(kind)):
        if pa.types.is_null(kind):
            return np.zeros(len(leaf), target), []
        return np.zeros(len(leaf), target), [(f"{got} values, expected {element}", np.ones(n, bool))]
    if leaf.null_count:
        leaf = leaf.fill_null(False if pa.types.is_boolean(kind) else 0)
    values = leaf.to_numpy(zero_copy_only=False)
    problems: list[tuple[str, np.ndarray]] = []
    if element in _RANGES:
        low, high = _RANGES[element]
        floats = values.dtype.kind == "f"
        with np.errstate(invalid="ignore"):
            unfit = (values < low) | (values > high)
            if floats:
                unfit |= ~np.isfinite(values) | (values != np.trunc(values))
        rows = segment_sum(unfit, bounds(counts)) > 0
        what = "not whole numbers within" if floats else "out of the range of"
        problems.append((f"{got} values {what} {element}", rows))
        with np.errstate(invalid="ignore"):
            return np.where(unfit, 0, values).astype(target, copy=False), problems
    if values.dtype.kind == "f" and not column.allow_non_finite:
        rows = segment_sum(~np.isfinite(values), bounds(counts)) > 0
        problems.append(("not finite (NaN or infinity), set allow_non_finite to keep them", rows))
    with np.errstate(over="ignore", invalid="ignore"):
        cast = values.astype(target, copy=False)
    if element == "float32" and values.dtype.kind in "fiu" and values.dtype != np.float32:
        overflow = np.isfinite(values.astype(np.float64)) & ~np.isfinite(cast)
        problems.append(
            (f"{got} values out of the range of float32", segment_sum(overflow, bounds(counts)) > 0)
        )
    return cast, problems


def _type_name(kind: pa.DataType) -> str:
    return {"float": "float32", "double": "float64", "halffloat": "float16"}.get(str(kind), str(kind))


def _store(column: Column, values: np.ndarray, nested: Nested, good: np.ndarray) -> pa.Array:
    """Good rows in the column's stored type; every other row null."""
    assert column.shape is not None and column.element is not None
    n = len(good)
    element = _ARROW[column.element]
    inner_size = math.prod(column.shape[1:])
    counts = nested.counts
    if len(values) == int(counts.sum()) and good.all():
        kept = values
    else:
        kept = values[np.repeat(good, counts)] if len(values) else values
    flat = pa.array(kept, element)
    mask = None if good.all() else pa.array(~good)
    if column.fixed:
        size = math.prod(column.shape)
        if not good.all():
            full = np.zeros((n, size), values.dtype)
            full[good] = kept.reshape(-1, size)
            flat = pa.array(full.reshape(-1), element)
        storage = pa.FixedSizeListArray.from_arrays(flat, size, mask=mask)
        return pa.ExtensionArray.from_storage(storage_type(column), storage)
    inner: pa.Array = flat
    for size in reversed(column.shape[1:]):
        inner = pa.FixedSizeListArray.from_arrays(inner, size)
    lengths = np.where(good, counts // max(inner_size, 1), 0)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, inner, mask=mask)


# ---- out: stored Arrow to NumPy ------------------------------------------------------------------------


def to_numpy(column: Column, stored: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed-shape tensor column as one array of shape ``(n, *shape)``: zero-copy from Arrow when the
    column is one chunk of a numeric type (a copy otherwise). Null rows are refused: there is no array
    value for them."""
    assert column.shape is not None and column.fixed
    array = stored.combine_chunks() if isinstance(stored, pa.ChunkedArray) else stored
    if array.null_count:
        raise ValueError(
            f"tensor column {column.name!r} has {array.null_count} null row(s), which one array cannot hold; "
            "read it with read() (null rows are None there), or filter them out first"
        )
    if isinstance(array.type, pa.FixedShapeTensorType) and not pa.types.is_boolean(array.type.value_type):
        return np.asarray(array.to_numpy_ndarray())
    return _leaves(array).reshape(len(array), *column.shape)


def cells(column: Column, stored: pa.Array | pa.ChunkedArray) -> list[np.ndarray | None]:
    """Per-row arrays of the column's shape (None for a null row): a tensor column's pandas form."""
    assert column.shape is not None
    array = stored.combine_chunks() if isinstance(stored, pa.ChunkedArray) else stored
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    values = _leaves(array)
    rest = column.shape[1:]
    if column.fixed:
        batch = values.reshape(-1, *column.shape)
        rows = iter(batch)
        return [next(rows) if ok else None for ok in valid]
    lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
    parts = np.split(values.reshape(-1, *rest), np.cumsum(lengths)[:-1]) if len(array) else []
    return [part if ok else None for part, ok in zip(parts, valid, strict=True)]


def _leaves(array: pa.Array) -> np.ndarray:
    level = array.storage if isinstance(array.type, pa.FixedShapeTensorType) else array
    while list_like(level.type):
        level = level.flatten()
    return np.asarray(level.to_numpy(zero_copy_only=False))


def infer(array: pa.Array | pa.ChunkedArray, sample: int = 1000) -> tuple[tuple[int, ...], str] | None:
    """The shape and element type of a nested list column from its first rows: fixed if they agree,
    a variable first dimension if only it differs; None if the column is not numeric nested lists."""
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    nested = nest(array.slice(0, sample))
    names = {str(v): k for k, v in _ARROW.items()} | {"int8": "int32", "int16": "int32", "uint16": "int32",
                                                      "uint32": "int64", "halffloat": "float32"}  # fmt: skip
    element = names.get(str(nested.leaf.type)) if nested is not None else None
    if nested is None or element is None or not nested.valid.any() or nested.ragged.any():
        return None
    if nested.ndims is not None and len(np.unique(nested.ndims[nested.valid])) > 1:
        return None
    rows = nested.valid
    shape = []
    for k, dims in enumerate(nested.dims):
        seen = np.unique(dims[rows & nested.known[k]])
        if len(seen) > 1 and k > 0:
            return None
        shape.append(int(seen[0]) if len(seen) == 1 else -1)
    if any(d == 0 for d in shape):
        return None
    return tuple(shape), element

"""Tensor inputs in the prediction log: a Parquet map column instead of JSON text.

A tensor input (an image, an embedding, a sequence) reaches the log as a NumPy array, which the segment
line writes as a nested JSON list (orjson, ``OPT_SERIALIZE_NUMPY``), like any other value: nothing
changes on the request path. Compaction moves every input whose value is a non-empty nested list of
numbers out of the row's JSON ``inputs`` into the ``tensors`` column (:data:`TYPE`): per row a map from
the input's name to its ``shape`` and its ``values`` flattened, as float32 (monitoring compares
distributions; float32 holds integers exactly up to 2**24, token ids included). Reading gives the input
back as one NumPy array per row, of its shape, and :func:`matrix` gives a column as one ``(rows, d)``
array without a Python object per value.

>>> column, rest = to_arrow([{"image": [[0, 1], [2, 3]], "age": 4}])
>>> rest, column.to_pylist()[0][0][1]["shape"]
([{'age': 4}], [2, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VALUE = pa.struct([("shape", pa.list_(pa.int32())), ("values", pa.list_(pa.float32()))])
TYPE = pa.map_(pa.string(), VALUE)
_NUMBERS = "biuf"


def as_tensor(value: Any) -> np.ndarray | None:
    """``value`` as a float32 array when it is a non-empty, rectangular nested list of numbers; else None
    (a list of strings, a ragged list, a null inside: those stay JSON)."""
    if type(value) is not list or not value:
        return None
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        return None
    if array.dtype.kind not in _NUMBERS or array.size == 0:
        return None
    return array.astype(np.float32, copy=False)


def to_arrow(rows: Sequence[Mapping[str, Any]]) -> tuple[pa.MapArray, list[dict[str, Any]]]:
    """The ``tensors`` column of ``rows`` (one map per row, empty when it has no tensor) and the rows'
    other inputs, for the JSON column."""
    offsets = [0]
    keys: list[str] = []
    shapes: list[tuple[int, ...]] = []
    chunks: list[np.ndarray] = []
    rest: list[dict[str, Any]] = []
    for row in rows:
        kept = {}
        for name, value in row.items():
            array = as_tensor(value) if type(value) is list else None
            if array is None:
                kept[name] = value
            else:
                keys.append(name)
                shapes.append(array.shape)
                chunks.append(array.ravel())
        offsets.append(len(keys))
        rest.append(kept)
    return _column(offsets, keys, shapes, chunks), rest


def empty(rows: int) -> pa.MapArray:
    """A ``tensors`` column of ``rows`` empty maps."""
    return _column([0] * (rows + 1), [], [], [])


def _column(offsets: list[int], keys: list[str], shapes: list[tuple[int, ...]], chunks: list[np.ndarray]
            ) -> pa.MapArray:  # fmt: skip
    sizes = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    value_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    flat = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)
    ranks = np.fromiter((len(s) for s in shapes), dtype=np.int64, count=len(shapes))
    shape_offsets = np.concatenate([[0], np.cumsum(ranks)]).astype(np.int32)
    dims = np.fromiter((d for s in shapes for d in s), dtype=np.int32)
    items = pa.StructArray.from_arrays(
        [pa.ListArray.from_arrays(pa.array(shape_offsets), pa.array(dims, pa.int32())),
         pa.ListArray.from_arrays(pa.array(value_offsets), pa.array(flat, pa.float32()))],
        fields=list(VALUE),
    )  # fmt: skip
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), items)


def names(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """The tensor inputs present in ``column``, sorted."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0 or column.null_count == len(column):
        return []
    offsets = column.offsets  # absolute positions in ``keys``, which ignores a slice of the column
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    found = pc.unique(column.keys.slice(first, last - first)).to_pylist()
    return sorted(str(k) for k in found if k is not None)


def values(column: pa.ChunkedArray | pa.Array, name: str) -> list[np.ndarray | None]:
    """Input ``name`` of every row: a float32 array of its logged shape, or None where the row has none."""
    looked = _lookup(column, name)
    out: list[np.ndarray | None] = [None] * len(looked)
    if looked.null_count == len(looked):
        return out
    flat = pc.struct_field(looked, "values")
    shape = pc.struct_field(looked, "shape")
    valid = np.flatnonzero(looked.is_valid().to_numpy(zero_copy_only=False))
    offsets = flat.offsets.to_numpy()
    data = flat.values.to_numpy(zero_copy_only=False)
    shapes = shape.to_pylist()
    for i in valid:
        out[i] = data[offsets[i] : offsets[i + 1]].reshape(shapes[i])
    return out


def matrix(column: pa.ChunkedArray | pa.Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, present)``: input ``name`` as a ``(k, d)`` float32 array of the k rows that have it with
    d components (the rows whose size differs from the first one's are left out), and the boolean mask
    of those rows in ``column``."""
    looked = _lookup(column, name)
    present = looked.is_valid().to_numpy(zero_copy_only=False)
    flat = pc.struct_field(looked, "values")
    lengths = pc.list_value_length(flat).to_numpy(zero_copy_only=False)
    if not present.any():
        return np.empty((0, 0), dtype=np.float32), present
    d = int(lengths[np.flatnonzero(present)[0]])
    present &= lengths == d
    kept = pc.filter(flat, pa.array(present))
    data = pc.list_flatten(kept).to_numpy(zero_copy_only=False)
    return data.reshape(int(present.sum()), d), present


def _lookup(column: pa.ChunkedArray | pa.Array, name: str) -> pa.StructArray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    looked: pa.StructArray = pc.map_lookup(column, pa.scalar(name), "first")
    return looked

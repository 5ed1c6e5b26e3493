"""Tensor values of the prediction log: the Parquet column, read back per row or as one matrix."""

from __future__ import annotations

import doctest

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mloop.predictions import tensors


def test_doctests() -> None:
    assert doctest.testmod(tensors).failed == 0


@settings(max_examples=30)
@given(batch=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, max_side=4),
                        elements=st.floats(-1e6, 1e6, width=32)))  # fmt: skip
def test_arrays_round_trip_with_their_shape(batch: np.ndarray) -> None:
    rows = [{"x": a.tolist(), "n": i} for i, a in enumerate(batch)]
    column, rest = tensors.to_arrow(rows)
    assert rest == [{"n": i} for i in range(len(batch))] and tensors.names(column) == ["x"]
    back = tensors.values(column, "x")
    assert all(
        b is not None and b.shape == a.shape and np.array_equal(b, a)
        for a, b in zip(batch, back, strict=True)
    )
    matrix, present = tensors.matrix(column, "x")
    assert present.all() and np.array_equal(matrix, batch.reshape(len(batch), -1))


def test_rows_without_the_input_read_as_none() -> None:
    column, _ = tensors.to_arrow([{"a": [1, 2]}, {}, {"b": [[3]]}, {"a": [4, 5]}])
    assert [None if v is None else v.tolist() for v in tensors.values(column, "a")] == [
        [1, 2],
        None,
        None,
        [4, 5],
    ]
    matrix, present = tensors.matrix(column, "a")
    assert matrix.tolist() == [[1, 2], [4, 5]] and present.tolist() == [True, False, False, True]
    assert tensors.names(column.slice(2, 1)) == ["b"] and tensors.names(tensors.empty(3)) == []
    empty, none = tensors.matrix(tensors.empty(2), "a")
    assert empty.shape == (0, 0) and not none.any()


def test_only_rectangular_lists_of_numbers_are_tensors() -> None:
    assert tensors.as_tensor([[1, 2], [3, 4]]) is not None and tensors.as_tensor([True]) is not None
    for value in (["a"], [[1, 2], [3]], [], [1.0, None], "12", 3):
        assert tensors.as_tensor(value) is None

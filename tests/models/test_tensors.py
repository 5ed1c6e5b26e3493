"""Tensor columns in signatures: arrays or nested lists in, arrays of the declared dtype and shape out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mloop.errors import SchemaError
from mloop.models import tensors
from mloop.models.signature import ColumnSpec, Signature, SignatureError, infer, tensor_spec

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=shapes, rows=st.integers(1, 5), dtype=st.sampled_from(["float32", "float64"]))
def test_arrays_and_nested_lists_come_back_as_the_same_arrays(data, shape, rows, dtype):
    batch = data.draw(hnp.arrays(dtype, (rows, *shape), elements=st.floats(-1e6, 1e6, width=32)))
    sig = Signature([ColumnSpec("t", dtype, shape=shape)])
    for sent in (list(batch), batch.tolist()):
        out = sig.validate(pd.DataFrame({"t": pd.Series(list(sent), dtype=object)}))
        stacked = tensors.stack(out["t"])
        assert stacked.dtype == np.dtype(dtype) and stacked.shape == batch.shape
        np.testing.assert_array_equal(stacked, batch)


def test_integers_become_floats_and_whole_floats_become_integers():
    floats = Signature([ColumnSpec("t", "float32", shape=(2,))]).validate(pd.DataFrame({"t": [[1, 2]]}))
    assert floats["t"].iloc[0].dtype == np.float32
    ints = Signature([ColumnSpec("t", "int64", shape=(2,))])
    assert ints.validate(pd.DataFrame({"t": [[1.0, 2.0]]}))["t"].iloc[0].dtype == np.int64
    with pytest.raises(SignatureError, match="not whole numbers in row 0"):
        ints.validate(pd.DataFrame({"t": [[1.5, 2.0]]}))


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (np.zeros((2, 3), "float32"), "shape (2, 3) in row 0"),
        ([[1, 2], [3]], "ragged nested list"),
        (np.full((2, 2), np.nan, "float32"), "NaN or infinite elements in row 0"),
        ([["a", "b"], ["c", "d"]], "text elements in row 0"),
        (np.ones((2, 2), bool), "bool elements in row 0"),
        (None, "null values in row 0"),
        (np.full((2, 2), 1e300), "outside the float32 range"),
    ],
)
def test_a_bad_tensor_names_the_field_the_expected_and_the_got(value, got):
    sig = Signature([ColumnSpec("image", "float32", shape=(2, 2))])
    with pytest.raises(SignatureError) as caught:
        sig.validate(pd.DataFrame({"image": pd.Series([value], dtype=object)}))
    (problem,) = caught.value.problems
    assert problem.name == "image" and problem.expected == "float32 tensor of shape (2, 2)"
    assert got in problem.got


def test_a_variable_dimension_takes_any_length_but_one_batch_must_share_it():
    sig = Signature([ColumnSpec("seq", "float32", shape=(-1, 3))])
    out = sig.validate(pd.DataFrame({"seq": pd.Series([np.zeros((5, 3)), np.zeros((7, 3))], dtype=object)}))
    assert [a.shape for a in out["seq"]] == [(5, 3), (7, 3)]
    with pytest.raises(ValueError, match="different shapes"):
        tensors.stack(out["seq"])
    with pytest.raises(SignatureError, match=r"shape \(5, 4\)"):
        sig.validate(pd.DataFrame({"seq": pd.Series([np.zeros((5, 4))], dtype=object)}))


def test_signatures_with_tensors_round_trip_and_are_inferred_from_examples():
    frame = pd.DataFrame({"image": list(np.zeros((3, 1, 8, 8), "float32")), "age": [1.0, 2.0, 3.0]})
    sig = infer(frame, np.zeros((3, 10)))
    assert sig.inputs[0] == ColumnSpec("image", "float32", shape=(1, 8, 8))
    assert sig.inputs[1].shape is None
    assert Signature.from_dict(sig.to_dict()) == sig
    assert tensor_spec("seq", np.zeros((4, 50, 3), "float32"), dynamic=(0,)).shape == (-1, 3)


@pytest.mark.parametrize(
    ("dtype", "shape", "message"),
    [
        ("string", (2,), "dtype must be one of"),
        ("float32", (0,), "whole numbers >= 1"),
        ("float32", (-2,), ">= 1"),
    ],
)
def test_a_wrong_tensor_declaration_is_refused(dtype, shape, message):
    with pytest.raises(SchemaError, match=message):
        ColumnSpec("t", dtype, shape=shape)

"""The reference sample of tensor columns: bounded, reproducible, stored without pickle."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from mloop.errors import MalformedInput
from mloop.metrics import reference
from mloop.metrics.reference import reference_sample, sample_from_bytes, sample_to_bytes, tensor_columns


def test_doctests() -> None:
    assert doctest.testmod(reference).failed == 0


def test_a_bounded_reproducible_sample_of_every_tensor_column() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"image": list(rng.random((5000, 1, 4, 4), dtype=np.float32)),
                          "embedding": [list(v) for v in rng.random((5000, 3))], "age": np.arange(5000)})  # fmt: skip
    assert tensor_columns(frame) == ["image", "embedding"]
    sample = reference_sample(frame, seed=3)
    assert sample["image"].shape == (2000, 16) and sample["embedding"].shape == (2000, 3)
    again = reference_sample(frame, seed=3)
    assert all(np.array_equal(sample[k], again[k]) for k in sample)
    back = sample_from_bytes(sample_to_bytes(sample))
    assert back.keys() == sample.keys() and np.array_equal(back["image"], sample["image"])
    # the same rows for every column: row i of each is row i of the same frame row
    rows = {tuple(np.asarray(v, dtype=np.float32)) for v in frame["embedding"]}
    assert all(tuple(r) in rows for r in sample["embedding"][:10])


def test_nulls_are_left_out_and_mixed_sizes_refused() -> None:
    frame = pd.DataFrame({"x": [np.zeros(2), None, np.ones(2)]})
    assert reference_sample(frame)["x"].tolist() == [[0, 0], [1, 1]]
    with pytest.raises(MalformedInput, match="2 sizes"):
        reference_sample(pd.DataFrame({"x": [np.zeros(2), np.ones(3)]}))
    with pytest.raises(MalformedInput, match="not a reference sample"):
        sample_from_bytes(b"not an npz")

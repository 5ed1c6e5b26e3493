"""The edge runner's own rules, without a model: it reads outputs as mloop does and checks input shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mloop.models.edge import runner
from mloop.models.outputs import answer


@settings(max_examples=25, deadline=None)
@given(
    raw=hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), elements=st.floats(-30, 30)
    ),
    output=st.sampled_from(["values", "logits", "probabilities"]),
)
def test_the_runner_reads_outputs_as_mloop_does(raw: np.ndarray, output: str) -> None:
    np.testing.assert_allclose(runner.answer(raw, output), answer(raw, output), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    want=st.lists(st.sampled_from([-1, 1, 3, 4]), min_size=1, max_size=3),
    rows=st.integers(1, 5),
    free=st.integers(1, 6),
    axis=st.integers(0, 2),
)
def test_a_batch_passes_the_shape_check_only_when_every_row_has_the_model_shape(
    want: list[int], rows: int, free: int, axis: int
) -> None:
    shape = [w if w != -1 else free for w in want]
    runner._check_shape("tile", (rows, *shape), want)
    axis %= len(want)
    wrong = [*shape]
    wrong[axis] = shape[axis] + 1
    for bad in ((rows, *wrong) if want[axis] != -1 else None, tuple(shape), (rows, *shape, 1)):
        if bad is None:
            continue
        with pytest.raises(runner.EdgeError, match=r"Input 'tile' has shape .*; the model takes \(rows, "):
            runner._check_shape("tile", bad, want)


def test_normalize_applies_mean_and_std_along_the_band_axis() -> None:
    batch = np.ones((2, 3, 2, 2))
    out = runner.normalize(batch, {"mean": [1.0, 0.0, -1.0], "std": [1.0, 2.0, 4.0], "axis": 0})
    assert out.shape == batch.shape
    np.testing.assert_allclose(out[:, :, 0, 0], [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])

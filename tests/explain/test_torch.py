"""PyTorch models: Integrated Gradients from a zero baseline, its convergence delta reported per row; a
tensor column's attribution is the sum of its per-element map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.explain import ExplainError, explain
from mloop.explain.torch import TorchExplainer
from mloop.models.torch import TorchFlavour, TorchModel
from tests.explain.conftest import Data


def _mlp(outputs: int) -> torch.nn.Module:
    torch.manual_seed(outputs)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, outputs))


@pytest.fixture(scope="module")
def nets(data: Data) -> dict[int, TorchModel]:
    frame = data.X.astype(np.float32)
    return {k: TorchFlavour().prepare(_mlp(k), frame, task="classification")[0] for k in (1, 2, 3)}


def _raw(model: TorchModel, rows: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(model.module(torch.from_numpy(rows.to_numpy(np.float32))).numpy(), dtype=float)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1))
def test_ig_adds_up_to_the_logit_within_its_reported_delta(
    data: Data, nets: dict[int, TorchModel], seed: int
) -> None:
    rows = data.rows(seed).astype(np.float32)
    one, two = nets[1], nets[2]
    found = explain("torch", one, rows)
    assert (found.output, found.method, found.exact) == ("log_odds", "integrated_gradients", False)
    raw = _raw(one, rows)[:, 0]
    assert found.delta is not None and found.delta.max() < 1e-3
    # the reported delta is exactly how far the sum is off the model's own output
    np.testing.assert_allclose(np.abs(found.value - raw), found.delta, atol=1e-5)
    np.testing.assert_allclose(found.base_value, _raw(one, rows * 0)[:, 0], atol=1e-6)
    np.testing.assert_allclose(found.prediction, 1 / (1 + np.exp(-raw)), atol=1e-6)
    paired = explain("torch", two, rows)  # two logits: the log-odds of class 1 is their difference
    logits = _raw(two, rows)
    np.testing.assert_allclose(paired.value, logits[:, 1] - logits[:, 0], atol=1e-3)


def test_multiclass_explains_the_margin_of_a_class(data: Data, nets: dict[int, TorchModel]) -> None:
    rows = data.rows(3, n=6).astype(np.float32)
    logits = _raw(nets[3], rows)
    found = explain("torch", nets[3], rows, target=2)
    assert found.output == "margin" and found.target == [2] * 6
    np.testing.assert_allclose(found.value, logits[:, 2], atol=1e-3)
    predicted = explain("torch", nets[3], rows)
    assert predicted.target == list(logits.argmax(axis=1))
    with pytest.raises(ExplainError, match="target=7 is not one of the model's classes"):
        explain("torch", nets[3], rows, target=7)


def test_more_steps_shrink_the_delta_and_a_given_baseline_is_used(
    data: Data, nets: dict[int, TorchModel]
) -> None:
    rows = data.rows(4, n=20).astype(np.float32)
    coarse = TorchExplainer(n_steps=4).explain(nets[1], rows)
    fine = TorchExplainer(n_steps=64).explain(nets[1], rows)
    assert coarse.delta is not None and fine.delta is not None
    assert fine.delta.mean() < coarse.delta.mean()
    mean = data.X.mean().to_frame().T.astype(np.float32)
    found = TorchExplainer(baseline=mean).explain(nets[1], rows)
    np.testing.assert_allclose(found.base_value, _raw(nets[1], mean)[0, 0], atol=1e-6)


class _Cnn(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.out = torch.nn.Linear(4 * 6 * 6, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.conv(image)).flatten(1))


def test_an_image_column_is_one_attribution_with_its_pixel_map_kept(tmp_path: object) -> None:
    torch.manual_seed(0)
    images = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    made, frame = TorchFlavour().prepare(_Cnn(), images, task="classification")
    TorchFlavour().save(made, tmp_path)  # type: ignore[arg-type]
    loaded = TorchFlavour().load(tmp_path)  # type: ignore[arg-type]  # the exported program, as served
    found = explain("torch", loaded, frame)
    assert list(found.values.columns) == ["image"]
    assert found.maps is not None and found.maps["image"].shape == (4, 1, 8, 8)
    np.testing.assert_allclose(found.values["image"], found.maps["image"].sum(axis=(1, 2, 3)), rtol=1e-6)
    assert found.delta is not None and found.delta.shape == (4,)

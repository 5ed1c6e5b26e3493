"""The case's two PyTorch models: a small CNN that spots disease on image tiles, and a 1-D CNN that
predicts a field's yield from a season of daily readings.

Both are plain ``nn.Module``\\ s with fixed shapes and no data-dependent control flow, so ``torch.export``
takes them (the registry stores the exported program) and they export to ONNX for the edge and for
batch scoring with ONNX Runtime. The sequence model reads a mask beside its sequence: the days before a
field's first reading are padding, and a masked mean over time ignores them, so a short history is not
read as a long run of zeros.

>>> net = TileNet()                                  # (n, 4, 16, 16) reflectances -> (n, 2) logits
>>> model = YieldNet(features=5)                     # (n, days, 5) and (n, days) mask -> (n, 1) t/ha
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TileNet(nn.Module):
    """Two convolutions and a global average: enough for a blob of diseased tissue on 16x16 tiles."""

    def __init__(self, bands: int = 4, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(bands, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
        )  # fmt: skip
        self.head = nn.Linear(2 * width, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).flatten(1))


class YieldNet(nn.Module):
    """Convolutions over days (a week's receptive field, then a month's), a masked mean over the season,
    and a small head: yield in t/ha, one number per field."""

    def __init__(self, features: int, width: int = 32, scale: float = 10.0) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(features, width, 7, padding=3), nn.ReLU(),
            nn.Conv1d(width, width, 7, padding=9, dilation=3), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
        self.scale = scale  # yields are tens of t/ha: the head learns on a unit scale

    def forward(self, sequence: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen = mask.to(sequence.dtype)  # (n, days): 1 where a day holds readings
        hidden = self.conv(torch.nan_to_num(sequence).transpose(1, 2))  # (n, width, days)
        pooled = (hidden * seen[:, None, :]).sum(dim=2) / seen.sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.head(pooled) * self.scale  # (n, 1): a regressor's shape


def tile_classifier(*, epochs: int = 8, seed: int = 0, **options: Any) -> Any:
    """The disease classifier as mloop trains it: :class:`TileNet` in a tracked skorch net."""
    from mloop.training.torch import TorchClassifier

    return TorchClassifier(TileNet, max_epochs=epochs, lr=0.01, batch_size=64, seed=seed, **options)


def yield_regressor(features: int, *, epochs: int = 60, seed: int = 0, **options: Any) -> Any:
    """The yield model as mloop trains it: :class:`YieldNet` in a tracked skorch net."""
    from mloop.training.torch import TorchRegressor

    return TorchRegressor(YieldNet, module__features=features, max_epochs=epochs, lr=0.003, batch_size=32,
                          seed=seed, **options)  # fmt: skip


__all__ = ["TileNet", "YieldNet", "tile_classifier", "yield_regressor"]

"""The two models of benchmarks/deep_serving.py, shared by its set-up, its floor and MLflow's save.

- ``cnn``: a small CNN on scikit-learn's bundled digits (1x8x8 images, 10 classes): two 3x3 convolutions
  (16 and 32 channels), a 2x2 max-pool and two linear layers; it answers class probabilities (softmax).
- ``lstm``: a 2-layer LSTM (hidden 64) over sequences of length 50 with 8 features, answering one value
  (a regression head on the last step).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SEQ, FEATURES = 50, 8


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.features(image)), dim=1)


class SequenceLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 64, num_layers=2, batch_first=True)
        self.head = nn.Linear(64, 1)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(series)
        return self.head(out[:, -1, :]).squeeze(1)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits as float32 images (n, 1, 8, 8) scaled to [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None, :, :], data.target.astype(np.int64)


def trained_cnn(epochs: int = 15) -> DigitsCNN:
    torch.manual_seed(0)
    images, labels = digits()
    model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            optimiser.zero_grad()
            probabilities = model(x[i : i + 64])
            loss = nn.functional.nll_loss(torch.log(probabilities + 1e-9), y[i : i + 64])
            loss.backward()
            optimiser.step()
    return model.eval()


def sequences(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, SEQ, FEATURES)).astype(np.float32)


def lstm() -> SequenceLSTM:
    torch.manual_seed(0)
    return SequenceLSTM().eval()  # untrained: serving cost does not depend on the weights

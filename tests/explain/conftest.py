"""Small data sets shared by the explainer tests (built once per session: fitting is the slow part)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest


@dataclass(frozen=True)
class Data:
    X: pd.DataFrame
    binary: np.ndarray  # 0/1
    classes: np.ndarray  # three classes: "a", "b", "c"
    value: np.ndarray  # a regression target

    def rows(self, seed: int, n: int = 3) -> pd.DataFrame:
        """``n`` fresh rows (not the training ones), drawn like the training data but wider."""
        drawn = np.random.default_rng(seed).normal(scale=1.5, size=(n, self.X.shape[1]))
        return pd.DataFrame(drawn, columns=self.X.columns)


@pytest.fixture(scope="session")
def data() -> Data:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 6)), columns=["amount", "age", "hour", "score", "tenure", "noise"])
    logit = 1.5 * X["amount"] - X["age"] + 0.5 * X["hour"] * X["score"]
    binary = (logit + rng.normal(scale=0.5, size=300) > 0).astype(int).to_numpy()
    classes = np.array(["a", "b", "c"])[np.digitize(logit, [-0.7, 0.7])]
    value = (3 * X["amount"] + X["tenure"] ** 2 + rng.normal(scale=0.1, size=300)).to_numpy()
    return Data(X, binary, classes, value)

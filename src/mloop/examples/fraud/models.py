"""The demo's deliberately broken model: v3 converts amounts to euros with a rate table that lacks a
currency it was never trained on, so it fails in production on the first payment in that currency.

Offline it is as good as the booster it wraps (no such payment reaches its training set or holdout:
the ingestion schema quarantines them), so the gate passes it; the canary is what catches it.
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

RATES = {"EUR": 1.0, "GBP": 1.17, "USD": 0.92}  # no CHF: the bug


class CurrencyAwareClassifier(ClassifierMixin, BaseEstimator):
    """A LightGBM classifier on the amount in euros (``pay_amount`` times the rate of ``pay_currency``)."""

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.08, num_leaves: int = 31,
                 min_child_samples: int = 20, verbose: int = -1, random_state: int | None = None) -> None:  # fmt: skip
        self.n_estimators, self.learning_rate, self.num_leaves = n_estimators, learning_rate, num_leaves
        self.min_child_samples, self.verbose, self.random_state = min_child_samples, verbose, random_state

    def _inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        rate = [RATES[str(c)] for c in frame["pay_currency"]]  # KeyError on an unknown currency
        amount = frame["pay_amount"].astype(float) * np.asarray(rate)
        return frame.drop(columns=["pay_currency"]).assign(pay_amount=amount)

    def fit(self, frame: pd.DataFrame, y: Any) -> CurrencyAwareClassifier:
        self.booster_ = lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, verbose=self.verbose, random_state=self.random_state,
        ).fit(self._inputs(frame), y)  # fmt: skip
        self.classes_ = self.booster_.classes_
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster_.predict_proba(self._inputs(frame)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_[np.argmax(self.predict_proba(frame), axis=1)])

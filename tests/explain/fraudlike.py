"""A small fraud-like LightGBM model for counterfactual tests: card payments scored on amount, hour,
distance from home, country and device; large, night-time, far-away and tablet payments are riskier."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd

from mloop.models.signature import ColumnSpec

COUNTRIES = ("DE", "FR", "US")
DEVICES = ("desktop", "mobile", "tablet")
SPECS = [
    ColumnSpec("amount", "float64"),
    ColumnSpec("hour", "int64"),
    ColumnSpec("distance_km", "float64"),
    ColumnSpec("country", "string", categories=COUNTRIES),
    ColumnSpec("device", "string", categories=DEVICES),
]
SETTINGS: dict[str, Any] = {
    "threshold": 0.5,
    "want": "below",
    "features": {
        "amount": {"min": 0, "max": 5000, "direction": "down", "step": 1},
        "hour": {"min": 0, "max": 23},
        "distance_km": {"min": 0, "max": 500},
        "device": {},
        "country": {"immutable": True},
    },
}


def frame(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "amount": rng.gamma(2.0, 300.0, n).round(2),
        "hour": rng.integers(0, 24, n).astype("int64"),
        "distance_km": rng.exponential(60.0, n).round(1),
        "country": pd.Categorical(rng.choice(COUNTRIES, n), categories=COUNTRIES),
        "device": pd.Categorical(rng.choice(DEVICES, n), categories=DEVICES),
    })  # fmt: skip
    logit = x.amount / 350 + (x.hour < 6) * 2.0 + x.distance_km / 50 + (x.device == "tablet") * 1.5 - 4.5
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


def model() -> lightgbm.LGBMClassifier:
    x, y = frame()
    return lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, n_jobs=1, verbose=-1).fit(x, y)


def risky_rows(fitted: lightgbm.LGBMClassifier, count: int = 5) -> list[dict[str, Any]]:
    """Rows the model blocks (probability over 0.5), as plain JSON values."""
    x, _ = frame(300, seed=1)
    scores = fitted.predict_proba(x)[:, 1]
    rows = x.astype({"country": str, "device": str}).to_dict("records")
    blocked = [r for r, s in zip(rows, scores, strict=True) if s > 0.5]
    return [{**r, "hour": int(r["hour"])} for r in blocked[:count]]


def scorer(fitted: lightgbm.LGBMClassifier) -> Any:
    """A batch predict function over a frame of plain values (strings for the categories): the booster
    on category codes, as LightGBM reads a pandas categorical, without pandas' per-call cost."""
    booster = fitted.booster_

    def predict(rows: pd.DataFrame) -> np.ndarray:
        codes = [pd.Categorical(rows[c], categories=k).codes.astype(float) for c, k in
                 (("country", COUNTRIES), ("device", DEVICES))]  # fmt: skip
        codes = [np.where(c < 0, np.nan, c) for c in codes]
        numbers = rows[["amount", "hour", "distance_km"]].to_numpy(dtype=float)
        return np.asarray(booster.predict(np.column_stack([numbers, *codes]), num_threads=1))

    return predict

"""Small fitted models of every kind the flavours handle, shared by the flavour and registry tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Case:
    name: str
    flavour: str
    model: Any
    frame: pd.DataFrame
    expected: np.ndarray  # what the model itself answers, with the flavours' semantics
    shape: str  # "binary" | "multiclass" | "values"


def frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, rows),
            "age_days": rng.integers(0, 3000, rows).astype("int64"),
            "score": rng.normal(size=rows),
            "ratio": rng.uniform(size=rows),
        }
    )


def _lgbm_classifier() -> Case:
    import lightgbm as lgb

    X = frame()
    y = np.where(X.score + X.ratio > 0.5, "fraud", "ok")
    model = lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1).fit(X, y)
    return Case("lgbm-classifier", "lightgbm", model, X, model.predict_proba(X)[:, 1], "binary")


def _lgbm_multiclass() -> Case:
    import lightgbm as lgb

    X = frame()
    y = np.digitize(X.score, [-0.5, 0.5])
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, y)
    return Case("lgbm-multiclass", "lightgbm", model, X, model.predict_proba(X), "multiclass")


def _lgbm_regressor() -> Case:
    import lightgbm as lgb

    X = frame()
    model = lgb.LGBMRegressor(n_estimators=15, num_leaves=7, verbose=-1).fit(X, X.amount * 2 + X.score)
    return Case("lgbm-regressor", "lightgbm", model, X, model.predict(X), "values")


def _booster() -> Case:
    import lightgbm as lgb

    X = frame()
    data = lgb.Dataset(X, label=(X.score > 0).astype(int))
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1}, data, num_boost_round=10)
    return Case("booster", "lightgbm", booster, X, booster.predict(X), "binary")


def _sklearn_pipeline() -> Case:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = frame()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, (X.score > 0).astype(int))
    return Case("sklearn-pipeline", "sklearn", model, X, model.predict_proba(X)[:, 1], "binary")


def _sklearn_regressor() -> Case:
    from sklearn.ensemble import RandomForestRegressor

    X = frame()
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, X.amount)
    return Case("sklearn-regressor", "sklearn", model, X, model.predict(X), "values")


CASES: dict[str, Callable[[], Case]] = {
    "lgbm-classifier": _lgbm_classifier,
    "lgbm-multiclass": _lgbm_multiclass,
    "lgbm-regressor": _lgbm_regressor,
    "booster": _booster,
    "sklearn-pipeline": _sklearn_pipeline,
    "sklearn-regressor": _sklearn_regressor,
}
_built: dict[str, Case] = {}


def case(name: str) -> Case:
    """The fitted case ``name`` (fitted once per test session)."""
    if name not in _built:
        _built[name] = CASES[name]()
    return _built[name]

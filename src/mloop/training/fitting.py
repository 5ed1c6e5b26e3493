"""Fitting a model on a training set: seeds, categorical columns, LightGBM's early stopping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

EARLY_STOPPING_ROUNDS = 50


@dataclass
class FitInfo:
    best_iteration: int | None = None
    curve: list[float] = field(default_factory=list)  # the validation metric per boosting round
    params: dict[str, Any] = field(default_factory=dict)


def is_lightgbm(model: Any) -> bool:
    return type(model).__module__.startswith("lightgbm")


def seeded(model: Any, seed: int, params: dict[str, Any] | None = None) -> Any:
    """A fresh, unfitted copy of ``model`` with ``params`` and every seed it accepts set to ``seed``;
    LightGBM is also made deterministic, so the same data gives the same model."""
    copy = clone(model)
    settings = dict(params or {})
    available = copy.get_params()
    for name in ("random_state", "seed"):
        if name in available and name not in settings:
            settings[name] = seed
    if is_lightgbm(copy):
        settings.setdefault("deterministic", True)
        settings.setdefault("force_row_wise", True)
        settings.setdefault("verbosity", -1)
    unknown = [k for k in settings if k not in available and not is_lightgbm(copy)]
    if unknown:
        from mloop.errors import SchemaError

        raise SchemaError(f"{type(copy).__name__} has no parameter(s) {unknown}; it has {sorted(available)}.")
    return copy.set_params(**settings)


def categories(frame: pd.DataFrame, features: list[str]) -> dict[str, list[Any]]:
    """The categories of the text columns, learnt from the training split."""
    out = {}
    for column in features:
        series = frame[column]
        if (
            isinstance(series.dtype, pd.CategoricalDtype)
            or series.dtype == object
            or pd.api.types.is_string_dtype(series)
        ):
            out[column] = sorted(str(v) for v in series.dropna().unique())
    return out


def prepare(frame: pd.DataFrame, features: list[str], cats: dict[str, list[Any]]) -> pd.DataFrame:
    """The model's input: the feature columns, text as categoricals with the training categories."""
    data = frame[features].copy()
    for column, values in cats.items():
        data[column] = pd.Categorical(data[column].astype("string").astype(object), categories=values)
    return data


def fit(
    model: Any, x_train: pd.DataFrame, y_train: np.ndarray, x_valid: pd.DataFrame, y_valid: np.ndarray
) -> FitInfo:
    """Fit ``model`` in place; LightGBM stops early on the validation split."""
    info = FitInfo(params=dict(model.get_params()))
    if is_lightgbm(model):
        import lightgbm

        callbacks = [
            lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
            lightgbm.log_evaluation(0),
        ]
        model.fit(x_train, y_train, **eval_arguments(model, x_valid, y_valid), callbacks=callbacks)
        best = getattr(model, "best_iteration_", None)
        info.best_iteration = int(best) if best else None
        results = getattr(model, "evals_result_", None) or {}
        first: dict[str, list[float]] = next(iter(results.values()), {})
        info.curve = [float(v) for v in next(iter(first.values()), [])]
    else:
        model.fit(x_train, y_train)
    return info


def eval_arguments(model: Any, x_valid: pd.DataFrame, y_valid: np.ndarray) -> dict[str, Any]:
    """The validation set as this LightGBM version wants it (eval_X/eval_y since 4.6, eval_set before)."""
    import inspect

    if "eval_X" in inspect.signature(model.fit).parameters:
        return {"eval_X": (x_valid,), "eval_y": (y_valid,)}
    return {"eval_set": [(x_valid, y_valid)]}


def predict_scores(model: Any, x: pd.DataFrame, task: str) -> np.ndarray:
    """Probability of the positive class for binary tasks; predicted values for regression."""
    if task == "binary" and hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x))[:, 1]
    return np.asarray(model.predict(x), dtype=float)

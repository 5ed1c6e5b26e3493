"""Fitting a model on a training set: seeds, categorical columns, LightGBM's early stopping, the
validation split of a torch model (:mod:`mloop.training.torch`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

EARLY_STOPPING_ROUNDS = 50
RANKING_EVAL_AT = 10  # a ranker stops early on the validation NDCG at this cut-off


@dataclass
class FitInfo:
    best_iteration: int | None = None
    curve: list[float] = field(default_factory=list)  # the validation metric per boosting round
    epochs: dict[str, list[float]] = field(default_factory=dict)  # a torch model's history, per epoch
    params: dict[str, Any] = field(default_factory=dict)


def is_lightgbm(model: Any) -> bool:
    return type(model).__module__.startswith("lightgbm")


def is_torch(model: Any) -> bool:
    """A skorch net (mloop's TorchClassifier/TorchRegressor or skorch's own), without importing torch."""
    return any(cls.__module__.startswith("skorch.") for cls in type(model).__mro__)


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
    # skorch takes routed parameters of its parts (module__hidden, optimizer__weight_decay) and checks them.
    unknown = [k for k in settings if k not in available and not is_lightgbm(copy)
               and not (is_torch(copy) and "__" in k)]  # fmt: skip
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
    model: Any,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> FitInfo:
    """Fit ``model`` in place; LightGBM stops early on the validation split. ``groups``: the query sizes
    of the train and validation rows (contiguous queries) for a ranker, which then stops early on the
    validation NDCG@10."""
    info = FitInfo(params=dict(model.get_params()))
    if is_lightgbm(model):
        import lightgbm

        callbacks = [
            lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
            lightgbm.log_evaluation(0),
        ]
        extra: dict[str, Any] = {}
        if groups is not None:
            import inspect

            if "group" not in inspect.signature(model.fit).parameters:
                _not_a_ranker(model)
            extra = {"group": groups[0], "eval_group": [groups[1]], "eval_at": [RANKING_EVAL_AT]}
        model.fit(x_train, y_train, **eval_arguments(model, x_valid, y_valid), callbacks=callbacks, **extra)
        best = getattr(model, "best_iteration_", None)
        info.best_iteration = int(best) if best else None
        results = getattr(model, "evals_result_", None) or {}
        first: dict[str, list[float]] = next(iter(results.values()), {})
        info.curve = [float(v) for v in next(iter(first.values()), [])]
    elif is_torch(model):
        model.fit(x_train, y_train, X_valid=x_valid, y_valid=y_valid)
        info.epochs = epoch_history(model)
        losses = info.epochs.get("valid_loss", [])
        info.best_iteration = int(np.argmin(losses)) + 1 if losses else None
    else:
        if groups is not None:
            _not_a_ranker(model)
        model.fit(x_train, y_train)
    return info


def query_sizes(queries: pd.Series) -> np.ndarray:
    """The sizes of the runs of equal query ids, in order: LightGBM's ``group`` for contiguous queries."""
    values = queries.to_numpy()
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return np.diff(np.r_[starts, len(values)])


def _not_a_ranker(model: Any) -> None:
    from mloop.errors import SchemaError

    raise SchemaError(
        f"A pipeline with group= trains a learning-to-rank model on query groups; {type(model).__name__} "
        "is not one. Use lightgbm.LGBMRanker(objective='lambdarank'), or leave group out."
    )


def eval_arguments(model: Any, x_valid: pd.DataFrame, y_valid: np.ndarray) -> dict[str, Any]:
    """The validation set as this LightGBM version wants it (eval_X/eval_y since 4.6, eval_set before)."""
    import inspect

    if "eval_X" in inspect.signature(model.fit).parameters:
        return {"eval_X": (x_valid,), "eval_y": (y_valid,)}
    return {"eval_set": [(x_valid, y_valid)]}


def epoch_history(model: Any) -> dict[str, list[float]]:
    """A skorch net's per-epoch numbers (train_loss, valid_loss, valid_acc, ...) as lists by name."""
    skipped = {"epoch", "batches", "dur", "train_batch_count", "valid_batch_count"}
    names = [k for k in (model.history[-1] if len(model.history) else {}) if k not in skipped]
    return {
        name: [float(row[name]) for row in model.history if name in row]
        for name in names
        if isinstance(model.history[-1][name], int | float) and not isinstance(model.history[-1][name], bool)
        and not name.endswith("_best")
    }  # fmt: skip


def predict_scores(model: Any, x: pd.DataFrame, task: str) -> np.ndarray:
    """Probability of the positive class for binary tasks; the class-probability matrix (columns in
    ``model.classes_`` order) for multiclass ones; predicted values for regression."""
    if task == "multiclass":
        if not hasattr(model, "predict_proba"):
            from mloop.errors import SchemaError

            raise SchemaError(
                f"{type(model).__name__} has no predict_proba: a multiclass pipeline evaluates class "
                "probabilities. Use a classifier that gives them (LogisticRegression, LGBMClassifier, "
                "TorchClassifier)."
            )
        return np.asarray(model.predict_proba(x), dtype=float)
    if task == "binary" and hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x))[:, 1]
    return np.asarray(model.predict(x), dtype=float)

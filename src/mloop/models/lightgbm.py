"""The LightGBM flavour: a ``lightgbm.Booster`` or one of its scikit-learn wrappers.

Saved in LightGBM's own text model format (readable, portable across LightGBM versions, no pickle) with a
small JSON beside it: which class it was, its constructor parameters, the objective and the class labels.
A wrapper is rebuilt around the loaded booster, so ``loaded.model`` is the same kind of object as the one
registered; should a future LightGBM refuse the rebuild, the booster itself is returned (with a warning),
and predictions are unchanged because they always go through the booster.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.models.flavours import class_name, from_module, json_safe, ordered

MODEL_FILE = "model.txt"
META_FILE = "lightgbm.json"
SMALL_BATCH = 500


class LightGBMFlavour:
    name = "lightgbm"

    def handles(self, model: Any) -> bool:
        return from_module(model, "lightgbm") and (
            type(model).__name__ == "Booster" or hasattr(model, "booster_")
        )

    def save(self, model: Any, folder: Path) -> None:
        import lightgbm

        booster = _booster(model)
        booster.save_model(str(folder / MODEL_FILE))
        meta: dict[str, Any] = {
            "class": type(model).__name__,
            "lightgbm_version": lightgbm.__version__,
            "objective": booster.params.get("objective") if booster.params else None,
            "features": booster.feature_name(),
        }
        if type(model).__name__ != "Booster":
            meta["params"] = json_safe(model.get_params(deep=False))
            meta["objective"] = model.objective_ if not callable(model.objective_) else "custom"
            meta["fitted_with_feature_names"] = bool(getattr(model, "_fitted_with_feature_names", False))
        classes = getattr(model, "classes_", None)
        if classes is not None:
            meta["classes"] = np.asarray(classes).tolist()
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")

    def load(self, folder: Path) -> Any:
        import lightgbm

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        booster = lightgbm.Booster(model_file=str(folder / MODEL_FILE))
        kind = meta.get("class", "Booster")
        if kind == "Booster":
            return booster
        try:
            return _rebuild(getattr(lightgbm, kind), booster, meta)
        except Exception as exc:  # a private attribute moved in a new LightGBM: keep serving the booster
            warnings.warn(
                f"Could not rebuild a lightgbm.{kind} around the saved booster ({exc}); returning the "
                "lightgbm.Booster instead. Predictions are unaffected.",
                stacklevel=2,
            )
            return booster

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        # Through the booster for wrappers as well: a binary booster already answers P(classes_[1]),
        # a multiclass one the probability matrix, and a regressor its values.
        booster = _booster(model)
        frame = ordered(frame, _named_features(booster))
        if len(frame) < SMALL_BATCH:
            # Waking LightGBM's thread pool costs milliseconds; a few rows take microseconds on one thread.
            return np.asarray(booster.predict(frame, num_threads=1))
        return np.asarray(booster.predict(frame))

    def row_predictor(
        self, model: Any, signature: Any
    ) -> Callable[[Mapping[str, list[Any]]], np.ndarray] | None:
        """A function from plain columns of JSON scalars (already checked with
        :func:`mloop.models.row_check.columns_conform`) to the predictions :meth:`predict` gives, through a numpy
        matrix instead of a DataFrame (:func:`row_matrix`). None when the model cannot take this path."""
        booster = _booster(model)
        matrix = row_matrix(booster, signature)
        if matrix is None:
            return None

        def predict(columns: Mapping[str, list[Any]]) -> np.ndarray:
            values = matrix(columns)
            threads = {"num_threads": 1} if len(values) < SMALL_BATCH else {}
            return np.asarray(booster.predict(values, **threads))

        return predict

    def info(self, model: Any) -> dict[str, Any]:
        booster = _booster(model)
        params = model.get_params(deep=False) if hasattr(model, "get_params") else booster.params
        objective = (booster.params or {}).get("objective")
        out: dict[str, Any] = {
            "type": class_name(model),
            "params": json_safe(params),
            "objective": objective,
            "trees": booster.num_trees(),
            "features": booster.feature_name(),
            "allow_nan": True,  # LightGBM routes missing values down a learnt branch
        }
        classes = getattr(model, "classes_", None)
        if classes is not None:
            out["classes"] = json_safe(list(classes))
        name = type(model).__name__
        out["task"] = (
            "classification"
            if name == "LGBMClassifier"
            or str(objective).startswith(("binary", "multiclass", "cross_entropy"))
            else "ranking"
            if name == "LGBMRanker" or "rank" in str(objective)
            else "regression"
        )
        return out


def row_matrix(booster: Any, signature: Any) -> Callable[[Mapping[str, list[Any]]], np.ndarray] | None:
    """A function from plain columns of JSON scalars (already checked with
    :func:`mloop.models.row_check.columns_conform`) to the numpy matrix the booster takes: LightGBM's pandas
    conversion costs milliseconds per call. Categorical features are encoded with the booster's own
    training categories (an unseen value or None is NaN, as LightGBM does for code -1). None when the
    model cannot take this path (unnamed features, inputs the signature does not describe)."""
    names = _named_features(booster)
    if names is None or signature is None:
        return None
    specs = {c.name: c for c in signature.inputs}
    if not set(names) <= set(specs):
        return None
    categorical = [n for n in names if specs[n].categories is not None]
    known = booster.pandas_categorical or []
    if len(categorical) != len(known) or any(
        specs[n].dtype == "string" and specs[n].categories is None for n in names
    ):
        return None
    codes = {n: {v: float(i) for i, v in enumerate(c)} for n, c in zip(categorical, known, strict=True)}
    narrow = {n for n in names if specs[n].dtype == "float32"}
    nan = float("nan")

    def matrix(columns: Mapping[str, list[Any]]) -> np.ndarray:
        rows = len(next(iter(columns.values()), ()))
        out = np.full((rows, len(names)), nan)
        for j, name in enumerate(names):
            values = columns.get(name)
            if values is None:
                continue
            if name in codes:
                code = codes[name]
                out[:, j] = [code.get(v, nan) for v in values]
            else:
                column = [nan if v is None else v for v in values]
                out[:, j] = np.asarray(column, dtype=np.float32) if name in narrow else column
        return out

    return matrix


def _booster(model: Any) -> Any:
    return model if type(model).__name__ == "Booster" else model.booster_


def _named_features(booster: Any) -> list[str] | None:
    names = booster.feature_name()
    # LightGBM names unnamed features Column_0, Column_1...: then there is no order to restore.
    return None if all(n == f"Column_{i}" for i, n in enumerate(names)) else names


def _rebuild(cls: type, booster: Any, meta: dict[str, Any]) -> Any:
    """A fitted scikit-learn wrapper around ``booster``: the attributes ``fit`` would have set."""
    try:
        model = cls(**meta.get("params", {}))
    except TypeError:
        model = cls()
    n = booster.num_feature()
    model._Booster = booster
    model._n_features = n
    model._n_features_in = n
    model._fitted_with_feature_names = meta.get("fitted_with_feature_names", False)
    model._objective = meta.get("objective")
    model._best_iteration = booster.best_iteration
    model._best_score = {}
    model._evals_result = {}
    if "classes" in meta:
        from lightgbm.compat import _LGBMLabelEncoder

        encoder = _LGBMLabelEncoder().fit(np.asarray(meta["classes"]))
        model._le = encoder
        model._classes = encoder.classes_
        model._n_classes = len(encoder.classes_)
        model._class_map = dict(zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True))
    model.fitted_ = True
    return model


__all__ = ["LightGBMFlavour", "row_matrix"]

"""scikit-learn models: exact TreeSHAP for tree ensembles, the closed form for linear models, the fallback
for the rest.

- Trees (``DecisionTree*``, ``RandomForest*``, ``ExtraTrees*``, ``GradientBoosting*``,
  ``HistGradientBoosting*``) through ``shap.TreeExplainer`` (path-dependent TreeSHAP, no background). Each
  is explained in the space its trees add up in: a forest's or a single tree's classifier in
  ``probability`` (its leaves hold class shares, averaged), a gradient-boosted classifier in ``log_odds``
  (its trees add up to ``decision_function``), a regressor in ``value``. A binary classifier is explained
  for its positive class ``classes_[1]``, as ``predict`` answers. shap supports gradient boosting for two
  classes only, so a multiclass gradient-boosted model goes to the fallback.
- Linear models (``LogisticRegression`` in ``log_odds``, or the ``margin`` of one class for several;
  ``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet`` in ``value``): ``coef * (x - mean)`` with
  ``base_value = coef . mean + intercept``, the exact Shapley values of a linear function with independent
  features, what ``shap.LinearExplainer`` computes; ``mean`` is the background's (:mod:`.background`).
- A ``Pipeline`` (its steps rename and mix the user's columns, so no exact method speaks in their names)
  and any other estimator: the fallback (:mod:`.fallback`), which needs a ``budget``.

>>> found = explain("sklearn", forest, X_test[:5])                # doctest: +SKIP
>>> np.allclose(found.value, forest.predict_proba(X_test[:5])[:, 1])   # doctest: +SKIP
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError
from mloop.explain.background import require_background, split_weights
from mloop.explain.fallback import kernel_shap
from mloop.models.flavours import ordered

TREES = (
    "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
)  # fmt: skip
BOOSTED = ("GradientBoostingClassifier", "HistGradientBoostingClassifier")  # trees add up in log-odds
LINEAR = ("LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
          "LogisticRegression", "LogisticRegressionCV")  # fmt: skip


class SklearnExplainer:
    def explain(
        self,
        model: Any,
        frame: pd.DataFrame,
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> Attributions:
        kind = type(model).__name__
        names = getattr(model, "feature_names_in_", None)
        frame = ordered(frame, [str(n) for n in names] if names is not None else None)
        classes = getattr(model, "classes_", None)
        multiclass = classes is not None and len(classes) > 2
        if kind in TREES and not (multiclass and kind in BOOSTED):
            return _trees(model, frame, target)
        if kind in LINEAR:
            return _linear(model, frame, target, background)
        why = (
            f"A scikit-learn {kind} transforms your columns before its model sees them, so no exact "
            "method speaks in their names"
            if hasattr(model, "steps")
            else f"A scikit-learn {kind} has no exact method here"
        )
        from mloop.models.sklearn import SklearnFlavour

        flavour = SklearnFlavour()
        return kernel_shap(
            lambda rows: flavour.predict(model, rows),
            frame,
            budget=budget,
            target=target,
            background=background,
            classifier=classes is not None,
            classes=list(classes) if classes is not None else None,
            why=why,
        )


def _trees(model: Any, frame: pd.DataFrame, target: Any) -> Attributions:
    import shap  # type: ignore[import-untyped]

    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(frame, check_additivity=False), dtype=float)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    classes = getattr(model, "classes_", None)
    n = len(frame)
    if classes is None:  # a regressor
        _no_target(target)
        output, prediction, chosen = "value", np.asarray(model.predict(frame)), None
        base = np.full(n, base[0])
    else:
        proba = np.asarray(model.predict_proba(frame))
        if type(model).__name__ in BOOSTED:  # binary only (multiclass went to the fallback)
            _no_target(target, binary=True)
            output, prediction, chosen = "log_odds", proba[:, 1], None
            base = np.full(n, base[-1])
        else:  # leaves hold class shares: (rows, features, classes) in probability
            picked = _picked(proba, list(classes), target)
            rows = np.arange(n)
            values, base = values[rows, :, picked], base[picked]
            output, prediction = "probability", proba[rows, picked]
            chosen = None if len(classes) == 2 else np.asarray(classes)[picked].tolist()
    table = pd.DataFrame(values, columns=[str(c) for c in frame.columns], index=frame.index)
    return Attributions(table, base, prediction, output, "tree_shap", exact=True, target=chosen)


def _linear(model: Any, frame: pd.DataFrame, target: Any, background: pd.DataFrame | None) -> Attributions:
    background = require_background(background, f"A {type(model).__name__}'s exact attribution")
    missing = [c for c in frame.columns if c not in background.columns]
    if missing:
        raise ExplainError(f"The background lacks the model's input columns {', '.join(map(str, missing))}.")
    x = frame.to_numpy(dtype=float)
    kept, weights = split_weights(background)
    mean = np.average(kept[list(frame.columns)].to_numpy(dtype=float), axis=0, weights=weights)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=float))
    classes = getattr(model, "classes_", None)
    n, rows = len(frame), np.arange(len(frame))
    if classes is None:
        if coef.shape[0] != 1:
            raise ExplainError(f"A {type(model).__name__} with {coef.shape[0]} outputs is not explained: "
                               "fit one model per target.")  # fmt: skip
        _no_target(target)
        picked, output, chosen = np.zeros(n, dtype=int), "value", None
        prediction = np.asarray(model.predict(frame))
    elif coef.shape[0] == 1:  # binary: one row of weights, the log-odds of classes_[1]
        _no_target(target, binary=True)
        picked, output, chosen = np.zeros(n, dtype=int), "log_odds", None
        prediction = np.asarray(model.predict_proba(frame))[:, 1]
    else:  # one row of weights per class: its margin, whose softmax is the probability
        proba = np.asarray(model.predict_proba(frame))
        picked = _picked(proba, list(classes), target)
        output, prediction, chosen = "margin", proba[rows, picked], np.asarray(classes)[picked].tolist()
    weights = coef[picked]  # (rows, features)
    values = weights * (x - mean)
    base = weights @ mean + intercept[picked]
    table = pd.DataFrame(values, columns=[str(c) for c in frame.columns], index=frame.index)
    return Attributions(table, base, prediction, output, "linear_shap", exact=True, target=chosen)


def _picked(proba: np.ndarray, labels: list[Any], target: Any) -> np.ndarray:
    """Per row, the index of the class explained: ``target``, the positive class of a binary model, or
    the predicted class."""
    if target is not None:
        if target not in labels:
            raise ExplainError(f"target={target!r} is not one of the model's classes {labels}.")
        return np.full(len(proba), labels.index(target))
    if len(labels) == 2:
        return np.ones(len(proba), dtype=int)
    return np.asarray(proba.argmax(axis=1))


def _no_target(target: Any, *, binary: bool = False) -> None:
    if target is not None:
        what = "a binary classifier, explained for its positive class" if binary else "a single output"
        raise ExplainError(f"target={target!r} is for a multiclass model; this one has {what}.")

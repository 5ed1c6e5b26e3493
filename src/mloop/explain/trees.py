"""LightGBM's own TreeSHAP (``pred_contrib``): exact Shapley values of the trees' raw score, in
microseconds per row, with no extra library.

A binary classifier's raw score is the log-odds of the positive class, so it is explained in
``log_odds``; a regressor in its ``value``; a multiclass model in the ``margin`` of one class (the
predicted one unless ``target`` names another), whose softmax over classes is the probability.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError
from mloop.models.flavours import ordered
from mloop.models.lightgbm import row_matrix


class LightGBMExplainer:
    def explain(
        self,
        model: Any,
        frame: pd.DataFrame,
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,  # path-dependent TreeSHAP needs none: the trees hold it
    ) -> Attributions:
        booster = _booster(model)
        frame = ordered(frame, booster.feature_name())
        return _attributions(model, booster, frame, frame.index, target)

    def row_explainer(
        self, model: Any, signature: Any
    ) -> Callable[[Mapping[str, list[Any]], Any], Attributions] | None:
        """:meth:`explain` of plain columns of JSON scalars (already checked against the signature, as for
        the flavour's row predictor) through a numpy matrix instead of a DataFrame: an explain request's
        own overhead, not TreeSHAP, was most of its time. None when the model cannot take this path."""
        booster = _booster(model)
        matrix = row_matrix(booster, signature)
        if matrix is None:
            return None

        def explain_columns(columns: Mapping[str, list[Any]], target: Any) -> Attributions:
            values = matrix(columns)
            return _attributions(model, booster, values, pd.RangeIndex(len(values)), target)

        return explain_columns


def _attributions(model: Any, booster: Any, data: Any, index: pd.Index, target: Any) -> Attributions:
    names = booster.feature_name()
    threads = {"num_threads": 1} if len(index) < 500 else {}
    contrib = np.asarray(booster.predict(data, pred_contrib=True, **threads), dtype=float)
    width = len(names) + 1
    classes = contrib.shape[1] // width
    objective = str((booster.params or {}).get("objective", getattr(model, "objective_", "")))
    if classes == 1:
        if target is not None:
            raise ExplainError(f"target={target!r} is for a multiclass model; this one has one output.")
        binary = objective.startswith(("binary", "cross_entropy")) or _binary(model)
        output = "log_odds" if binary else "value"
        # A binary model's probability is the logistic of the raw score, which the contributions add up
        # to: no second pass over the trees. Other objectives map the raw score their own way (Poisson's
        # exp), so the booster answers.
        raw = contrib.sum(axis=1)
        prediction = 1.0 / (1.0 + np.exp(-raw)) if binary else np.asarray(booster.predict(data, **threads))
        chosen = None
    else:
        prediction = np.asarray(booster.predict(data, **threads))
        labels = list(getattr(model, "classes_", range(classes)))
        if target is None:
            picked = np.asarray(prediction).argmax(axis=1)
        elif target in labels:
            picked = np.full(len(index), labels.index(target))
        else:
            raise ExplainError(f"target={target!r} is not one of the model's classes {labels}.")
        rows = np.arange(len(index))
        contrib = contrib.reshape(len(index), classes, width)[rows, picked, :]
        prediction = np.asarray(prediction)[rows, picked]
        output, chosen = "margin", np.asarray(labels, dtype=object)[picked].tolist()
    values = pd.DataFrame(contrib[:, :-1], columns=names, index=index)
    return Attributions(values, contrib[:, -1], prediction, output, "tree_shap", exact=True,
                        target=chosen)  # fmt: skip


def _booster(model: Any) -> Any:
    return model if type(model).__name__ == "Booster" else model.booster_


def _binary(model: Any) -> bool:
    classes = getattr(model, "classes_", None)
    return classes is not None and len(classes) == 2

"""LightGBM's own TreeSHAP (``pred_contrib``): exact Shapley values of the trees' raw score, in
microseconds per row, with no extra library.

A binary classifier's raw score is the log-odds of the positive class, so it is explained in
``log_odds``; a regressor in its ``value``; a multiclass model in the ``margin`` of one class (the
predicted one unless ``target`` names another), whose softmax over classes is the probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.attributions import Attributions, ExplainError
from mloop.models.flavours import ordered


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
        booster = model if type(model).__name__ == "Booster" else model.booster_
        names = booster.feature_name()
        frame = ordered(frame, names)
        threads = {"num_threads": 1} if len(frame) < 500 else {}
        contrib = np.asarray(booster.predict(frame, pred_contrib=True, **threads), dtype=float)
        prediction = np.asarray(booster.predict(frame, **threads))
        width = len(names) + 1
        classes = contrib.shape[1] // width
        objective = str((booster.params or {}).get("objective", getattr(model, "objective_", "")))
        if classes == 1:
            if target is not None:
                raise ExplainError(f"target={target!r} is for a multiclass model; this one has one output.")
            output = (
                "log_odds" if objective.startswith(("binary", "cross_entropy")) or _binary(model) else "value"
            )
            chosen = None
        else:
            labels = list(getattr(model, "classes_", range(classes)))
            if target is None:
                picked = np.asarray(prediction).argmax(axis=1)
            elif target in labels:
                picked = np.full(len(frame), labels.index(target))
            else:
                raise ExplainError(f"target={target!r} is not one of the model's classes {labels}.")
            rows = np.arange(len(frame))
            contrib = contrib.reshape(len(frame), classes, width)[rows, picked, :]
            prediction = np.asarray(prediction)[rows, picked]
            output, chosen = "margin", np.asarray(labels, dtype=object)[picked].tolist()
        values = pd.DataFrame(contrib[:, :-1], columns=names, index=frame.index)
        return Attributions(values, contrib[:, -1], prediction, output, "tree_shap", exact=True,
                            target=chosen)  # fmt: skip


def _binary(model: Any) -> bool:
    classes = getattr(model, "classes_", None)
    return classes is not None and len(classes) == 2

"""Explanations: why a model predicted what it did, per prediction (attributions that add up to the
model's output) and across a data set (mean |attribution| per feature).

Each flavour has its own method, exact where one exists (LightGBM's TreeSHAP, ``pred_contrib``); a model
with no exact method is explained by a model-agnostic one only when the caller gives it a budget.

>>> from mloop.explain import explain
>>> found = explain(loaded.flavour.name, loaded.model, frame)      # doctest: +SKIP
>>> found.frame()            # one column per feature plus base_value           # doctest: +SKIP
>>> found.value              # base_value + the row's attributions: the model's output in found.output

Counterfactuals (:func:`counterfactuals`): the smallest changes to actionable features that move a
prediction across a decision threshold.
"""

from mloop.explain.attributions import (
    EXPLAINERS,
    Attributions,
    Explainer,
    ExplainError,
    explain,
    row_explainer,
)
from mloop.explain.constraints import ConstraintError
from mloop.explain.counterfactual import Counterfactual, Counterfactuals, counterfactuals
from mloop.explain.search import Goal

__all__ = [
    "EXPLAINERS",
    "Attributions",
    "ConstraintError",
    "Counterfactual",
    "Counterfactuals",
    "ExplainError",
    "Explainer",
    "Goal",
    "counterfactuals",
    "explain",
    "row_explainer",
]

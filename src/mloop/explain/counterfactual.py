"""Counterfactual explanations: the smallest changes to the features a person can act on that move a
model's prediction across its decision threshold ("with an amount of 180 instead of 2,400 this payment
would have gone through").

Model-agnostic: the model is a function that scores a batch of rows. Constraints say per feature what may
change (:class:`~mloop.config.explain.FeatureConstraint`: immutable, range, direction, step, categories;
:mod:`mloop.explain.constraints` resolves them); the search is :mod:`mloop.explain.search`. Several answers
come back, each changing a different set of features where possible, closest first.

>>> found = counterfactuals(model.predict, row, {"amount": {"min": 0, "direction": "down"}},
...                         {"threshold": 0.5, "want": "below"})                  # doctest: +SKIP
>>> found.answers[0].changes                                                       # doctest: +SKIP
{'amount': (2400.0, 180.0)}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mloop.config.explain import FeatureConstraint
from mloop.explain.constraints import Bound, resolve
from mloop.explain.search import Goal, PredictColumns, Search, distance
from mloop.models.signature import ColumnSpec


@dataclass(frozen=True)
class Counterfactual:
    """One answer: ``changes`` maps each changed feature to (its value, the value suggested); ``row`` is the
    whole changed row; ``prediction`` what the model answers for it; ``distance`` the L1 size of the
    change, each feature in its own scale (its declared range, else its current value), 1 per category."""

    changes: dict[str, tuple[Any, Any]]
    row: dict[str, Any]
    prediction: float
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": {n: {"from": _plain(a), "to": _plain(b)} for n, (a, b) in self.changes.items()},
            "prediction": self.prediction,
            "distance": round(self.distance, 6),
        }


@dataclass(frozen=True)
class Counterfactuals:
    """The answers for one row: its own ``prediction``, the ``goal``, the ``answers`` (closest first) and,
    when there are none, the ``reason``."""

    prediction: float
    goal: Goal
    answers: list[Counterfactual]
    reason: str | None = None
    actionable: list[str] = field(default_factory=list)  # the features the search was allowed to change
    evaluations: int = 0  # rows the model scored

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prediction": self.prediction,
            "threshold": self.goal.threshold,
            "want": self.goal.want,
            "actionable": self.actionable,
            "counterfactuals": [a.to_dict() for a in self.answers],
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def counterfactuals(
    predict: Callable[[pd.DataFrame], Any],
    row: Mapping[str, Any],
    constraints: Mapping[str, FeatureConstraint | Mapping[str, Any]],
    goal: Goal | Mapping[str, Any],
    k: int = 3,
    *,
    max_changes: int | None = None,
    specs: Sequence[ColumnSpec] | None = None,
    unlisted: Literal["immutable", "free"] = "immutable",
    seed: int = 0,
) -> Counterfactuals:
    """Up to ``k`` diverse counterfactuals of ``row`` for the model ``predict`` (a batch of rows as a
    DataFrame in, one score per row out: a probability, a value).

    ``constraints``: per feature, what may change (features not named are immutable unless
    ``unlisted="free"``); ``goal``: ``{"threshold": 0.5, "want": "below"}``; ``max_changes``: most
    features one answer changes; ``specs``: the model's input columns (types, categories), default the
    row's own. Raises :class:`~mloop.explain.constraints.ConstraintError` for contradictory constraints.

    >>> found = counterfactuals(loaded.predict, row, {"amount": {"min": 0}}, {"threshold": 0.5,
    ...                         "want": "below"}, k=2)                                # doctest: +SKIP
    """
    declared = {n: FeatureConstraint.model_validate(c) for n, c in constraints.items()}
    aim = goal if isinstance(goal, Goal) else Goal(float(goal["threshold"]), goal["want"])
    bounds = resolve(row, declared, specs=specs, unlisted=unlisted)
    order = [s.name for s in specs] if specs else list(row)

    def scores(columns: dict[str, list[Any]]) -> Any:
        return predict(pd.DataFrame(columns, columns=order))

    return find(scores, {n: row.get(n) for n in order}, bounds, aim, k, max_changes=max_changes, seed=seed)


def find(
    predict: PredictColumns,
    row: dict[str, Any],
    bounds: Sequence[Bound],
    goal: Goal,
    k: int,
    *,
    max_changes: int | None = None,
    seed: int = 0,
) -> Counterfactuals:
    """:func:`counterfactuals` for constraints already resolved into ``bounds`` and a model that scores
    columns (``{feature: [values]}``, as :meth:`~mloop.registry.versions.LoadedModel.predict_columns`)."""
    search = Search(predict, row, bounds, goal, max_changes=max_changes, seed=seed)
    original = float(search.score([{}])[0])
    actionable = [b.name for b in bounds]
    if goal.reached(np.array([original]))[0]:
        reason: str | None = f"The prediction {original:.4g} is already {goal}: there is nothing to change."
        return Counterfactuals(original, goal, [], reason, actionable, search.evaluations)
    if not bounds:
        reason = ("No feature may change: every input is immutable or missing. Declare the features a "
                  "person can act on under explain.counterfactuals in mloop.yaml.")  # fmt: skip
        return Counterfactuals(original, goal, [], reason, actionable, search.evaluations)
    found = search.run(k)
    answers = [
        Counterfactual(
            {n: (row[n], v) for n, v in changes.items()}, {**row, **changes}, score, distance(changes, bounds)
        )
        for changes, score in found
    ]
    reason = None
    if not answers:
        closest = search.closest[0] if search.closest is not None else original
        reason = (f"No change within the constraints moves the prediction {goal} (the closest it came was "
                  f"{closest:.4g}, from {original:.4g}, changing {', '.join(actionable)}): widen the ranges "
                  "or make more features changeable.")  # fmt: skip
    return Counterfactuals(original, goal, answers, reason, actionable, search.evaluations)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

"""Counterfactuals of a served prediction: for one request row, the smallest changes to the features the
endpoint declares actionable (``explain.counterfactuals.ENDPOINT`` in mloop.yaml) that move the answer of
the version that would serve it across the endpoint's decision threshold.

The row's inputs are those a prediction would get (features looked up online, the request's own values
winning); the search scores candidates with that version's model; every answer is then predicted once
more through the version's :class:`~mloop.serving.predictor.Predictor` exactly as ``/predict`` would
answer the changed row, and only answers that this prediction confirms are returned. Nothing is written
to the prediction log: a counterfactual is a question about the model, not a decision.

>>> service = CounterfactualService.of(inference)   # a server's; .in_process(project) for the CLI  # doctest: +SKIP
>>> service.counterfactuals(project, "fraud", [{"customer_id": 42, "amount": 2400.0}]).to_dict()
...                                                                                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.config.explain import FeatureConstraint
from mloop.errors import PayloadTooLarge
from mloop.explain import ExplainError, Goal
from mloop.explain.constraints import resolve
from mloop.explain.counterfactual import Counterfactual, Counterfactuals, find
from mloop.serving.explaining import EndpointQuestions

MAX_ROWS = 1  # a search costs thousands of model rows: one row per request


@dataclass(frozen=True)
class CounterfactualAnswer:
    """The counterfactuals of one row at ``endpoint``, found and verified on ``model`` version ``version``."""

    endpoint: str
    model: str
    version: int
    found: Counterfactuals

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "version": self.version,
            **self.found.to_dict(),
        }


class CounterfactualService(EndpointQuestions):
    """Counterfactuals of an endpoint's answers (``mloop explain --counterfactual`` in process)."""

    def counterfactuals(
        self,
        caller: Any,
        endpoint: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        k: int | None = None,
        max_changes: int | None = None,
        constraints: Mapping[str, FeatureConstraint | Mapping[str, Any]] | None = None,
        version: int | None = None,
    ) -> CounterfactualAnswer:
        """Up to ``k`` counterfactuals of the one row in ``rows`` (join keys and request features, as for
        a prediction). ``constraints`` narrows the endpoint's declared ones (never frees an immutable
        feature), ``max_changes`` caps the features one answer changes, ``version`` pins a version the
        endpoint serves. The caller needs ``predict`` on the endpoint."""
        if len(rows) > MAX_ROWS:
            raise PayloadTooLarge(
                f"A counterfactual request explains {MAX_ROWS} row, got {len(rows)}: send one request per row."
            )
        _, predictor = self._resolve(caller, endpoint, rows, version)
        declared = self.project.settings.explain.counterfactuals.get(endpoint)
        if declared is None:
            raise ExplainError(
                f"Endpoint {endpoint!r} declares no counterfactual constraints: add to mloop.yaml\n"
                f"explain:\n  counterfactuals:\n    {endpoint}:\n      threshold: 0.5\n      want: below\n"
                "      features: {amount: {min: 0, direction: down}}\n(see docs/explain.md)."
            )
        asked = {n: FeatureConstraint.model_validate(c) for n, c in (constraints or {}).items()}
        columns = predictor.model_inputs(self.project, rows)
        row = {name: values[0] for name, values in columns.items()}
        bounds = resolve(row, declared.features, specs=predictor.specs or None, unlisted=declared.unlisted,
                         request=asked)  # fmt: skip
        caps = [c for c in (max_changes, declared.max_changes) if c is not None]
        goal = Goal(declared.threshold, declared.want)
        found = find(predictor.model.predict_columns, row, bounds, goal, k or declared.k,
                     max_changes=min(caps) if caps else None)  # fmt: skip
        return CounterfactualAnswer(
            endpoint, predictor.name, predictor.version, self._verified(predictor, found)
        )

    def _verified(self, predictor: Any, found: Counterfactuals) -> Counterfactuals:
        """``found`` with each answer's prediction as the served model gives it for the changed row (all
        inputs given, so no lookup), keeping only the answers that prediction confirms."""
        if not found.answers:
            return found
        served = predictor.predict(self.project, [a.row for a in found.answers]).predictions
        scores = np.asarray(served, dtype=float)
        kept = [
            Counterfactual(a.changes, a.row, float(s), a.distance)
            for a, s, ok in zip(found.answers, scores, found.goal.reached(scores), strict=True)
            if ok
        ]
        reason = None if kept else "No answer of the search was confirmed by the served model."
        return Counterfactuals(
            found.prediction, found.goal, kept, reason, found.actionable, found.evaluations
        )

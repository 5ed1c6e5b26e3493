"""The ``explain:`` block of mloop.yaml: per endpoint, the decision a counterfactual must reverse and what
a counterfactual may change (docs/explain.md).

.. code-block:: yaml

    explain:
      counterfactuals:
        fraud:                       # the endpoint
          threshold: 0.5             # its decision threshold on the served probability / value
          want: below                # the side of the threshold an answer must land on
          features:                  # features not listed are immutable (set unlisted: free to change that)
            amount: {min: 0, max: 20000, direction: down, step: 1}
            hour: {min: 0, max: 23, step: 1}
            device: {categories: [mobile, desktop]}
            country: {immutable: true}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureConstraint(_Strict):
    """How one feature may change in a counterfactual. A request may give its own, narrower ones."""

    immutable: bool = Field(False, description="Never changed (a country, an age, a past event).")
    min: float | None = Field(None, description="Lowest value a counterfactual may move it to.")
    max: float | None = Field(None, description="Highest value a counterfactual may move it to.")
    direction: Literal["up", "down", "any"] = Field(
        "any", description="up: only increased; down: only decreased; any: either."
    )
    step: float | None = Field(
        None, gt=0, description="Changes are whole multiples of this (integer features: at least 1)."
    )
    categories: list[Any] | None = Field(
        None,
        min_length=1,
        description="A categorical feature moves only to these (default: any of the model's categories).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeatureConstraint:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g}): swap them")
        if self.immutable and self.model_fields_set - {"immutable"}:
            extra = ", ".join(sorted(self.model_fields_set - {"immutable"}))
            raise ValueError(f"an immutable feature takes no {extra}: drop them, or set immutable: false")
        return self


class CounterfactualSettings(_Strict):
    """One endpoint's decision and the features a counterfactual may change."""

    threshold: float = Field(0.5, description="The endpoint's decision threshold on the served output.")
    want: Literal["below", "above"] = Field(
        description="below: an answer's output must be under the threshold (a blocked payment let "
        "through); above: at or over it (a loan approved)."
    )
    features: dict[str, FeatureConstraint] = Field(
        default_factory=dict, description="Per feature: immutable, min, max, direction, step, categories."
    )
    unlisted: Literal["immutable", "free"] = Field(
        "immutable",
        description="Features not listed: immutable (the safe default: nothing a person cannot act on "
        "is suggested) or free (any value the model accepts).",
    )
    k: int = Field(3, ge=1, le=20, description="Answers per request unless the request asks for fewer.")
    max_changes: int | None = Field(
        None, ge=1, description="Most features one answer may change (default: no limit)."
    )


class ExplainSettings(_Strict):
    counterfactuals: dict[str, CounterfactualSettings] = Field(
        default_factory=dict, description="Per endpoint name (see docs/explain.md)."
    )

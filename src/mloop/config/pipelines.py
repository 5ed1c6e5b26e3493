"""The ``pipelines:`` block of mloop.yaml: endpoints whose answer is a chain of stages, each stage an
ordinary endpoint called in-process (see :mod:`mloop.serving.pipeline`).

.. code-block:: yaml

    pipelines:
      recs:
        stages:
          - {name: retrieve, kind: retrieve, endpoint: recs-towers, k: 200, where: {in_stock: true}}
          - {name: rank, kind: rank, endpoint: recs-ranker, log: sample, sample: 0.05}
          - {name: top, kind: top, n: 20, exclude: "user_history:purchased", dedupe: true}
        cold_start: {kind: items, items: [11, 42, 7]}

The same objects serve the Python API:

>>> Pipeline(stages=[Stage(name="retrieve", kind="retrieve", endpoint="towers", k=50)])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KINDS = ("retrieve", "rank", "top")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Strict):
    """One step of a pipeline. ``retrieve``: the user tower endpoint answers an embedding per row and the
    vector index of the version that answered is searched (``k``, ``where``); ``rank``: the ranker endpoint
    scores one row per candidate; ``top``: the best ``n`` after ``dedupe`` and ``exclude``."""

    name: str = Field(..., min_length=1, description="The stage's name: the request id suffix RID/<name>.")
    kind: str = Field(..., description="retrieve, rank or top.")
    endpoint: str | None = Field(None, description="The endpoint a retrieve or rank stage calls.")
    k: int = Field(100, ge=1, le=100_000, description="retrieve: candidates per row from the index.")
    where: dict[str, Any] = Field(
        default_factory=dict, description="retrieve: attribute filters always applied (in_stock: true)."
    )
    n: int | None = Field(
        None, ge=1, le=10_000, description="top: items answered (default the pipeline's n)."
    )
    exclude: str | None = Field(
        None, description="top: a feature 'view:feature' holding item ids to leave out (a list or 'a,b,c')."
    )
    dedupe: bool = Field(True, description="top: each item once.")
    log: bool | Literal["sample"] = Field(
        True, description="rank/retrieve: log this stage's rows (true), none (false), or a share (sample)."
    )
    sample: float = Field(0.01, gt=0, le=1, description="The share of requests logged when log: sample.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown stage kind {kind!r}; use one of {', '.join(KINDS)}")
        return kind

    @model_validator(mode="after")
    def _needs_endpoint(self) -> Self:
        if self.kind in ("retrieve", "rank") and not self.endpoint:
            raise ValueError(
                f"stage {self.name!r} ({self.kind}) needs the endpoint it calls: add endpoint: NAME"
            )
        if self.kind == "top" and self.endpoint:
            raise ValueError(f"stage {self.name!r} (top) calls no endpoint; remove endpoint:")
        return self


class ColdStart(_Strict):
    """What an unknown user (no online features for the user tower) gets: a fixed list (``kind: items``),
    or the list held by a feature (``kind: feature``, e.g. daily popular items pushed to a view keyed by
    ``key``)."""

    kind: Literal["items", "feature"] = "items"
    items: list[Any] = Field(default_factory=list, description="kind items: the item ids, best first.")
    feature: str | None = Field(None, description="kind feature: 'view:feature' holding the item ids.")
    key: dict[str, Any] = Field(default_factory=dict, description="kind feature: the entity row to look up.")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == "items" and not self.items:
            raise ValueError("cold_start kind items needs items: [ID, ...]")
        if self.kind == "feature" and (not self.feature or ":" not in self.feature or not self.key):
            raise ValueError(
                "cold_start kind feature needs feature: 'view:feature' and key: {join key: value}"
            )
        return self


class Pipeline(_Strict):
    """A pipeline endpoint: its stages in order (one ``retrieve`` first, at most one ``rank``, at most one
    ``top``, last), the default ``n`` and the cold-start fallback."""

    stages: list[Stage] = Field(..., min_length=1)
    n: int = Field(20, ge=1, le=10_000, description="Items answered per row unless the request says n.")
    item_key: str = Field("item_id", min_length=1, description="The ranker's join key of an item.")
    cold_start: ColdStart | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        names = [s.name for s in self.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"stage name {twice[0]!r} is used twice; give each stage its own name")
        kinds = [s.kind for s in self.stages]
        if kinds[0] != "retrieve" or kinds.count("retrieve") > 1:
            raise ValueError("a pipeline starts with one retrieve stage (candidates), and has only one")
        if kinds.count("rank") > 1 or kinds.count("top") > 1:
            raise ValueError("a pipeline has at most one rank stage and one top stage")
        if "top" in kinds and kinds[-1] != "top":
            raise ValueError("the top stage comes last: move it to the end of stages")
        return self

    def stage(self, kind: str) -> Stage | None:
        return next((s for s in self.stages if s.kind == kind), None)


def retrieve_endpoints(pipelines: dict[str, Pipeline]) -> dict[str, str]:
    """``{endpoint: pipeline}`` of every endpoint used as a retrieve stage (its versions need an index)."""
    return {
        s.endpoint: name
        for name, p in pipelines.items()
        for s in p.stages
        if s.kind == "retrieve" and s.endpoint
    }

"""``POST /v1/endpoints/{name}/counterfactual``: what would change the endpoint's decision for one row.
Parse, call :class:`~mloop.serving.counterfactuals.CounterfactualService`, answer; no logic here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mloop.config.explain import FeatureConstraint
from mloop.project import Project
from mloop.serving.counterfactuals import CounterfactualService
from mloop.serving.http.bodies import JSONBodyRoute
from mloop.serving.http.routes.predict import EntityRows


class CounterfactualRequest(EntityRows):
    """One entity (``entities`` + request-time ``features``) or one flat row in ``rows``, as for predict."""

    features: dict[str, Any] | None = Field(None, description="Request-time features: {'amount': 2400.0}.")
    rows: list[dict[str, Any]] | None = Field(
        None, min_length=1, description="Or: the row as [{...}] (one row per request; more get a 413)."
    )
    k: int | None = Field(None, ge=1, le=20, description="Answers wanted (default: the endpoint's k).")
    max_changes: int | None = Field(None, ge=1, description="Most features one answer may change.")
    constraints: dict[str, FeatureConstraint] | None = Field(
        None, description="Per feature, narrower constraints than mloop.yaml's (immutable, min, max, ...)."
    )
    version: int | None = Field(None, description="Pin a version the endpoint serves (default: its policy).")


class Change(BaseModel):
    from_: Any = Field(alias="from")
    to: Any


class CounterfactualItem(BaseModel):
    changes: dict[str, Change]
    prediction: float = Field(description="What the served model answers for the changed row.")
    distance: float = Field(description="L1 size of the change, each feature in its own scale.")


class CounterfactualResponse(BaseModel):
    endpoint: str
    model: str
    version: int
    prediction: float = Field(description="What the served model answers for the row as sent.")
    threshold: float
    want: str
    actionable: list[str]
    counterfactuals: list[CounterfactualItem]
    reason: str | None = Field(None, description="Why there are none, when there are none.")


def router(caller: Any, service: CounterfactualService) -> APIRouter:
    api = APIRouter(prefix="/v1/endpoints", tags=["explain"], route_class=JSONBodyRoute)

    @api.post(
        "/{name}/counterfactual", response_model=CounterfactualResponse, response_model_exclude_none=True
    )
    async def counterfactual(
        name: str, body: CounterfactualRequest, project: Project = Depends(caller)
    ) -> dict[str, Any]:
        # The search scores thousands of rows: off the event loop, so predictions keep being answered.
        answer = await run_in_threadpool(
            service.counterfactuals, project, name, body.as_rows(), k=body.k, max_changes=body.max_changes,
            constraints=body.constraints, version=body.version,
        )  # fmt: skip
        return answer.to_dict()

    return api

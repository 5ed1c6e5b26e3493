"""The v1 prediction API: ``POST /v1/endpoints/{name}/predict``. Parse, call the inference service,
answer; no logic here."""

from __future__ import annotations

import json
from typing import Any, Self

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mloop.project import Project
from mloop.serving.http.bodies import JSONBodyRoute
from mloop.serving.http.routes import pipeline as pipeline_route
from mloop.serving.inference import Inference
from mloop.serving.pipeline import Pipelines
from mloop.serving.predictor import MAX_ROWS


class EntityRows(BaseModel):
    """One entity (``entities`` + request-time ``features``) or flat ``rows``: the rows of every request
    about an endpoint's answers (predict, explain, counterfactual)."""

    model_config = ConfigDict(extra="forbid")

    entities: dict[str, Any] | None = Field(None, description="Join keys of one entity: {'customer_id': 42}.")
    features: dict[str, Any] | None = Field(None, description="Request-time features: {'amount': 12.5}.")
    rows: list[dict[str, Any]] | None = Field(
        None, min_length=1, description="Or: one object per row, keys and features mixed."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if self.rows is not None and (self.entities is not None or self.features is not None):
            raise ValueError("give rows, or entities and features, not both")
        if self.rows is None and self.entities is None and self.features is None:
            raise ValueError("give rows, or entities (and features)")
        return self

    def as_rows(self) -> list[dict[str, Any]]:
        if self.rows is not None:
            return self.rows
        return [{**(self.entities or {}), **(self.features or {})}]


class PredictRequest(EntityRows):
    """One entity (``entities`` + request-time ``features``) or a batch of flat ``rows``."""

    rows: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_ROWS,
        description="Or: one object per row, keys and features mixed.",
    )
    version: int | None = Field(None, description="Pin a version the endpoint serves (default: its policy).")
    at: AwareDatetime | None = Field(
        None,
        description="Look the features up as of this time instead of now (replays and backtests; such a "
        "request skips batching and the answer cache).",
    )


class PredictResponse(BaseModel):
    predictions: list[Any]
    model: str
    version: int
    request_id: str
    defaulted: dict[str, str] | None = Field(
        None,
        description="Only when the online store was unreachable: the inputs answered with their feature "
        "view's declared defaults (on_missing: default), and why.",
    )


_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": PredictRequest.model_json_schema()}}}}  # fmt: skip


def parse(data: bytes) -> PredictRequest:
    """The request body, or the 422 FastAPI would give for it (same ``loc`` paths, under ``body``)."""
    try:
        return PredictRequest.model_validate_json(data or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def router(caller: Any, inference: Inference, pipelines: Pipelines | None = None) -> APIRouter:
    api = APIRouter(prefix="/v1/endpoints", tags=["predict"], route_class=JSONBodyRoute)

    # The hot path: the body is parsed by pydantic-core straight from bytes and the answer written as JSON
    # bytes, skipping FastAPI's per-request body and response models (hundreds of microseconds); the
    # schemas are still declared for the OpenAPI document.
    @api.post("/{name}/predict", response_model=PredictResponse, openapi_extra=_BODY)
    async def predict(name: str, request: Request, project: Project = Depends(caller)) -> Response:
        if pipelines is not None and name in pipelines:  # a pipeline endpoint: its own body
            found = pipeline_route.answer(pipelines, project, name, await request.body())
            return Response(json.dumps(found).encode(), media_type="application/json")
        body = parse(await request.body())
        answer = await inference.predict_async(
            project, name, body.as_rows(), version=body.version, at=body.at
        )
        return Response(json.dumps(answer.to_dict()).encode(), media_type="application/json")

    @api.get("/{name}")
    def describe(name: str, project: Project = Depends(caller)) -> dict[str, Any]:
        return inference.describe(project, name)

    return api

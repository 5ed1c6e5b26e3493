"""``POST /v1/endpoints/{name}/explain``: why the endpoint answers what it does for some rows. The body is
the prediction body plus ``top_k``, ``target`` and ``budget``; parse, call the explaining service, answer."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from mloop.project import Project
from mloop.serving.explaining import MAX_ROWS, Explaining
from mloop.serving.http.bodies import JSONBodyRoute
from mloop.serving.http.routes.predict import PredictRequest


class ExplainRequest(PredictRequest):
    """The rows of a prediction request, and how to explain them."""

    top_k: int | None = Field(None, ge=1, description="Only each row's k attributions largest in magnitude.")
    target: int | str | None = Field(None, description="The class to explain, for a multiclass model.")
    budget: int | None = Field(
        None, ge=1, le=100_000,
        description="Model evaluations per row allowed to a model-agnostic method (a flavour with no exact one).",
    )  # fmt: skip


class RowExplanation(BaseModel):
    base_value: float = Field(description="The expected output the attributions start from.")
    attributions: dict[str, float] = Field(description="Per input feature (the top_k only, when asked).")
    prediction: Any = Field(description="What /predict answers for this row.")
    value: float = Field(description="base_value plus every attribution: the model's output in `output`.")
    delta: float | None = Field(None, description="An approximate method's |value - output|.")


class ExplainResponse(BaseModel):
    explanations: list[RowExplanation]
    output: str = Field(
        description="The space the attributions add up in: log_odds, probability, value, margin."
    )
    method: str = Field(description="tree_shap, linear_shap, integrated_gradients, kernel_shap, ...")
    model: str
    version: int


_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": ExplainRequest.model_json_schema()}}}}  # fmt: skip


def parse(data: bytes) -> ExplainRequest:
    """The request body, or the 422 FastAPI would give for it."""
    try:
        return ExplainRequest.model_validate_json(data or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def router(caller: Any, explaining: Explaining) -> APIRouter:
    api = APIRouter(prefix="/v1/endpoints", tags=["explain"], route_class=JSONBodyRoute)

    @api.post("/{name}/explain", response_model=ExplainResponse, openapi_extra=_BODY,
              description=f"Attributions of at most {MAX_ROWS} rows by the version that would answer them.")  # fmt: skip
    async def explain(name: str, request: Request, project: Project = Depends(caller)) -> Response:
        body = parse(await request.body())
        rows = body.as_rows()
        run = functools.partial(explaining.explain, project, name, rows, version=body.version, at=body.at,
                                top_k=body.top_k, target=body.target, budget=body.budget)  # fmt: skip
        if explaining.inline(project, name, rows, version=body.version, budget=body.budget):
            found = run()  # about a millisecond: on the loop, as a prediction
        else:  # milliseconds to seconds: off the event loop, which answers predictions meanwhile
            found = await run_in_threadpool(run)
        return Response(json.dumps(found.to_dict()).encode(), media_type="application/json")

    return api

"""``POST /v1/endpoints/{name}/predict`` when ``name`` is a pipeline (``pipelines:`` in mloop.yaml): the body
is ``{"inputs": [{"user_id": 7}], "filter": {...}, "exclude": [...], "n": 20, "at": "2026-05-20T10:00:00Z"}`` (``at`` optional). Parse, call
:class:`~mloop.serving.pipeline.Pipelines`, answer; no logic here. Pipelines answer on the v1 route only."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from mloop.serving.pipeline import Pipelines
from mloop.serving.predictor import MAX_ROWS


class PipelineRequest(BaseModel):
    """The users to recommend for, and what to recommend."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[dict[str, Any]] = Field(
        ..., min_length=1, max_length=MAX_ROWS, description="One object per user: {'user_id': 7}."
    )
    filter: dict[str, Any] | None = Field(
        None, description="Item attributes to match: {'category': 'books'}."
    )
    exclude: list[Any] = Field(default_factory=list, description="Item ids never to answer.")
    n: int | None = Field(None, ge=1, le=10_000, description="Items per user (default: the pipeline's n).")
    at: AwareDatetime | None = Field(
        None,
        description="Every stage looks its features up as of this time instead of now (replays, backtests).",
    )


def answer(pipelines: Pipelines, project: Any, name: str, data: bytes) -> dict[str, Any]:
    """The pipeline's JSON answer to the request body ``data`` (a 422 naming the field when it is invalid)."""
    try:
        body = PipelineRequest.model_validate_json(data or b"null")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    found = pipelines.predict(
        project, name, body.inputs, filter=body.filter, exclude=body.exclude, n=body.n, at=body.at
    )
    return found.to_dict()

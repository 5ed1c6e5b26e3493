"""The v1 prediction API: ``POST /v1/endpoints/{name}/predict``. Parse, call the inference service,
answer; no logic here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mloop.project import Project
from mloop.serving.inference import Inference
from mloop.serving.predictor import MAX_ROWS


class PredictRequest(BaseModel):
    """One entity (``entities`` + request-time ``features``) or a batch of flat ``rows``."""

    model_config = ConfigDict(extra="forbid")

    entities: dict[str, Any] | None = Field(None, description="Join keys of one entity: {'customer_id': 42}.")
    features: dict[str, Any] | None = Field(None, description="Request-time features: {'amount': 12.5}.")
    rows: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_ROWS,
        description="Or: one object per row, keys and features mixed.",
    )
    version: int | None = Field(None, description="Pin a version the endpoint serves (default: its policy).")

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        if self.rows is not None and (self.entities is not None or self.features is not None):
            raise ValueError("give rows, or entities and features, not both")
        if self.rows is None and self.entities is None and self.features is None:
            raise ValueError("give rows, or entities (and features)")
        return self

    def as_rows(self) -> list[dict[str, Any]]:
        if self.rows is not None:
            return self.rows
        return [{**(self.entities or {}), **(self.features or {})}]


class PredictResponse(BaseModel):
    predictions: list[Any]
    model: str
    version: int
    request_id: str


def router(caller: Any, inference: Inference) -> APIRouter:
    api = APIRouter(prefix="/v1/endpoints", tags=["predict"])

    @api.post("/{name}/predict", response_model=PredictResponse)
    async def predict(name: str, body: PredictRequest, project: Project = Depends(caller)) -> dict[str, Any]:
        answer = await inference.predict_async(project, name, body.as_rows(), version=body.version)
        return answer.to_dict()

    @api.get("/{name}")
    def describe(name: str, project: Project = Depends(caller)) -> dict[str, Any]:
        return inference.describe(project, name)

    return api

"""The feature server: ``POST /v1/features/online`` and ``POST /v1/features/push``. Parse, call
``project.features``, answer; no logic here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mloop.project import Project
from mloop.serving.http.bodies import JSONBodyRoute


class OnlineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(
        ..., min_length=1, description="Feature references: 'view:feature' or 'view:*'."
    )
    entities: dict[str, list[Any]] | None = Field(
        None, description="Join keys (and request fields) as columns."
    )
    entity_rows: list[dict[str, Any]] | None = Field(None, description="Or: one object per entity row.")
    full_feature_names: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> OnlineRequest:
        if (self.entities is None) == (self.entity_rows is None):
            raise ValueError("give either entities (columns) or entity_rows (objects), not both or neither")
        return self


class OnlineResponse(BaseModel):
    features: dict[str, list[Any]]


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push_source: str
    rows: list[dict[str, Any]] = Field(..., min_length=1)


def router(caller: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/features", tags=["features"], route_class=JSONBodyRoute)

    @api.post("/online", response_model=OnlineResponse)
    def online(body: OnlineRequest, project: Project = Depends(caller)) -> dict[str, Any]:
        rows = body.entities if body.entities is not None else body.entity_rows
        return {
            "features": project.features.online(
                rows, body.features, full_feature_names=body.full_feature_names
            )
        }

    @api.post("/push")
    def push(body: PushRequest, project: Project = Depends(caller)) -> dict[str, Any]:
        report = project.features.push(body.push_source, body.rows)
        return {
            "source": report.source,
            "rows": report.rows,
            "views": report.views,
            "written": report.written,
        }

    return api

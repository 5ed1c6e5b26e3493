"""``POST /v1/feedback``: ground-truth labels for logged predictions. Parse, call the feedback service,
answer; no logic here (see :mod:`mloop.predictions.feedback`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mloop.predictions.feedback import MAX_ITEMS, Feedback, Label
from mloop.project import Project
from mloop.serving.http.bodies import JSONBodyRoute


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(..., min_length=1, max_length=200, description="From the prediction's answer.")
    label: Any = Field(..., description="The ground truth: a finite number, a boolean or a string.")
    row: int = Field(0, ge=0, description="The row within a multi-row request.")


class FeedbackRequest(BaseModel):
    """One label (``request_id``, ``label``, ``row``) or several (``items``)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(None, min_length=1, max_length=200)
    label: Any = None
    row: int = Field(0, ge=0)
    items: list[FeedbackItem] | None = Field(None, min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _one_form(self) -> FeedbackRequest:
        single = self.model_fields_set & {"request_id", "label", "row"}
        if self.items is not None and single:
            raise ValueError("give items, or request_id and label, not both")
        if self.items is None and not {"request_id", "label"} <= single:
            raise ValueError('give request_id and label, or items: [{"request_id": ..., "label": ...}]')
        return self

    def as_labels(self) -> list[Label]:
        if self.items is not None:
            return [Label(item.request_id, item.label, item.row) for item in self.items]
        return [Label(str(self.request_id), self.label, self.row)]


class FeedbackResponse(BaseModel):
    accepted: int = Field(..., description="Labels stored.")
    unknown: list[str] = Field(..., description="Request ids not in the prediction log; nothing stored.")


def router(caller: Any, feedback: Feedback) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["feedback"], route_class=JSONBodyRoute)

    @api.post("/feedback", response_model=FeedbackResponse)
    def attach(body: FeedbackRequest, project: Project = Depends(caller)) -> dict[str, Any]:
        return feedback.attach(project, body.as_labels()).to_dict()

    return api

"""What the inference service answered for one request: the record the prediction log keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    request_id: str
    endpoint: str
    model: str
    version: int
    revision: int
    predictions: list[Any]
    inputs: dict[str, list[Any]]
    seconds: float
    # The request's own fields the model did not take (its join keys, request data of on-demand views),
    # as columns: logged so that a subject can be found (erasure) by the key they were served under.
    keys: dict[str, list[Any]] = field(default_factory=dict)
    # Inputs answered with their feature view's declared defaults, and why ("online_store_unavailable").
    defaulted: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        answer = {"predictions": self.predictions, "model": self.model, "version": self.version,
                  "request_id": self.request_id}  # fmt: skip
        if self.defaulted:  # only then: a normal answer keeps its shape
            answer["defaulted"] = self.defaulted
        return answer

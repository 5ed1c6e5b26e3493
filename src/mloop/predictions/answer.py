"""What the inference service answered for one request: the record the prediction log keeps."""

from __future__ import annotations

from dataclasses import dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": self.predictions, "model": self.model, "version": self.version,
                "request_id": self.request_id}  # fmt: skip

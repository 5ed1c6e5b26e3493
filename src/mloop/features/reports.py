"""What feature-store operations report back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mloop.features.materialize import Chunk


@dataclass
class MaterializeReport:
    end: datetime
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, view: str, chunk: Chunk) -> None:
        entry = self.views.setdefault(view, {"chunks": 0, "rows": 0, "values": 0, "last_event_ts": None})
        entry["chunks"] += 1
        entry["rows"] += chunk.rows
        entry["values"] += chunk.values
        if chunk.last_event_ts and (
            entry["last_event_ts"] is None or chunk.last_event_ts > entry["last_event_ts"]
        ):
            entry["last_event_ts"] = chunk.last_event_ts

    @property
    def values(self) -> int:
        return sum(v["values"] for v in self.views.values())

    @property
    def values_per_second(self) -> float:
        return self.values / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "end": self.end.isoformat(),
            "views": {
                name: {**v, "last_event_ts": v["last_event_ts"].isoformat() if v["last_event_ts"] else None}
                for name, v in self.views.items()
            },
            "values": self.values,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "seconds": self.seconds, "values_per_second": self.values_per_second}


@dataclass
class PushReport:
    source: str
    rows: int
    written: int = 0
    views: list[str] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FreshnessInfo:
    view: str
    version: int
    last_event_ts: datetime | None
    watermark: datetime | None
    now: datetime

    @property
    def lag_seconds(self) -> float | None:
        return (self.now - self.watermark).total_seconds() if self.watermark else None

    @property
    def age_seconds(self) -> float | None:
        return (self.now - self.last_event_ts).total_seconds() if self.last_event_ts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "version": self.version,
            "last_event_ts": self.last_event_ts.isoformat() if self.last_event_ts else None,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "lag_seconds": self.lag_seconds,
            "age_seconds": self.age_seconds,
        }

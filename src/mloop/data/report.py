"""What an ingestion did: rows read, accepted and quarantined, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class IngestReport:
    """Returned by ``project.data.ingest`` and ``validate``. ``accepted + quarantined == read``, always."""

    dataset: str
    source: str
    fingerprint: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    ingest_id: str | None = None
    files: list[str] = field(default_factory=list)
    quarantine: str | None = None
    schema_version: int | None = None
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    skipped: bool = False  # the same content was ingested before (see ingest_id)
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for tuning

    @property
    def ok(self) -> bool:
        return self.rows_quarantined == 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("min_ts", "max_ts"):
            out[key] = out[key].isoformat() if out[key] else None
        return out

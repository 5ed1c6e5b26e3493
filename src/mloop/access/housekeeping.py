"""``project.housekeeping``: check the artifact store, and clear what killed uploads left in it.

>>> report = project.housekeeping.verify_artifacts()      # doctest: +SKIP
>>> report.corrupt, [t.key for t in report.temp_files]     # doctest: +SKIP
([], ['sha256/ab/.abcd....tmp'])
>>> project.housekeeping.clean_temp_files()               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mloop._service import Service
from mloop.artifacts.base import TempBlob
from mloop.artifacts.store import SAFE_TEMP_AGE


@dataclass
class ArtifactReport:
    """What ``verify_artifacts`` found: how many blobs it re-hashed, the corrupt ones, the temp files."""

    url: str
    checked: int
    corrupt: list[str]
    temp_files: list[TempBlob] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "corrupt": self.corrupt,
            "temp_files": [t.to_dict(self.at) for t in self.temp_files],
        }


class Housekeeping(Service):
    """Checks any valid key may run (they show digests and sizes, no content); cleaning needs
    ``project.admin`` and is audited."""

    def verify_artifacts(self) -> ArtifactReport:
        """Re-hash every blob; list the corrupt ones and every temp file of an upload."""
        store = self._ctx.artifacts
        digests = list(store.digests())
        corrupt = [d for d in digests if not store.verify(d)]
        return ArtifactReport(store.url, len(digests), corrupt, store.temp_files())

    def clean_temp_files(self, older_than: timedelta = SAFE_TEMP_AGE) -> list[TempBlob]:
        """Delete the artifact store's temp files older than ``older_than`` (default an hour, so an upload
        in flight is left alone); returns what was deleted."""
        with self._mutate("project.admin", "artifacts", action="artifacts.clean",
                          older_than_seconds=older_than.total_seconds()) as change:  # fmt: skip
            removed = self._ctx.artifacts.clean_temp_files(older_than)
            change.payload.update(files=len(removed), bytes=sum(t.size for t in removed))
        return removed

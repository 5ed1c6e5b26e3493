"""The seam between the artifact store and where bytes live: it only moves bytes, by key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol


@dataclass(frozen=True)
class TempBlob:
    """A temporary file of an upload: in flight, or left behind by a process killed mid-upload."""

    key: str
    size: int
    modified: datetime  # UTC

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {"path": self.key, "size": self.size, "modified": self.modified.isoformat(),
                "age_seconds": round((now - self.modified).total_seconds(), 3)}  # fmt: skip


class BlobBackend(Protocol):
    """Where blobs live. Keys are relative paths with ``/``; ``put`` must be atomic (all or nothing)."""

    url: str

    def put(self, key: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` under ``key``, replacing nothing half-written."""

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for reading; raises ``FileNotFoundError`` if it does not exist."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def temps(self) -> Iterator[TempBlob]:
        """Every temporary upload file (which ``keys`` hides); ``delete(temp.key)`` removes one."""

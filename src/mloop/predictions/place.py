"""Where the prediction log lives: segments on this server's disk, compacted Parquet in the data store.

With a local ``data_url`` both are ``<data_url>/_predictions`` (as always). With ``data_url`` on S3 the
segments (append-only JSON lines, written on the request path, and each writer's lock) stay in a local
spool folder of each server (``prediction_spool``), and the compacted Parquet parts and the feedback
files go to ``<data_url>/_predictions`` on S3, where every replica's compactor publishes them whole and
every reader (monitoring, the loop) finds them. When S3 is down, segments keep accumulating in the
spool and are compacted once it is back: serving never waits for S3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mloop.storage import DataStorage
from mloop.storage.local import LocalDataStorage

SEGMENTS = "segments"


@dataclass(frozen=True)
class LogFolder:
    """The prediction log's two places: ``spool`` (local segments) and ``parts`` (Parquet, on ``storage``)."""

    spool: Path
    parts: str
    storage: DataStorage

    @classmethod
    def of(cls, folder: LogFolder | Path | str) -> LogFolder:
        """``folder`` itself, or the log kept wholly in the local folder ``folder``."""
        if isinstance(folder, LogFolder):
            return folder
        return cls(Path(folder), str(folder), LocalDataStorage(str(folder)))

    @property
    def segments(self) -> Path:
        return self.spool / SEGMENTS

    def join(self, *parts: str) -> str:
        return self.storage.join(self.parts, *parts)

    def exists(self) -> bool:
        """Whether anything was ever logged here (segments, or the Parquet folder of a local log)."""
        return self.spool.is_dir() or (not self.storage.remote and Path(self.parts).is_dir())

    def __str__(self) -> str:
        return str(self.spool) if str(self.spool) == self.parts else f"{self.spool} + {self.parts}"

"""What each serving process used, beside the prediction log: one small append-only JSON-lines file per
``mloop serve`` process (``<data_url>/_usage/<host>-<pid>-<start>.jsonl``), a line a minute and one at
shutdown, read by the review to price a thousand predictions (``mloop cost``).

Every figure in a line is cumulative since the process started (CPU seconds, requests per endpoint), or
an instant (resident memory): a reader takes differences between two lines, so a lost line (a ``kill -9``
before the minute) costs precision, never a wrong total.

>>> samples = read_usage(usage_folder(project.settings))         # doctest: +SKIP
>>> samples[0].requests                                           # doctest: +SKIP
{'fraud': 1200}
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mloop.config import Settings

FOLDER = "_usage"
log = logging.getLogger("mloop.predictions")


def usage_folder(settings: Settings) -> Path:
    """``<data_url>/_usage``; on object storage, beside this server's prediction spool (each host then
    keeps its own: the review reads the servers of the host it runs on)."""
    if "://" not in settings.data_url:
        return Path(settings.data_url) / FOLDER
    return Path(settings.prediction_spool).parent / FOLDER


@dataclass(frozen=True)
class Sample:
    """One line: a serving process's use from its start (``started``) to ``at``."""

    process: str  # <host>-<pid>-<start>: the file's name
    started: datetime
    at: datetime
    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    requests: Mapping[str, int] = field(default_factory=dict)  # answered, by endpoint

    def to_json(self) -> str:
        return json.dumps({"started": self.started.isoformat(), "at": self.at.isoformat(),
                           "cpu_seconds": round(self.cpu_seconds, 6), "rss_bytes": self.rss_bytes,
                           "peak_rss_bytes": self.peak_rss_bytes, "requests": dict(self.requests)},
                          sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, process: str, line: str) -> Sample:
        data: dict[str, Any] = json.loads(line)
        return cls(process, datetime.fromisoformat(data["started"]), datetime.fromisoformat(data["at"]),
                   float(data["cpu_seconds"]), int(data["rss_bytes"]), int(data["peak_rss_bytes"]),
                   {str(k): int(v) for k, v in data["requests"].items()})  # fmt: skip


class UsageFile:
    """The append-only file of one process. Each line goes out in one ``write`` on an ``O_APPEND``
    descriptor, so a crash leaves whole lines (a torn last one is skipped by :func:`read_usage`)."""

    def __init__(self, folder: Path, started: datetime) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.process = f"{socket.gethostname()}-{os.getpid()}-{started:%Y%m%dT%H%M%S}"
        self.path = folder / f"{self.process}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, sample: Sample) -> None:
        os.write(self._fd, (sample.to_json() + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


def read_usage(folder: Path) -> list[Sample]:
    """Every sample of every serving process, oldest first per process (none when no server ran)."""
    samples: list[Sample] = []
    if not folder.is_dir():
        return samples
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                samples.append(Sample.from_json(path.stem, line))
            except (ValueError, KeyError, TypeError) as exc:  # a line torn by a crash: the next one counts
                log.warning("skipping line %d of %s: %s", number, path, exc)
    return samples

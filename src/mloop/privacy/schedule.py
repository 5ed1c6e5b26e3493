"""Retention on a schedule: ``mloop serve`` purges what ``retention:`` no longer keeps, every hour.

The server is the process that runs without anyone remembering to start it (a loop controller runs only
where continuous training is set up), and it writes the prediction log that grows. With several replicas
each purges; purging is idempotent, so the second finds nothing and writes no audit event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mloop.privacy")

INTERVAL_SECONDS = 3600.0
FIRST_SECONDS = 60.0  # after start: not while the server loads its models and takes its first requests


class RetentionSchedule:
    """Calls ``purge`` every ``interval`` seconds on a daemon thread until :meth:`close`."""

    def __init__(
        self, purge: Callable[[], Any], *, interval: float = INTERVAL_SECONDS, first: float = FIRST_SECONDS
    ) -> None:
        self._purge, self.interval, self.first = purge, interval, first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> RetentionSchedule:
        self._thread = threading.Thread(target=self._loop, name="mloop-retention", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        wait = self.first
        while not self._stop.wait(wait):
            wait = self.interval
            try:
                report = self._purge()
                self.runs += 1
                if getattr(report, "removed", 0):
                    log.info("retention: purged %s", report.to_dict())
            except Exception:  # a refused permission or a full disk: logged, tried again next hour
                log.exception("retention: the scheduled purge failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

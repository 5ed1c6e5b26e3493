"""The alert ``<endpoint>/online-store/down``: open while an endpoint's feature lookups cannot reach the
online store, resolved by the first lookup that reaches it again.

The request path only updates a set in memory (a membership test per answered request); opening and
resolving the incident (the metadata store, the sinks: a webhook may take seconds) run on one background
thread, in the order they happened. Each server process watches its own lookups; the incident is one per
endpoint (:meth:`~mloop.monitoring.service.MonitoringService.settle` opens it once), so with several
workers the first to fail opens it and the first to read again resolves it.

>>> alerts = OnlineStoreAlerts(project)                            # doctest: +SKIP
>>> alerts.failed("fraud", "answered with defaults")                # doctest: +SKIP
>>> alerts.reached("fraud")                                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from mloop._redis import redact
from mloop._time import utcnow
from mloop.monitoring.alerts import ONLINE_STORE_DOWN, Alert

log = logging.getLogger("mloop.serving")

NAME = ONLINE_STORE_DOWN
BACKLOG = 1_000  # changes waiting for the thread; an outage makes two per endpoint, so never reached


def key(endpoint: str) -> str:
    """The alert's de-duplication key."""
    return f"{endpoint}/online-store/down"


class OnlineStoreAlerts:
    """Opens and resolves ``<endpoint>/online-store/down`` for one server process."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self._down: set[str] = set()
        self._lock = threading.Lock()
        self._changes: queue.Queue[tuple[str, Alert | None] | None] = queue.Queue(BACKLOG)
        self._thread: threading.Thread | None = None

    def failed(self, endpoint: str, outcome: str) -> None:
        """A lookup of ``endpoint`` could not reach the store; ``outcome``: what the caller got."""
        if endpoint in self._down:
            return
        with self._lock:
            if endpoint in self._down:
                return
            self._down.add(endpoint)
        store = redact(self.project.settings.online_url)
        alert = Alert(key=key(endpoint), name=NAME, severity="page", endpoint=endpoint,
                      summary=f"{endpoint}: the online store {store} cannot be reached; {outcome}",
                      description="Start the online store (Redis) or fix online_url; lookups recover at "
                      "the first request after it answers again.", started_at=utcnow())  # fmt: skip
        self._send(endpoint, alert)

    def reached(self, endpoint: str) -> None:
        """A lookup of ``endpoint`` read the store: resolves the alert if this process opened it."""
        if endpoint not in self._down:  # the hot path: nothing to do
            return
        with self._lock:
            if endpoint not in self._down:
                return
            self._down.discard(endpoint)
        self._send(endpoint, None)

    def down(self) -> set[str]:
        """The endpoints whose last lookup in this process could not reach the store."""
        return set(self._down)

    def _send(self, endpoint: str, alert: Alert | None) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="mloop-store-alerts", daemon=True)
                    self._thread.start()
        try:
            self._changes.put_nowait((endpoint, alert))
        except queue.Full:
            log.error("online store alerts: backlog full, %s of %s not sent", key(endpoint), endpoint)

    def _run(self) -> None:
        while True:
            change = self._changes.get()
            try:
                if change is None:
                    return
                endpoint, alert = change
                self.project.monitoring.settle(
                    endpoint, key(endpoint), alert, reason="the online store answers again"
                )
            except Exception:  # the metadata store down too: the alert is logged, the server keeps answering
                log.exception("online store alerts: could not settle %s", change and key(change[0]))
            finally:
                self._changes.task_done()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every change so far is settled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._changes.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        if self._thread is not None:
            self._changes.put(None)
            self._thread.join(timeout=5)
            self._thread = None

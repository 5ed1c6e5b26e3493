"""An alert while a deployed revision does not load in this server (a corrupt artifact, a missing export).

The endpoint table keeps such an endpoint on its previous revision (:mod:`mloop.serving.endpoints`), so
callers see nothing; without an alert nobody would learn that the deploy did not take effect. After each
poll :class:`LoadAlerts` compares the table's refusals with those it last saw and keeps one incident per
endpoint in step, keyed ``"<endpoint>/deploy/load-failed"``: opened (an event ``monitoring.alert`` in the
event log, and the sinks notified) with the version and the reason, resolved once the endpoint serves the
revision deployed, or is undeployed. A refusal that changes (another version deployed, also broken) ends
the old incident and opens a new one.

>>> table.listeners.append(LoadAlerts(project, table))   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from mloop._time import utcnow
from mloop.errors import PermissionDenied
from mloop.monitoring.alerts import Alert
from mloop.project import Project
from mloop.serving.endpoints import EndpointTable, Refusal

log = logging.getLogger("mloop.serving")

SEVERITY = "ticket"  # callers are still answered (by the previous revision); a person must fix the artifact
_BROKEN = "Fix or re-register the artifact and deploy again, or roll back."
_UNREACHABLE = (
    "The server tries again at every poll and serves the revision once the store answers (this alert then "
    "resolves); bring the store back, nothing needs deploying again."
)


def alert_key(endpoint: str) -> str:
    """The de-duplication key of ``endpoint``'s load failure: ``"fraud/deploy/load-failed"``."""
    return f"{endpoint}/deploy/load-failed"


def load_alert(refusal: Refusal, now: datetime) -> Alert:
    """The alert saying that ``refusal``'s revision is not served, naming its version and the reason."""
    return Alert(
        key=alert_key(refusal.endpoint), name="load_failed", severity=SEVERITY, endpoint=refusal.endpoint,
        summary=f"{refusal.model} v{refusal.version} (revision {refusal.revision}) does not load; "
                "the endpoint stays on its previous revision",
        description=f"{refusal.reason} {_UNREACHABLE if refusal.unreachable else _BROKEN}",
        labels={"model": refusal.model, "version": str(refusal.version), "revision": str(refusal.revision)},
        started_at=now,
    )  # fmt: skip


class LoadAlerts:
    """A listener of :class:`EndpointTable` (``table.listeners``) keeping the load-failure incidents of
    its endpoints in step with ``table.refused``; each change is written once, by the server that saw it."""

    def __init__(
        self, project: Project, table: EndpointTable, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.project = project
        self.table = table
        self.clock = clock
        self._seen: dict[str, Refusal] | None = None  # None: nothing settled by this process yet
        self._allowed = True

    def __call__(self) -> None:
        refused = dict(self.table.refused)
        if refused == self._seen or not self._allowed:
            return
        try:
            self._update(refused)
        except PermissionDenied as exc:  # said once, not at every poll: /v2/health/ready still tells
            self._allowed = False
            log.warning(
                "no load-failure alerts from this server: %s Serve as a user with monitoring.write.", exc
            )

    def _update(self, refused: dict[str, Refusal]) -> None:
        # At the first poll every live endpoint is settled: an incident a previous server opened ends here.
        previous = self._seen if self._seen is not None else {}
        endpoints = (
            set(refused) | set(previous) | (set(self.table.endpoints()) if self._seen is None else set())
        )
        for endpoint in sorted(endpoints):
            before, now = previous.get(endpoint), refused.get(endpoint)
            if self._seen is not None and before == now:
                continue
            self._settle(endpoint, before, now)
        self._seen = refused  # only once every change was written: a failure is retried at the next poll

    def _settle(self, endpoint: str, before: Refusal | None, now: Refusal | None) -> None:
        monitoring = self.project.monitoring
        at = self.clock()
        if before is not None and now is not None:  # another broken revision: the old incident ends
            monitoring.settle(endpoint, alert_key(endpoint), None, now=at,
                              reason=f"revision {now.revision} replaced revision {before.revision}")  # fmt: skip
        if now is not None:
            monitoring.settle(endpoint, alert_key(endpoint), load_alert(now, at), now=at)  # the sinks log it
            return
        live = self.table.endpoints().get(endpoint)
        reason = (
            f"revision {live.revision} loads and serves" if live is not None else "the endpoint is undeployed"
        )
        monitoring.settle(endpoint, alert_key(endpoint), None, now=at, reason=reason)

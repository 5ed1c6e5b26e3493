"""``project.audit``: read and verify the hash-chained event log."""

from __future__ import annotations

from mloop._service import Service
from mloop.security import audit_chain
from mloop.security.audit_chain import AuditReport, Event


class AuditLog(Service):
    def verify(self) -> AuditReport:
        """Check every event; ``report.ok`` is False and ``report.problems`` says where if anything changed."""
        self._authorize("audit.read", "audit")
        return audit_chain.verify(self._ctx.store, self._ctx.keying)

    def events(
        self,
        *,
        after: int = 0,
        action: str | None = None,
        resource: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events in order; ``action`` and ``resource`` accept ``*`` wildcards (``data.*``, ``dataset:txn*``)."""
        self._authorize("audit.read", "audit")
        return list(
            audit_chain.iter_events(
                self._ctx.store, after=after, action=action, resource=resource, actor=actor, limit=limit
            )
        )

"""``project.audit``: read and verify the hash-chained event log.

>>> page = project.audit.page(action="loop.*", limit=50)       # doctest: +SKIP   (the newest 50)
>>> older = project.audit.page(action="loop.*", before=page.older)   # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime

from mloop._service import Service
from mloop._time import as_utc
from mloop.errors import NotFound
from mloop.security import audit_chain
from mloop.security.audit_chain import AuditReport, Event, EventPage


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

    def page(
        self,
        *,
        action: str | None = None,
        resource: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> EventPage:
        """One page of events, newest first, filtered in the database (``since`` inclusive, ``until``
        exclusive; a naive time is UTC); the next page is ``before=page.older``, the previous
        ``after=page.newer``."""
        self._authorize("audit.read", "audit")
        return audit_chain.page_events(
            self._ctx.store, actions=[action] if action else [], resource=resource, actor=actor,
            since=as_utc(since) if since else None, until=as_utc(until) if until else None,
            before=before, after=after, limit=limit,
        )  # fmt: skip

    def event(self, seq: int) -> Event:
        """The event numbered ``seq``; :class:`NotFound` if there is none."""
        self._authorize("audit.read", "audit")
        found = audit_chain.get_event(self._ctx.store, seq)
        if found is None:
            raise NotFound(f"No audit event {seq}: `mloop audit log` lists the events and their numbers.")
        return found

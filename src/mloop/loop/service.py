"""``project.loop``: the loop's state and timeline per endpoint, and the human controls: pause, resume,
approve. Every loop decision is an audit event ``loop.<decision>`` on resource ``endpoint:<name>``
whose payload holds the reason and the numbers behind it (:mod:`mloop.loop.state` lists them).

>>> project.loop.pause("fraud", reason="holiday freeze")   # doctest: +SKIP
>>> project.loop.timeline("fraud")                         # doctest: +SKIP
[{'seq': 41, 'ts': '...', 'action': 'loop.trigger', 'endpoint': 'fraud', 'reason': 'PSI >= 0.2 ...'}, ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mloop._service import Service
from mloop.errors import MloopError
from mloop.loop.state import LoopState, fold
from mloop.security import audit_chain
from mloop.security.audit_chain import EventPage


class LoopService(Service):
    def state(self, endpoint: str) -> LoopState:
        self._authorize("loop.read", f"endpoint:{endpoint}")
        return fold(self._events(endpoint))

    def timeline(self, endpoint: str | None = None, *, since: datetime | None = None,
                 alerts: bool = True) -> list[dict[str, Any]]:  # fmt: skip
        """Loop decisions (and, with ``alerts``, monitoring alerts) in order, as plain dicts."""
        self._authorize("loop.read", f"endpoint:{endpoint}" if endpoint else "*")
        resource = f"endpoint:{endpoint}" if endpoint else "endpoint:*"
        actions = ["loop.*", "monitoring.*"] if alerts else ["loop.*"]
        found = [
            e for a in actions for e in audit_chain.iter_events(self._ctx.store, action=a, resource=resource)
        ]
        found.sort(key=lambda e: e.seq)
        return [_plain(e) for e in found if since is None or e.ts >= since]

    def timeline_page(self, endpoint: str, *, before: int | None = None, after: int | None = None,
                      limit: int = 50, alerts: bool = True) -> EventPage:  # fmt: skip
        """One page of ``endpoint``'s decisions (and alerts), newest first, read from the database page by
        page (``before=page.older`` is the next one); the events as they are stored, payload and all."""
        self._authorize("loop.read", f"endpoint:{endpoint}")
        return audit_chain.page_events(
            self._ctx.store, actions=["loop.*", "monitoring.*"] if alerts else ["loop.*"],
            resource=f"endpoint:{endpoint}", before=before, after=after, limit=limit,
        )  # fmt: skip

    def pause(self, endpoint: str, reason: str = "") -> LoopState:
        """Stop the loop acting on ``endpoint`` (a canary in progress stays where it is) until resumed."""
        self.record(endpoint, "pause", reason=reason or "paused by a person")
        return self.state(endpoint)

    def resume(self, endpoint: str) -> LoopState:
        self.record(endpoint, "resume", reason="resumed by a person")
        return self.state(endpoint)

    def approve(self, endpoint: str) -> LoopState:
        """Let a canary waiting for approval take the final step."""
        self._authorize("loop.operate", f"endpoint:{endpoint}")  # before telling where the loop stands
        current = self.state(endpoint)
        if current.phase != "awaiting":
            raise MloopError(
                f"{endpoint}: nothing waits for approval (the loop is {current.phase}); approve when "
                "`mloop loop timeline` shows loop.awaiting."
            )
        self.record(
            endpoint, "approve", challenger=current.challenger, reason=f"approved by {self.actor.name}"
        )
        return self.state(endpoint)

    def require_operator(self, endpoints: Sequence[str]) -> None:
        """Refuse a caller who may not operate the loop of every one of ``endpoints`` (of some endpoint, when
        none is given): checked before a controller takes the lease, which would stand the real one by."""
        if not endpoints:
            self.actor.require_somewhere("loop.operate", "endpoint")
        for endpoint in endpoints:
            self._authorize("loop.operate", f"endpoint:{endpoint}")

    def record(self, endpoint: str, decision: str, **payload: Any) -> None:
        """Append decision ``loop.<decision>`` for ``endpoint`` with its reason and numbers."""
        with self._mutate("loop.operate", f"endpoint:{endpoint}", action=f"loop.{decision}", **payload):
            pass

    def record_job(self, job: str, decision: str, **payload: Any) -> None:
        """Append ``loop.<decision>`` for scheduled job ``job`` (resource ``job:<name>``; see :mod:`mloop.loop.jobs`)."""
        with self._mutate("loop.operate", f"job:{job}", action=f"loop.{decision}", **payload):
            pass

    def job_events(self, job: str) -> list[dict[str, Any]]:
        """The runs and failures of scheduled job ``job``, oldest first, as plain dicts.

        >>> [e["action"] for e in project.loop.job_events("daily-yield")]   # doctest: +SKIP
        ['loop.job_failed', 'loop.job_run']
        """
        self._authorize("loop.read", f"job:{job}")
        events = audit_chain.iter_events(self._ctx.store, action="loop.*", resource=f"job:{job}")
        return [{**_plain(e), "job": job} for e in sorted(events, key=lambda e: e.seq)]

    def _events(self, endpoint: str) -> list[audit_chain.Event]:
        return list(
            audit_chain.iter_events(self._ctx.store, action="loop.*", resource=f"endpoint:{endpoint}")
        )


def _plain(event: audit_chain.Event) -> dict[str, Any]:
    return {"seq": event.seq, "ts": event.ts.isoformat(), "actor": event.actor, "action": event.action,
            "endpoint": event.resource.removeprefix("endpoint:"), **event.payload}  # fmt: skip

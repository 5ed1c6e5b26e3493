"""The project's state as the checks see it: read once per review, shared between the checks.

A check reads through :class:`Facts`, not the services directly, when another check may need the same
thing: each read is memoised for the review's lifetime (:meth:`Facts.memo`), so 40 checks cost about as
many queries as the few facts they share. Facts a single check needs can live beside that check, memoised
with ``facts.memo("name", make)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from mloop._time import utcnow
from mloop.config import Settings
from mloop.config.review import Requirement
from mloop.deployments import Deployment
from mloop.registry.versions import ModelVersion
from mloop.review.platform import Reviewed
from mloop.security import audit_chain
from mloop.security.audit_chain import Event

T = TypeVar("T")


class Facts:
    """A live project at one instant ``now``."""

    def __init__(self, platform: Reviewed, *, now: datetime | None = None) -> None:
        self.platform = platform
        self.now = now or utcnow()
        self._memo: dict[Any, Any] = {}

    @property
    def settings(self) -> Settings:
        return self.platform.settings

    def memo(self, key: Any, make: Callable[[], T]) -> T:
        """``make()`` the first time ``key`` is asked for, the same value after."""
        if key not in self._memo:
            self._memo[key] = make()
        value: T = self._memo[key]
        return value

    # ---- shared facts ----------------------------------------------------------------------------------

    @property
    def live(self) -> dict[str, Deployment]:
        """The live revision of every deployed endpoint, by name."""
        return self.memo("live", lambda: {d.endpoint: d for d in self.platform.deployments.list()})

    def history(self, endpoint: str) -> list[Deployment]:
        """Every revision of ``endpoint``, oldest first."""
        return self.memo(("history", endpoint), lambda: self.platform.deployments.history(endpoint))

    def serving(self, endpoint: str) -> list[ModelVersion]:
        """The versions that take a share of ``endpoint``'s traffic now (shadows excluded)."""
        deployment = self.live[endpoint]
        return [self.version(deployment.model, r.version) for r in deployment.routes if r.weight > 0]

    def version(self, model: str, version: int) -> ModelVersion:
        return self.memo(
            ("version", model, version), lambda: self.platform.models.get(model, version=version)
        )

    def events(self, action: str, *, since: timedelta | None = None) -> list[Event]:
        """Events whose action matches ``action`` (``*`` wildcards: ``loop.*``), oldest first, of the last
        ``since`` if given. Read from the chain itself: the review's own permission (``review.read``)
        covers what the audit log holds."""
        every = self.memo(
            ("events", action), lambda: list(audit_chain.iter_events(self.platform.store, action=action))
        )
        if since is None:
            return every
        return [e for e in every if e.ts >= self.now - since]  # one read of the action, whatever the windows

    def requirement(self, endpoint: str) -> Requirement | None:
        """What mloop.yaml's ``review.requirements`` states for ``endpoint``; None if nothing."""
        return self.settings.review.requirements.get(endpoint)

    def traffic(self, endpoint: str, since: str = "1d") -> list[dict[str, Any]]:
        """Per version over ``since``: requests, errors, p99 in ms, from the prediction log."""
        return self.memo(
            ("traffic", endpoint, since),
            lambda: self.platform.monitoring.traffic(endpoint, since=since, now=self.now),
        )

    def slo(self, endpoint: str) -> list[dict[str, Any]]:
        """The endpoint's SLOs with their error budgets (empty when none is configured)."""
        return self.memo(("slo", endpoint), lambda: self.platform.monitoring.slo(endpoint, now=self.now))

"""The service layer's spine: every mutation checks the actor's permission and appends an audit event
in the same transaction as the change, so there is no change without its event and no event without
its change.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from mloop.artifacts import ArtifactStore
from mloop.config import Settings
from mloop.crypto import PLAIN, ParquetFiles
from mloop.logs import log_context
from mloop.security import audit_chain
from mloop.security.actor import Actor
from mloop.security.audit_anchor import Keying
from mloop.storage import DataStorage, open_data_storage, space
from mloop.store.base import MetadataStore

log = logging.getLogger("mloop.service")


class Resources:
    """Connections and caches shared by every view of a project (``Project.as_actor`` copies share them):
    opened on first use, closed with the project."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Any] = {}

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        item = self._items.get(name)
        if item is None:
            with self._lock:
                item = self._items.get(name)
                if item is None:
                    item = self._items[name] = make()
        return item

    def drop(self, name: str) -> None:
        with self._lock:
            item = self._items.pop(name, None)
        if item is not None and hasattr(item, "close"):
            item.close()

    def close(self) -> None:
        for name in list(self._items):
            self.drop(name)


@dataclass(frozen=True)
class Context:
    """What every service needs: settings, stores, the project and who is acting."""

    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    project: str
    project_id: int
    actor: Actor
    resources: Resources = field(default_factory=Resources)
    keying: Keying | None = None  # the audit key and anchor, when MLOOP_AUDIT_KEY is set
    parquet: ParquetFiles = PLAIN  # how the Parquet files kept at rest are written and read
    storage: DataStorage | None = None  # where data_url keeps them (opened from the settings when None)

    @property
    def data(self) -> DataStorage:
        """The data store of ``data_url`` (a folder, or S3)."""
        if self.storage is not None:
            return self.storage
        settings = self.settings
        opened: DataStorage = self.resources.get(
            "data_storage", lambda: open_data_storage(settings.data_url, settings.scratch_dir)
        )
        return opened


@dataclass
class Change:
    """Handed to the body of a mutation: its session, and the event payload it may add to."""

    session: Session
    payload: dict[str, Any] = field(default_factory=dict)
    resource: str = ""


class Service:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    def _authorize(self, action: str, resource: str = "*") -> None:
        self._ctx.actor.require(action, resource)

    def _guarded(self, *writes: str) -> contextlib.AbstractContextManager[None]:
        """A full disk raised inside becomes :class:`~mloop.errors.DiskFull` naming the project's place
        (folder and setting) that is full, the settings the body ``writes`` to first; the one translation
        of ``ENOSPC`` (:mod:`mloop.storage.space`)."""
        return space.guarded(space.places(self._ctx.settings, *writes))

    @contextlib.contextmanager
    def _mutate(
        self, permission: str, resource: str, *, action: str | None = None, **payload: Any
    ) -> Iterator[Change]:
        """Check ``permission`` on ``resource``, run the body in a transaction, append the event (named
        ``action``, by default the permission), commit."""
        self._authorize(permission, resource)
        action = action or permission
        with log_context(actor=self.actor.name), self._guarded("metadata_url"):
            with self._ctx.store.write() as session:
                change = Change(session, dict(payload), resource)
                yield change
                event = audit_chain.append(
                    session,
                    project=self._ctx.project,
                    actor=self.actor.name,
                    action=action,
                    resource=change.resource,
                    payload=change.payload,
                    keying=self._ctx.keying,
                )
            if self._ctx.keying is not None:  # committed: anchor it outside the database
                self._ctx.keying.record(event.seq, event.hash)
            log.info("%s %s", action, change.resource, extra={"event": event.seq})

"""The controller's lease: a row in ``leases`` that one process holds until it expires. A controller
acts only while it holds the lease and renews it on every tick, so two controllers never both deploy;
when the holder dies, another takes over once the lease has expired.

Across hosts the lease is timed by the database's clock where it has one (PostgreSQL's ``now()``), not
by each controller's: two hosts whose clocks disagree by more than the lease would otherwise both see
the other's lease expired and both act. SQLite is one host: its controllers use that host's clock.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mloop._time import as_utc
from mloop.errors import MloopError
from mloop.store.base import MetadataStore
from mloop.store.clock import database_now
from mloop.store.schema import LeaseRow


def holder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def acquire(
    store: MetadataStore, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; False while another holds it.
    ``now`` (tests) defaults to the database's clock (see the module's docstring)."""
    with store.write() as session:  # one writer at a time: SQLite BEGIN IMMEDIATE, PostgreSQL row lock
        now = as_utc(now or database_now(store, session))
        row = session.execute(
            select(LeaseRow).where(LeaseRow.name == name).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
            return True
        if row.holder != holder and as_utc(row.expires_at) > now:
            return False
        row.holder, row.expires_at = holder, now + ttl
        return True


def release(store: MetadataStore, name: str, holder: str) -> None:
    """Give the lease up (only if ``holder`` still holds it), so another controller can start at once."""
    with store.write() as session:
        row = session.get(LeaseRow, name)
        if row is not None and row.holder == holder:
            session.delete(row)


def current(store: MetadataStore, name: str) -> tuple[str, datetime] | None:
    with store.read() as session:
        row = session.get(LeaseRow, name)
        return None if row is None else (row.holder, as_utc(row.expires_at))


class LeaseLost(MloopError):
    """A controller tried to act after its lease ran out; another controller may be acting."""


def fence(store: MetadataStore, name: str, holder: str) -> Callable[[Session], None]:
    """A check for :meth:`MetadataStore.fenced`: raises :class:`LeaseLost` unless ``holder`` still holds
    lease ``name``, read in the write's own transaction. Holding means the row still names ``holder``,
    expired or not: another controller takes the lease only by rewriting the row, a serialized write that
    cannot interleave with this one, so until then this controller's writes are still the only ones (a
    tick longer than the lease, a long in-process retrain, is not cut short)."""

    def check(session: Session) -> None:
        row = session.get(LeaseRow, name)
        if row is None or row.holder != holder:
            who = "nobody" if row is None else row.holder
            raise LeaseLost(
                f"Controller {holder} no longer holds the loop's lease ({who} does); its action was not "
                "written. Another controller acts now; this one stands by at its next tick."
            )

    return check

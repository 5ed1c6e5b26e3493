"""The controller's lease: a row in ``leases`` that one process holds until it expires. A controller
acts only while it holds the lease and renews it on every tick, so two controllers never both deploy;
when the holder dies, another takes over once the lease has expired.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import select

from mloop._time import as_utc, utcnow
from mloop.store.base import MetadataStore
from mloop.store.schema import LeaseRow


def holder_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def acquire(
    store: MetadataStore, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; False while another holds it."""
    now = as_utc(now or utcnow())
    with store.write() as session:  # one writer at a time: SQLite BEGIN IMMEDIATE, PostgreSQL row lock
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

"""The metadata store's clock: the one time that processes on hosts whose clocks disagree share.

A time one process writes and another compares with its own "now" (a lease's expiry, a run's heartbeat)
is taken from the database where it has a clock of its own: PostgreSQL's ``now()``. Each host's clock
would let a host 5 minutes ahead see another's lease expired, or a live run's heartbeat 5 minutes old.
SQLite is one host: its processes share that host's clock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop._time import as_utc, utcnow
from mloop.store.base import MetadataStore


def database_now(store: MetadataStore, session: Session) -> datetime:
    """Now on the database's clock (PostgreSQL: its transaction's start), or this host's (SQLite), in UTC."""
    if store.engine.dialect.name == "postgresql":
        found: datetime = session.execute(select(func.now())).scalar_one()
        return as_utc(found)
    return utcnow()

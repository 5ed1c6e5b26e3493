"""One writer per dataset at a time: an ingestion (or an erasure) holds its dataset's lock throughout.

In a folder the lock is a ``flock`` on ``<dataset>/.lock`` (readers of the manifest need none). On an
object store there is no file to lock and the writers may be on different hosts, so the lock is a lease
in the metadata store (the ``leases`` table every host shares): taken before any work, renewed by a side
thread while the work runs, given up at the end; the lease of a writer that died expires after
:data:`LEASE_SECONDS`, and the next writer removes what it left (:meth:`DataService._remove_orphans`). A holder that was a process of
this host which no longer runs frees its lease at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mloop._time import as_utc, utcnow
from mloop.storage import DataStorage
from mloop.store.base import MetadataStore
from mloop.store.schema import LeaseRow

LEASE_SECONDS = 60.0  # a dead writer's lease expires after this; a live one renews it every third of it
POLL_SECONDS = 0.25


@contextlib.contextmanager
def dataset_lock(
    storage: DataStorage, store: MetadataStore, lease: str, folder: str, *, exclusive: bool
) -> Iterator[None]:
    """Hold the lock of the dataset at ``folder`` (``lease``: its lease name, unique across projects)."""
    if not storage.remote:
        with _flocked(Path(folder), exclusive=exclusive):
            yield
        return
    if not exclusive:
        yield  # a reader of an object store reads committed manifests only: nothing to exclude
        return
    with _leased(store, lease):
        yield


@contextlib.contextmanager
def _flocked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _leased(store: MetadataStore, name: str) -> Iterator[None]:
    holder = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    while not _acquire(store, name, holder):
        time.sleep(POLL_SECONDS)  # another writer (here or on another host) holds it: wait, as flock does
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 3):
            with contextlib.suppress(Exception):  # a metadata hiccup: the next renewal tries again
                _acquire(store, name, holder)

    renewer = threading.Thread(target=renew, name="mloop-dataset-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with store.write() as session:
            row = session.get(LeaseRow, name)
            if row is not None and row.holder == holder:
                session.delete(row)


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` was a process of this host that has since died (its lease is then free at once,
    instead of when it expires)."""
    host, _, rest = holder.rpartition("-")[0].rpartition("-")
    if host != socket.gethostname() or not rest.isdigit():
        return False
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _acquire(store: MetadataStore, name: str, holder: str) -> bool:
    try:
        return _take(store, name, holder)
    except IntegrityError:
        return False  # two first takers at once (PostgreSQL): the other one inserted the row


def _take(store: MetadataStore, name: str, holder: str) -> bool:
    now = utcnow()
    expires = now + timedelta(seconds=LEASE_SECONDS)
    with store.write() as session:  # one writer at a time: SQLite BEGIN IMMEDIATE, PostgreSQL row lock
        row = session.execute(
            select(LeaseRow).where(LeaseRow.name == name).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            session.add(LeaseRow(name=name, holder=holder, expires_at=expires))
            return True
        if row.holder != holder and as_utc(row.expires_at) > now and not _dead_here(row.holder):
            return False
        row.holder, row.expires_at = holder, expires
        return True

"""The data keys of encryption at rest in the metadata store: wrapped by the master key, one active (the
newest unretired), the retired ones kept so that a file a rotation has not reached yet still opens.

>>> ring = open_keyring(settings, store, project_id)   # doctest: +SKIP
>>> ring.active_id                                     # doctest: +SKIP
'dk-20261206-3fa2c1d0'
"""

from __future__ import annotations

import base64

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.config import Settings
from mloop.crypto import Keyring, master_key
from mloop.crypto.keys import KeyRows
from mloop.store.base import MetadataStore
from mloop.store.schema import DataKeyRow


def rows(session: Session, project_id: int) -> KeyRows:
    """(key id, wrapped key, retired) of every data key, oldest first."""
    found = session.scalars(
        select(DataKeyRow)
        .where(DataKeyRow.project_id == project_id)
        .order_by(DataKeyRow.created_at, DataKeyRow.key_id)
    )
    return [(r.key_id, base64.b64decode(r.wrapped), r.retired_at is not None) for r in found]


def add(session: Session, project_id: int, key_id: str, wrapped: bytes) -> None:
    session.add(
        DataKeyRow(
            project_id=project_id,
            key_id=key_id,
            wrapped=base64.b64encode(wrapped).decode(),
            created_at=utcnow(),
            retired_at=None,
        )
    )


def retire(session: Session, project_id: int, keep: str) -> list[str]:
    """Retire every live data key but ``keep``; returns the ids retired."""
    live = [key_id for key_id, _, retired in rows(session, project_id) if not retired and key_id != keep]
    if live:
        session.execute(
            update(DataKeyRow)
            .where(DataKeyRow.project_id == project_id, DataKeyRow.key_id.in_(live))
            .values(retired_at=utcnow())
        )
    return live


def open_keyring(settings: Settings, store: MetadataStore, project_id: int) -> Keyring | None:
    """The project's keyring when encryption is enabled (its first data key is created here), else None.
    A master key that does not open the stored data keys is a :class:`~mloop.crypto.DataKeyError` now,
    before anything is read or written."""
    if not settings.encryption.enabled:
        return None
    env_key = settings.data_key.get_secret_value() if settings.data_key is not None else None
    master = master_key(settings.encryption, env_key)

    def load() -> KeyRows:
        with store.read() as session:
            return rows(session, project_id)

    ring = Keyring(master, load)
    if not load():  # the first use: make the first data key (checked again under the writers' lock)
        with store.write() as session:
            if not rows(session, project_id):
                key_id, wrapped = ring.create()
                add(session, project_id, key_id, wrapped)
    ring.refresh()  # unwraps every stored key now: a wrong master key fails here, at open
    return ring

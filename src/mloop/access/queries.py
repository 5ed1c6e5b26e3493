"""The SQL of users and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mloop.store.schema import ApiKeyRow, UserRow


def user(session: Session, name: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.name == name))


def users(session: Session) -> Sequence[UserRow]:
    """Every user, by name."""
    return session.scalars(select(UserRow).order_by(UserRow.name)).all()


def key(session: Session, key_id: str) -> tuple[ApiKeyRow | None, UserRow | None]:
    """The key with ``key_id`` and its owner (None, None when there is no such key)."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
    return row, (session.get(UserRow, row.user_id) if row is not None else None)


def keys(session: Session, owner: str | None = None) -> list[tuple[ApiKeyRow, str]]:
    """Every key with its owner's name (only ``owner``'s when given), oldest first."""
    query = select(ApiKeyRow, UserRow.name).join(UserRow, UserRow.id == ApiKeyRow.user_id)
    if owner:
        query = query.where(UserRow.name == owner)
    return [(row, name) for row, name in session.execute(query.order_by(ApiKeyRow.created_at))]


def touch_key(session: Session, row_id: int, at: datetime) -> None:
    """Record when a key was last used."""
    session.execute(update(ApiKeyRow).where(ApiKeyRow.id == row_id).values(last_used_at=at))

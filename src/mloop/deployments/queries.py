"""The SQL of deployments: revisions of an endpoint, the newest of each, the change stamp servers poll."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop.errors import NotFound
from mloop.store.schema import DeploymentRow


def latest(session: Session, project_id: int, endpoint: str) -> DeploymentRow | None:
    """The newest revision of ``endpoint``, or None when it was never deployed."""
    return session.scalars(
        select(DeploymentRow)
        .where(DeploymentRow.project_id == project_id, DeploymentRow.endpoint == endpoint)
        .order_by(DeploymentRow.revision.desc())
        .limit(1)
    ).first()


def revision(session: Session, project_id: int, endpoint: str, number: int) -> DeploymentRow:
    """Revision ``number`` of ``endpoint``; NotFound says which revisions exist."""
    row = session.scalars(
        select(DeploymentRow).where(
            DeploymentRow.project_id == project_id,
            DeploymentRow.endpoint == endpoint,
            DeploymentRow.revision == number,
        )
    ).first()
    if row is None:
        newest = latest(session, project_id, endpoint)
        if newest is None:
            raise NotFound(missing(session, project_id, endpoint))
        raise NotFound(
            f"Endpoint {endpoint!r} has no revision {number}; its revisions are 1 to {newest.revision}."
        )
    return row


def history(
    session: Session, project_id: int, endpoint: str, *, offset: int = 0, limit: int | None = None,
    newest_first: bool = False,
) -> Sequence[DeploymentRow]:  # fmt: skip
    """The revisions of ``endpoint``, oldest first (or newest first); ``limit`` of them from ``offset``."""
    order = DeploymentRow.revision.desc() if newest_first else DeploymentRow.revision
    return session.scalars(
        select(DeploymentRow)
        .where(DeploymentRow.project_id == project_id, DeploymentRow.endpoint == endpoint)
        .order_by(order)
        .offset(offset)
        .limit(limit)
    ).all()


def endpoints(session: Session, project_id: int) -> int:
    """How many endpoints were ever deployed in the project (undeployed ones included)."""
    found = session.scalar(
        select(func.count(DeploymentRow.endpoint.distinct())).where(DeploymentRow.project_id == project_id)
    )
    return int(found or 0)


def newest(
    session: Session, project_id: int, *, offset: int = 0, limit: int | None = None
) -> Sequence[DeploymentRow]:
    """The newest revision of every endpoint, by endpoint name (``limit`` of them from ``offset``)."""
    top = (
        select(DeploymentRow.endpoint, func.max(DeploymentRow.revision).label("revision"))
        .where(DeploymentRow.project_id == project_id)
        .group_by(DeploymentRow.endpoint)
        .subquery()
    )
    return session.scalars(
        select(DeploymentRow)
        .join(top, (DeploymentRow.endpoint == top.c.endpoint) & (DeploymentRow.revision == top.c.revision))
        .where(DeploymentRow.project_id == project_id)
        .order_by(DeploymentRow.endpoint)
        .offset(offset)
        .limit(limit)
    ).all()


def stamp(session: Session, project_id: int) -> int:
    """A number that grows with every new revision in the project (0 when there is none)."""
    found = session.scalar(select(func.max(DeploymentRow.id)).where(DeploymentRow.project_id == project_id))
    return int(found or 0)


def missing(session: Session, project_id: int, endpoint: str) -> str:
    """The message for an endpoint never deployed: the endpoints that exist, and how to deploy."""
    names = session.scalars(
        select(DeploymentRow.endpoint).where(DeploymentRow.project_id == project_id).distinct()
    ).all()
    known = ", ".join(sorted(names)) or "none yet"
    return (
        f"No endpoint {endpoint!r} has been deployed (endpoints: {known}). Deploy one with "
        f"`mloop deploy {endpoint} MODEL --version N`."
    )

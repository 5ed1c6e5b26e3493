"""The monitoring results' SQL: stored windows (``monitor_results``) and incidents (``alerts``) in the metadata store.

A result is one complete window of one endpoint and model version: its drift, or its performance.
Storing a window again replaces it (performance windows are recomputed while late labels arrive). An
incident is one row per alert key from the moment its rule first fires until it is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mloop._time import as_utc
from mloop.monitoring.alerts import Alert
from mloop.store.schema import AlertRow, MonitorResultRow

KINDS = ("drift", "performance")


def save(session: Session, project_id: int, endpoint: str, kind: str, entries: Iterable[Mapping[str, Any]],
         computed_at: datetime) -> int:  # fmt: skip
    """Store each entry (with ``start``, ``end``, ``version`` and ``rows``), replacing the same window's."""
    count = 0
    for entry in entries:
        start, end = (as_utc(datetime.fromisoformat(entry[k])) for k in ("start", "end"))
        version = int(entry.get("version") or 0)
        session.execute(
            delete(MonitorResultRow).where(
                MonitorResultRow.project_id == project_id, MonitorResultRow.endpoint == endpoint,
                MonitorResultRow.kind == kind, MonitorResultRow.version == version,
                MonitorResultRow.window_start == start, MonitorResultRow.window_end == end,
            )
        )  # fmt: skip
        session.add(MonitorResultRow(project_id=project_id, endpoint=endpoint, kind=kind, version=version,
                                     window_start=start, window_end=end, rows=int(entry.get("rows") or 0),
                                     computed_at=computed_at, result=dict(entry)))  # fmt: skip
        count += 1
    return count


def load(
    session: Session,
    project_id: int,
    endpoint: str,
    kind: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    size: Any = None,
) -> list[dict[str, Any]]:
    """Stored windows with ``since <= start`` and ``end <= until`` (of one window ``size`` if given),
    oldest first."""
    query = select(MonitorResultRow).where(
        MonitorResultRow.project_id == project_id, MonitorResultRow.endpoint == endpoint,
        MonitorResultRow.kind == kind,
    )  # fmt: skip
    if since is not None:
        query = query.where(MonitorResultRow.window_start >= as_utc(since))
    if until is not None:
        query = query.where(MonitorResultRow.window_end <= as_utc(until))
    rows = session.scalars(query.order_by(MonitorResultRow.window_start, MonitorResultRow.version)).all()
    return [r.result for r in rows if size is None or r.window_end - r.window_start == size]


def stored_windows(session: Session, project_id: int, endpoint: str, kind: str, since: datetime) -> set[str]:
    """ISO starts of the windows stored from ``since`` on (any version)."""
    query = select(MonitorResultRow.window_start, MonitorResultRow.window_end).where(
        MonitorResultRow.project_id == project_id, MonitorResultRow.endpoint == endpoint,
        MonitorResultRow.kind == kind, MonitorResultRow.window_start >= as_utc(since),
    )  # fmt: skip
    return {f"{as_utc(s).isoformat()}/{as_utc(e).isoformat()}" for s, e in session.execute(query)}


# ---- incidents ------------------------------------------------------------------------------------------


def open_incidents(session: Session, project_id: int, endpoint: str | None = None) -> dict[str, AlertRow]:
    query = select(AlertRow).where(AlertRow.project_id == project_id, AlertRow.resolved_at.is_(None))
    if endpoint is not None:
        query = query.where(AlertRow.endpoint == endpoint)
    return {row.key: row for row in session.scalars(query)}


def open_incident(session: Session, project_id: int, alert: Alert) -> AlertRow:
    row = AlertRow(project_id=project_id, key=alert.key, name=alert.name, endpoint=alert.endpoint,
                   severity=alert.severity, started_at=alert.started_at, last_seen=alert.started_at,
                   resolved_at=None, alert=alert.to_dict())  # fmt: skip
    session.add(row)
    return row


def incidents(
    session: Session, project_id: int, *, endpoint: str | None = None, open_only: bool = False,
    since: datetime | None = None, limit: int = 500, offset: int = 0,
) -> list[Alert]:  # fmt: skip
    """Incidents, newest first."""
    query = select(AlertRow).where(AlertRow.project_id == project_id)
    if endpoint is not None:
        query = query.where(AlertRow.endpoint == endpoint)
    if open_only:
        query = query.where(AlertRow.resolved_at.is_(None))
    if since is not None:
        query = query.where((AlertRow.resolved_at.is_(None)) | (AlertRow.resolved_at >= as_utc(since)))
    query = query.order_by(AlertRow.started_at.desc(), AlertRow.id.desc())
    rows = session.scalars(query.offset(max(0, offset)).limit(max(1, limit)))
    return [Alert.from_dict(row.alert) for row in rows]


def spans(session: Session, project_id: int, endpoint: str, name: str,
          since: datetime) -> list[tuple[datetime, datetime | None]]:  # fmt: skip
    """(started, resolved or None while open) of the endpoint's incidents of rule ``name`` that were open at
    some time after ``since``."""
    query = select(AlertRow.started_at, AlertRow.resolved_at).where(
        AlertRow.project_id == project_id, AlertRow.endpoint == endpoint, AlertRow.name == name,
        (AlertRow.resolved_at.is_(None)) | (AlertRow.resolved_at >= as_utc(since)),
    )  # fmt: skip
    return [(started, resolved) for started, resolved in session.execute(query).all()]


def settle_incident(session: Session, project_id: int, alert: Alert, action: str) -> None:
    """Store ``alert`` as its ``action`` says: ``monitoring.alert`` opens its incident, anything else
    (a resolution) updates the open one with its key, if there is one."""
    if action == "monitoring.alert":
        open_incident(session, project_id, alert)
        return
    row = open_incidents(session, project_id, alert.endpoint).get(alert.key)
    if row is not None:
        row.resolved_at, row.alert = alert.resolved_at, alert.to_dict()

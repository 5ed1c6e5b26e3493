"""The audit log: append-only and hash-chained.

Each event stores the hash of the one before it, and its own hash covers its content and that link, so
editing or deleting any event breaks the chain where it happened. The head (newest sequence number and
hash) is kept in its own row and updated with each append, so deleting the newest events is caught too.
Print the head with ``mloop audit head`` and keep it elsewhere to anchor the chain outside the database.

Against someone who can write the database (and so recompute every hash after an edit, and the head), set
an audit key: hashes become HMACs nobody without the key can recompute, and each committed event is
anchored in a file outside the database (:mod:`mloop.security.audit_anchor`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from mloop._time import utcnow
from mloop.errors import MloopError
from mloop.security.audit_anchor import AnchorState, Keying
from mloop.store.base import MetadataStore
from mloop.store.schema import AuditHeadRow, EventRow
from mloop.store.types import canonical_json

GENESIS = "0" * 64
MAX_PAGE = 500  # events on one page (a larger one would be slow to read and to render)


@dataclass(frozen=True)
class Event:
    seq: int
    ts: datetime
    project: str
    actor: str
    action: str
    resource: str
    payload: dict[str, Any]
    hash: str

    @classmethod
    def from_row(cls, row: EventRow) -> Event:
        columns = {f.name: getattr(row, f.name) for f in fields(cls)}
        return cls(**{**columns, "payload": json.loads(row.payload)})

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ts": self.ts.isoformat()}


@dataclass
class AuditReport:
    """The result of :func:`verify`: ``ok`` when every event is intact and none is missing."""

    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)
    keyed: bool = False  # verified with the audit key
    anchored_seq: int | None = None  # the newest event the anchor file vouches for

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


CHAINED = ("seq", "ts", "project", "actor", "action", "resource", "payload", "prev_hash")
"""The columns of an event that its hash covers: the event and the link to the one before it."""


def event_hash(keying: Keying | None = None, **chained: Any) -> str:
    """The SHA-256 of the :data:`CHAINED` columns (``payload`` as stored: canonical JSON text), or their
    HMAC-SHA256 with the audit key of ``keying``."""
    if set(chained) != set(CHAINED):
        raise TypeError(
            f"event_hash() takes exactly the columns {', '.join(CHAINED)}; got {', '.join(chained)}."
        )
    body = {name: chained[name] for name in CHAINED}
    body["ts"] = body["ts"].isoformat(timespec="microseconds")
    text = canonical_json(body).encode()
    return keying.digest(text) if keying is not None else hashlib.sha256(text).hexdigest()


def _row_hash(row: EventRow, keying: Keying | None = None) -> str:
    return event_hash(keying, **{name: getattr(row, name) for name in CHAINED})


def append(
    session: Session,
    *,
    project: str,
    actor: str,
    action: str,
    resource: str,
    payload: dict[str, Any],
    keying: Keying | None = None,
) -> Event:
    """Append one event inside the caller's transaction, so it commits (or not) with the change it records.
    With ``keying`` its hash is keyed; the caller anchors it (:meth:`Keying.record`) once committed."""
    head = session.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).scalar_one()
    row = EventRow(seq=head.seq + 1, ts=utcnow(), project=project, actor=actor, action=action,
                   resource=resource, payload=canonical_json(payload), prev_hash=head.hash)  # fmt: skip
    row.hash = _row_hash(row, keying)
    session.add(row)
    head.seq, head.hash = row.seq, row.hash
    session.flush()
    return Event.from_row(row)


def iter_events(
    store: MetadataStore,
    *,
    after: int = 0,
    action: str | None = None,
    resource: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> Iterator[Event]:
    query = select(EventRow).where(EventRow.seq > after).order_by(EventRow.seq)
    if action:
        query = query.where(EventRow.action.like(_like(action), escape="\\"))
    if resource:
        query = query.where(EventRow.resource.like(_like(resource), escape="\\"))
    if actor:
        query = query.where(EventRow.actor == actor)
    if limit:
        query = query.limit(limit)
    with store.read() as session:
        for row in session.scalars(query.execution_options(yield_per=1000)):
            yield Event.from_row(row)


@dataclass(frozen=True)
class EventPage:
    """One page of events, newest first, and the keys of the pages beside it: pass ``older`` as ``before``
    for the next (older) page and ``newer`` as ``after`` for the previous one; None at either end."""

    events: list[Event]
    older: int | None = None
    newer: int | None = None


def page_events(
    store: MetadataStore,
    *,
    actions: Sequence[str] = (),
    resource: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> EventPage:
    """The newest ``limit`` events matching every filter (``actions``: any of these patterns; ``since``
    inclusive, ``until`` exclusive), older than ``before`` or newer than ``after`` when given.

    Keyset pagination on the sequence number: the database reads one index range per page however deep the
    page is, where an OFFSET would walk every event it skips."""
    if not 1 <= limit <= MAX_PAGE:
        raise MloopError(f"A page holds 1 to {MAX_PAGE} events; got {limit}. Ask for fewer and page on.")
    where = _filters(actions, resource, actor, since, until)
    newest_first = select(EventRow).where(*where).order_by(EventRow.seq.desc())
    with store.read() as session:

        def exists(*more: ColumnElement[bool]) -> bool:
            return session.scalar(select(EventRow.seq).where(*where, *more).limit(1)) is not None

        if after is not None and before is None:
            oldest_first = select(EventRow).where(*where, EventRow.seq > after).order_by(EventRow.seq)
            rows = list(session.scalars(oldest_first.limit(limit + 1)))
            if len(rows) <= limit:  # the newest events: show a full first page rather than a short one
                return page_events(store, actions=actions, resource=resource, actor=actor, since=since,
                                   until=until, limit=limit)  # fmt: skip
            rows = rows[:limit][::-1]
            older = rows[-1].seq if exists(EventRow.seq < rows[-1].seq) else None
            return EventPage([Event.from_row(r) for r in rows], older=older, newer=rows[0].seq)
        query = newest_first if before is None else newest_first.where(EventRow.seq < before)
        rows = list(session.scalars(query.limit(limit + 1)))
        older = rows[limit - 1].seq if len(rows) > limit else None
        rows = rows[:limit]
        newer = None
        if before is not None and exists(EventRow.seq > (rows[0].seq if rows else before - 1)):
            newer = rows[0].seq if rows else before - 1
        return EventPage([Event.from_row(r) for r in rows], older=older, newer=newer)


def get_event(store: MetadataStore, seq: int) -> Event | None:
    with store.read() as session:
        row = session.get(EventRow, seq)
        return Event.from_row(row) if row is not None else None


def _filters(
    actions: Sequence[str],
    resource: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if actions:
        where.append(or_(*(EventRow.action.like(_like(a), escape="\\") for a in actions)))
    if resource:
        where.append(EventRow.resource.like(_like(resource), escape="\\"))
    if actor:
        where.append(EventRow.actor == actor)
    if since is not None:
        where.append(EventRow.ts >= since)
    if until is not None:
        where.append(EventRow.ts < until)
    return where


def _like(pattern: str) -> str:
    """A LIKE pattern in which only ``*`` is a wildcard: ``user:a_b`` must not match ``user:axb``."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def verify(store: MetadataStore, keying: Keying | None = None) -> AuditReport:
    """Walk the whole chain and report every edited, deleted or re-ordered event. With ``keying``, events
    from the first keyed one on must carry keyed hashes, and the chain must reach the anchored event."""
    report = AuditReport(keyed=keying is not None)
    anchor = keying.read() if keying is not None else AnchorState()
    report.problems += anchor.problems
    report.anchored_seq = anchor.seq if anchor.hash is not None else None
    expected_seq, prev = 1, GENESIS
    with store.read() as session:
        head = session.get(AuditHeadRow, 1)
        rows = session.scalars(select(EventRow).order_by(EventRow.seq).execution_options(yield_per=2000))
        for row in rows:
            report.checked += 1
            if row.seq != expected_seq:
                gap = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq} to {row.seq - 1}"
                report.problems.append(f"event(s) {gap} were deleted: the chain jumps to event {row.seq}")
            elif row.prev_hash != prev:
                report.problems.append(
                    f"event {row.seq} does not follow event {row.seq - 1}: the previous event was edited "
                    "or replaced"
                )
            _check_hash(row, keying, anchor, report)
            expected_seq, prev = row.seq + 1, row.hash
        if head is None:
            report.problems.append("the audit head row is missing")
        else:
            report.head_seq, report.head_hash = head.seq, head.hash
            if head.seq != expected_seq - 1 or head.hash != prev:
                if head.seq > expected_seq - 1:
                    report.problems.append(
                        f"the newest event(s) were deleted: the head records event {head.seq}, "
                        f"the log ends at {expected_seq - 1}"
                    )
                else:
                    report.problems.append("the audit head does not match the newest event")
    if anchor.hash is not None and anchor.seq > expected_seq - 1:
        report.problems.append(
            f"the newest event(s) were deleted: the anchor {keying.anchor if keying else ''} vouches for "
            f"event {anchor.seq}, the log ends at {expected_seq - 1}"
        )
    return report


def _check_hash(row: EventRow, keying: Keying | None, anchor: AnchorState, report: AuditReport) -> None:
    what = f"event {row.seq} ({row.action} on {row.resource})"
    if keying is None:
        if _row_hash(row) != row.hash:
            report.problems.append(f"{what} was edited")
        return
    if _row_hash(row, keying) == row.hash:
        if anchor.lines == 0 and not report.problems:
            report.problems.append(
                f"events are keyed (from {what} on) but the anchor {keying.anchor} is missing or empty: it "
                "was deleted, so the deletion of the newest events could go unseen"
            )
        anchored = anchor.hashes.get(row.seq)
        if anchored is not None and anchored != row.hash:
            report.problems.append(f"{what} is not the event the anchor recorded: it was replaced")
        return
    if _row_hash(row) == row.hash:
        if anchor.keyed_since is not None and row.seq >= anchor.keyed_since:
            report.problems.append(
                f"{what} has an unkeyed hash although events are keyed from {anchor.keyed_since} on: "
                "it was rewritten by someone without the audit key"
            )
        return  # history written before the key was set
    report.problems.append(f"{what} was edited")

"""``project.audit.page`` and ``project.audit.event``: the event log a page at a time, newest first, filtered
and paginated in the database (keyset on the sequence number)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

import mloop as ml
from mloop import Project
from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.security import Actor, Grant
from mloop.security.audit_chain import EventPage
from mloop.store.schema import EventRow


@pytest.fixture
def many(sqlite_project: Project) -> Project:
    """Events 2-13 after the local admin's (1): users u0-u5 added (2-7), then a key issued to each (8-13)."""
    for i in range(6):
        sqlite_project.users.add(f"u{i}", ["data_scientist"])
    for i in range(6):
        sqlite_project.keys.issue(f"u{i}")
    return sqlite_project


def seqs(page: EventPage) -> list[int]:
    return [e.seq for e in page.events]


def test_pages_walk_from_the_newest_to_the_oldest_and_back(many: Project) -> None:
    first = many.audit.page(limit=5)
    assert isinstance(first, ml.EventPage) and all(isinstance(e, ml.Event) for e in first.events)
    assert seqs(first) == [13, 12, 11, 10, 9] and first.newer is None and first.older == 9
    second = many.audit.page(before=first.older, limit=5)
    assert seqs(second) == [8, 7, 6, 5, 4] and second.older == 4 and second.newer == 8
    last = many.audit.page(before=second.older, limit=5)
    assert seqs(last) == [3, 2, 1] and last.older is None and last.newer == 3
    assert seqs(many.audit.page(after=last.newer, limit=5)) == seqs(second)
    assert seqs(many.audit.page(after=second.newer, limit=5)) == seqs(first)
    assert seqs(many.audit.page(after=10, limit=5)) == seqs(first)  # the newest page full, not 3 events


def test_filters_apply_before_the_page_is_cut(many: Project) -> None:
    keys = many.audit.page(action="keys.*", limit=4)
    assert seqs(keys) == [13, 12, 11, 10] and keys.older == 10
    assert seqs(many.audit.page(action="keys.*", before=keys.older, limit=4)) == [9, 8]
    assert seqs(many.audit.page(resource="user:u1")) == [9, 3]
    assert seqs(many.audit.page(actor="nobody")) == []


def test_a_time_range_reads_since_inclusive_until_exclusive(many: Project) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    with many.store.write() as session:  # spread the events one hour apart, so the range is exact
        for seq in range(1, 14):
            session.execute(
                update(EventRow).where(EventRow.seq == seq).values(ts=base + timedelta(hours=seq))
            )
    found = many.audit.page(since=base + timedelta(hours=3), until=base + timedelta(hours=6))
    assert seqs(found) == [5, 4, 3]
    naive = many.audit.page(since=datetime(2030, 1, 1, 11))  # a naive time is UTC
    assert seqs(naive) == [13, 12, 11]


def test_one_event_by_number_and_the_errors(many: Project) -> None:
    assert many.audit.event(8).action == "keys.issue"
    with pytest.raises(NotFound, match="No audit event 99"):
        many.audit.event(99)
    with pytest.raises(MloopError, match="1 to 500"):
        many.audit.page(limit=0)
    scientist = many.as_actor(Actor("u0", grants=(Grant("data_scientist"),)))
    with pytest.raises(PermissionDenied, match="audit.read"):
        scientist.audit.page()
    with pytest.raises(PermissionDenied, match="audit.read"):
        scientist.audit.event(1)

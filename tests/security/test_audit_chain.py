"""The hash-chained audit log, on every metadata backend: whatever is edited or deleted is found, and where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mloop import Project
from mloop.security import audit_chain
from mloop.store import MetadataStore
from mloop.store.schema import AuditHeadRow, EventRow
from mloop.store.types import canonical_json


@pytest.fixture
def logged(project: Project) -> Project:
    """A project whose log holds five events: the local admin's bootstrap, then four users added."""
    for name in ("alice", "bob", "carol", "dan"):
        project.users.add(name, ["data_scientist"])
    return project


def run_sql(project: Project, statement: sa.Executable) -> None:
    with project.store.engine.begin() as conn:
        conn.execute(statement)


def event_row(project: Project, seq: int) -> EventRow:
    with project.store.read() as session:
        row = session.get(EventRow, seq)
    assert row is not None
    return row


def rehash(row: EventRow, **changes: object) -> str:
    fields = {c: getattr(row, c) for c in ("seq", "ts", "project", "actor", "action", "resource", "payload")}
    return audit_chain.event_hash(**{**fields, **changes, "prev_hash": row.prev_hash})  # type: ignore[arg-type]


def test_a_fresh_log_verifies(logged: Project) -> None:
    report = logged.audit.verify()
    assert (report.ok, report.problems, report.checked, report.head_seq) == (True, [], 5, 5)
    assert report.head_hash == logged.audit.events()[-1].hash


def test_an_empty_log_verifies(store: MetadataStore) -> None:
    report = audit_chain.verify(store)
    assert (report.ok, report.checked, report.head_seq, report.head_hash) == (True, 0, 0, audit_chain.GENESIS)


def test_every_mutation_appends_one_event_with_its_actor(project: Project) -> None:
    project.users.add("alice", ["data_scientist"])
    key = project.keys.issue("alice")
    project.keys.revoke(key.key_id)
    project.users.grant("alice", "mlops")
    project.users.disable("alice")
    events = project.audit.events()
    assert [(e.seq, e.actor, e.action, e.resource) for e in events] == [
        (1, "local-admin", "users.add", "user:local-admin"),
        (2, "local-admin", "users.add", "user:alice"),
        (3, "local-admin", "keys.issue", "user:alice"),
        (4, "local-admin", "keys.revoke", f"key:{key.key_id}"),
        (5, "local-admin", "users.grant", "user:alice"),
        (6, "local-admin", "users.disable", "user:alice"),
    ]
    assert {e.project for e in events} == {project.name}
    assert all(e.ts.utcoffset() == timedelta(0) for e in events)
    assert project.audit.verify().ok


def test_editing_any_field_of_an_event_is_found_and_names_the_event(logged: Project) -> None:
    edits = {
        1: {"payload": canonical_json({"kind": "user", "roles": ["data_scientist"]})},
        2: {"actor": "mallory"},
        3: {"action": "users.delete"},
        4: {"resource": "user:mallory"},
        5: {"project": "elsewhere"},
    }
    for seq, values in edits.items():
        run_sql(logged, sa.update(EventRow).where(EventRow.seq == seq).values(values))
    report = logged.audit.verify()
    assert not report.ok
    assert report.problems == [
        "event 1 (users.add on user:local-admin) was edited",
        "event 2 (users.add on user:alice) was edited",
        "event 3 (users.delete on user:bob) was edited",
        "event 4 (users.add on user:mallory) was edited",
        "event 5 (users.add on user:dan) was edited",
    ]


def test_editing_an_events_time_is_found(logged: Project) -> None:
    row = event_row(logged, 2)
    run_sql(logged, sa.update(EventRow).where(EventRow.seq == 2).values(ts=row.ts - timedelta(days=1)))
    assert logged.audit.verify().problems == ["event 2 (users.add on user:alice) was edited"]


def test_editing_the_payload_with_raw_sql_is_found(logged: Project) -> None:
    with logged.store.engine.begin() as conn:
        conn.execute(sa.text('UPDATE events SET payload = \'{"roles":["admin"]}\' WHERE seq = 4'))
    assert logged.audit.verify().problems == ["event 4 (users.add on user:carol) was edited"]


def test_editing_an_event_and_its_hash_is_found_at_the_next_event(logged: Project) -> None:
    row = event_row(logged, 3)
    forged = canonical_json({"kind": "user", "roles": ["admin"]})
    run_sql(
        logged,
        sa.update(EventRow).where(EventRow.seq == 3).values(payload=forged, hash=rehash(row, payload=forged)),
    )
    assert logged.audit.verify().problems == [
        "event 4 does not follow event 3: the previous event was edited or replaced"
    ]


def test_editing_the_newest_event_and_its_hash_is_found_through_the_head(logged: Project) -> None:
    row = event_row(logged, 5)
    run_sql(
        logged,
        sa.update(EventRow)
        .where(EventRow.seq == 5)
        .values(hash=rehash(row, actor="mallory"), actor="mallory"),
    )
    assert logged.audit.verify().problems == ["the audit head does not match the newest event"]


def test_deleting_a_middle_event_names_the_gap(logged: Project) -> None:
    run_sql(logged, sa.delete(EventRow).where(EventRow.seq == 3))
    report = logged.audit.verify()
    assert report.problems == ["event(s) 3 were deleted: the chain jumps to event 4"]
    assert report.checked == 4


def test_deleting_several_middle_events_names_the_range(logged: Project) -> None:
    run_sql(logged, sa.delete(EventRow).where(EventRow.seq.in_([2, 3, 4])))
    assert logged.audit.verify().problems == ["event(s) 2 to 4 were deleted: the chain jumps to event 5"]


def test_deleting_the_newest_events_is_found_through_the_head(logged: Project) -> None:
    run_sql(logged, sa.delete(EventRow).where(EventRow.seq >= 4))
    assert logged.audit.verify().problems == [
        "the newest event(s) were deleted: the head records event 5, the log ends at 3"
    ]


def test_deleting_every_event_is_found_through_the_head(logged: Project) -> None:
    run_sql(logged, sa.delete(EventRow))
    assert logged.audit.verify().problems == [
        "the newest event(s) were deleted: the head records event 5, the log ends at 0"
    ]


def test_deleting_the_head_row_is_found(logged: Project) -> None:
    run_sql(logged, sa.delete(AuditHeadRow))
    assert logged.audit.verify().problems == ["the audit head row is missing"]


def test_the_chain_continues_after_verification(logged: Project) -> None:
    assert logged.audit.verify().ok
    logged.users.add("erin")
    report = logged.audit.verify()
    assert (report.ok, report.head_seq) == (True, 6)


def test_the_hash_of_an_event_is_stable_so_stored_chains_keep_verifying() -> None:
    chained = {"seq": 7, "ts": datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC), "project": "fraud",
               "actor": "alice", "action": "models.promote", "resource": "model:fraud",
               "payload": canonical_json({"version": 3}), "prev_hash": "ab" * 32}  # fmt: skip
    assert (
        audit_chain.event_hash(**chained)
        == "854355d1e8df455f891bdc3f65fce62725244a98e767feefdbf63414676162a2"
    )
    with pytest.raises(TypeError, match="exactly the columns seq, ts, .*prev_hash"):
        audit_chain.event_hash(**{**chained, "hash": "x"})

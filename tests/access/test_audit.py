"""``project.audit``: reading the event log with filters."""

from __future__ import annotations

import json

import pytest

from mloop import Project
from mloop.security import Actor, Grant


@pytest.fixture
def busy(sqlite_project: Project) -> Project:
    """Events 1-6: bootstrap, alice and ops added, a key for alice issued and revoked, alice disabled by ops."""
    sqlite_project.users.add("alice", ["data_scientist"])
    sqlite_project.users.add("ops", ["admin"])
    key = sqlite_project.keys.issue("alice")
    sqlite_project.keys.revoke(key.key_id)
    sqlite_project.as_actor(Actor("ops", grants=(Grant("admin"),))).users.disable("alice")
    return sqlite_project


def seqs(events: list) -> list[int]:  # type: ignore[type-arg]
    return [e.seq for e in events]


def test_events_come_in_order(busy: Project) -> None:
    assert seqs(busy.audit.events()) == [1, 2, 3, 4, 5, 6]
    assert seqs(busy.audit.events(after=4)) == [5, 6]
    assert seqs(busy.audit.events(limit=2)) == [1, 2]
    assert seqs(busy.audit.events(after=2, limit=2)) == [3, 4]


def test_events_filter_by_action_resource_and_actor(busy: Project) -> None:
    assert seqs(busy.audit.events(action="keys.*")) == [4, 5]
    assert seqs(busy.audit.events(action="users.add")) == [1, 2, 3]
    assert seqs(busy.audit.events(resource="user:a*")) == [2, 4, 6]
    assert seqs(busy.audit.events(actor="ops")) == [6]
    assert seqs(busy.audit.events(actor="ops", action="keys.*")) == []


def test_an_event_serialises_to_json(busy: Project) -> None:
    event = busy.audit.events(action="users.disable")[0]
    data = json.loads(json.dumps(event.to_dict()))
    assert data["actor"] == "ops"
    assert data["resource"] == "user:alice"
    assert data["hash"] == event.hash
    assert data["ts"] == event.ts.isoformat()


def test_only_star_is_a_wildcard(sqlite_project: Project) -> None:
    sqlite_project.users.add("a_b")
    sqlite_project.users.add("axb")
    assert [e.resource for e in sqlite_project.audit.events(resource="user:a_b")] == ["user:a_b"]
    assert [e.resource for e in sqlite_project.audit.events(resource="user:a*b")] == ["user:a_b", "user:axb"]
    assert [e.action for e in sqlite_project.audit.events(action="users.ad%")] == []


def test_filters_match_case_exactly_on_every_backend(busy: Project) -> None:
    assert busy.audit.events(action="users.*")
    assert busy.audit.events(action="USERS.*") == []

"""``project.decisions``: architecture decisions recorded with their audit events, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop import Project
from mloop._time import utcnow
from mloop.errors import MloopError, NotFound, PermissionDenied
from mloop.review.decisions import parse_id
from mloop.security import audit_chain
from mloop.security.actor import Actor
from mloop.security.roles import Grant

NEXT_YEAR = (utcnow().date() + timedelta(days=365)).isoformat()


def record(project: Project, **change: Any) -> Any:
    how: dict[str, Any] = {
        "context": "p99 under 20 ms at 2k rps",
        "options": ["SQLite", "Redis"],
        "choice": "Redis",
        "tradeoff": "one more server to run",
        "owner": project.actor.name,
        "review_by": NEXT_YEAR,
        "links": ["endpoint:fraud"],
    }
    title = change.pop("title", "Online store in Redis")
    return project.decisions.add(title, **{**how, **change})


def test_decisions_get_numbered_ids_audit_events_and_can_be_superseded(project: Project) -> None:
    first = record(project)
    second = record(project, title="Batch scoring nightly", options=[], choice="nightly", links=[])
    assert (first.id, second.id) == ("ADR-1", "ADR-2")
    assert first.to_dict() | {"created_at": None} == {
        "id": "ADR-1", "title": "Online store in Redis", "context": "p99 under 20 ms at 2k rps",
        "options": ["SQLite", "Redis"], "choice": "Redis", "tradeoff": "one more server to run",
        "owner": project.actor.name, "status": "accepted", "superseded_by": None, "review_by": NEXT_YEAR,
        "links": ["endpoint:fraud"], "created_at": None, "created_by": project.actor.name,
    }  # fmt: skip
    assert project.decisions.get("adr-1") == first and project.decisions.get("2") == second

    third = record(project, title="Online store in Redis Cluster", choice="Redis")
    replaced = project.decisions.supersede("ADR-1", by="ADR-3")
    assert replaced.status == "superseded" and replaced.state == "superseded by ADR-3"
    assert [d.state for d in project.decisions.list()] == ["superseded by ADR-3", "accepted", "accepted"]

    events = list(audit_chain.iter_events(project.store, action="decisions.*"))
    assert [(e.action, e.resource) for e in events] == [
        ("decisions.add", "decision:ADR-1"), ("decisions.add", "decision:ADR-2"),
        ("decisions.add", "decision:ADR-3"), ("decisions.supersede", "decision:ADR-1"),
    ]  # fmt: skip
    assert events[0].payload["choice"] == "Redis" and events[-1].payload == {"by": third.id}

    with pytest.raises(MloopError, match="superseded by ADR-3 already"):
        project.decisions.supersede("ADR-1", by="ADR-2")
    with pytest.raises(MloopError, match="ADR-1 is itself superseded by ADR-3; supersede ADR-2 with ADR-3"):
        project.decisions.supersede("ADR-2", by="ADR-1")
    with pytest.raises(MloopError, match="cannot supersede itself"):
        project.decisions.supersede("ADR-2", by="ADR-2")
    with pytest.raises(NotFound, match="No decision ADR-9"):
        project.decisions.supersede("ADR-2", by="ADR-9")
    assert (
        len(list(audit_chain.iter_events(project.store, action="decisions.*"))) == 4
    )  # refusals write nothing


def test_the_review_date_decides_what_is_due(project: Project) -> None:
    today = utcnow().date()
    record(project, review_by=today)  # today is not in the past
    assert project.decisions.list(due=True) == []
    assert [d.id for d in project.decisions.list(due=True, today=today + timedelta(days=1))] == ["ADR-1"]
    record(project, title="Replacement")
    project.decisions.supersede("ADR-1", by="ADR-2")
    assert project.decisions.list(due=True, today=today + timedelta(days=1)) == []  # superseded: not due


def test_bad_input_is_refused_with_what_to_do(project: Project) -> None:
    project.users.add("gone", ["data_scientist"])
    project.users.disable("gone")
    yesterday = utcnow().date() - timedelta(days=1)
    refusals = {
        "is not a user of this project; `mloop users list`": {"owner": "nobody"},
        "owner 'gone' is disabled": {"owner": "gone"},
        f"review date {yesterday.isoformat()} is in the past": {"review_by": yesterday},
        "not a date: write it as YYYY-MM-DD": {"review_by": "next spring"},
        "The choice is empty": {"choice": "  "},
        "not one of the options \\(SQLite, Redis\\)": {"choice": "Postgres"},
        "The trade-off is empty": {"tradeoff": ""},
        "needs a title": {"title": ""},
        "not a reference: write kind:name": {"links": ["fraud"]},
        "kind one of endpoint, model": {"links": ["planet:mars"]},
    }
    for message, change in refusals.items():
        with pytest.raises(MloopError, match=message):
            record(project, **change)
    assert project.decisions.list() == []
    assert list(audit_chain.iter_events(project.store, action="decisions.*")) == []


def test_every_role_reads_decisions_but_only_writers_record_them(project: Project) -> None:
    record(project)
    record(project, title="Its successor")
    auditor = project.as_actor(Actor("carol", "user", (Grant("auditor"),)))
    assert [d.id for d in auditor.decisions.list()] == ["ADR-1", "ADR-2"]
    assert auditor.decisions.get("ADR-1").choice == "Redis"
    with pytest.raises(PermissionDenied, match="may not decisions.write"):
        record(auditor)
    with pytest.raises(PermissionDenied, match="may not decisions.write"):
        auditor.decisions.supersede("ADR-1", by="ADR-2")
    scientist = project.as_actor(Actor("dana", "user", (Grant("data_scientist"),)))
    assert record(scientist, title="Scientist's choice", owner=project.actor.name).created_by == "dana"


def test_writers_recording_at_once_get_distinct_numbers(project: Project) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: record(project, title=f"decision {i}").number, range(12)))
    assert sorted(made) == list(range(1, 13))
    assert audit_chain.verify(project.store).ok


@given(number=st.integers(1, 999_999_999), prefix=st.sampled_from(["ADR-", "adr-", ""]))
def test_decision_ids_parse_with_or_without_the_prefix(number: int, prefix: str) -> None:
    assert parse_id(f"{prefix}{number}") == number


@pytest.mark.parametrize("text", ["ADR-0", "ADR-", "ADR-1x", "ADR 1", "-3", "ADR-01"])
def test_malformed_ids_say_how_to_write_one(text: str) -> None:
    with pytest.raises(MloopError, match="write ADR-<number>"):
        parse_id(text)


def test_dates_come_back_as_dates() -> None:
    from mloop.review.decisions import parse_date

    assert parse_date("2027-03-01") == date(2027, 3, 1)

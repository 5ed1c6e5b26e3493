"""The collaboration and trade-off checks, each made to fail and pass on a real project."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop._time import utcnow
from mloop.store.schema import UserRow
from tests.review.conftest import finding, fraud_project


def record(project: Project, review_in: int = 30, **change: Any) -> Any:
    how: dict[str, Any] = {
        "context": "p99 under 20 ms at 2k rps", "options": ["SQLite", "Redis"], "choice": "Redis",
        "tradeoff": "one more server to run", "owner": project.actor.name,
        "review_by": utcnow().date() + timedelta(days=review_in), "links": ["endpoint:fraud"],
    }  # fmt: skip
    return project.decisions.add(change.pop("title", "Online store in Redis"), **{**how, **change})


def as_user(project: Project, name: str, role: str = "data_scientist") -> Project:
    """``project`` acting as ``name``, a user an admin added."""
    user = project.users.add(name, [role])
    return project.as_actor(user.actor())


def test_a_project_serving_models_needs_a_recorded_decision(tmp_path: Path) -> None:
    project = fraud_project(tmp_path, deploy=False)
    try:
        assert finding(project, "collaboration.decisions").status == "n/a"  # nothing served yet
        project.deploy("fraud", "fraud", version=1)
        none = finding(project, "collaboration.decisions")
        assert none.status == "fail" and none.weight == "low"
        assert none.outcome.evidence == ("decisions recorded: 0", "live endpoints: fraud")
        assert none.outcome.refs == ("endpoint:fraud",)
        record(project)
        one = finding(project, "collaboration.decisions")
        assert one.status == "pass" and one.outcome.refs == ("decision:ADR-1",)
        assert "live endpoints linked by an accepted decision: fraud" in one.outcome.evidence
    finally:
        project.close()


@pytest.fixture(scope="module")
def due_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """ADR-1 to review in 10 days; ADR-2 in 40 days."""
    project = Project.open(tmp_path_factory.mktemp("due"), env={})
    record(project, review_in=10)
    record(project, review_in=40, title="Nightly batch scoring", options=[], choice="nightly", links=[])
    yield project
    project.close()


def test_no_decision_no_review_due(sqlite_project: Project) -> None:
    assert finding(sqlite_project, "tradeoffs.review-due").status == "n/a"


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.integers(0, 60))
def test_a_decision_past_its_review_date_is_due(due_project: Project, days: int) -> None:
    now = utcnow() + timedelta(days=days)
    found = finding(due_project, "tradeoffs.review-due", now=now)
    overdue = [adr for adr, within in (("ADR-1", 10), ("ADR-2", 40)) if days > within]
    assert found.status == ("fail" if overdue else "pass")
    if overdue:
        assert found.weight == "medium" and found.outcome.numbers["due"] == overdue
        assert f"day(s) overdue (owner {due_project.actor.name})" in found.outcome.evidence[0]
        assert found.outcome.evidence[0].startswith("ADR-1 'Online store in Redis': review by ")
        assert "decision:ADR-1" in found.outcome.refs and "endpoint:fraud" in found.outcome.refs
        assert "mloop decisions supersede ADR-1 --by ADR-<new>" in found.fix


def test_superseding_a_due_decision_clears_it(sqlite_project: Project) -> None:
    record(sqlite_project, review_in=0)
    tomorrow = utcnow() + timedelta(days=1)
    assert finding(sqlite_project, "tradeoffs.review-due", now=tomorrow).status == "fail"
    record(sqlite_project, review_in=365, title="Online store in Redis, reviewed")
    sqlite_project.decisions.supersede("ADR-1", by="ADR-2")
    cleared = finding(sqlite_project, "tradeoffs.review-due", now=tomorrow)
    assert cleared.status == "pass" and cleared.outcome.refs == ("decision:ADR-2",)


def test_a_decision_needs_an_active_owner(sqlite_project: Project) -> None:
    assert finding(sqlite_project, "collaboration.owners").status == "n/a"
    sqlite_project.users.add("alice", ["data_scientist"])
    record(sqlite_project, owner="alice")
    owned = finding(sqlite_project, "collaboration.owners")
    assert owned.status == "pass" and owned.outcome.evidence == ("ADR-1: owner alice is active",)
    sqlite_project.users.disable("alice")
    left = finding(sqlite_project, "collaboration.owners")
    assert left.status == "fail" and left.weight == "low"
    assert left.outcome.evidence == ("ADR-1: owner alice is disabled",)
    assert left.outcome.refs == ("decision:ADR-1", "user:alice")
    # A user row removed outside mloop (a database clean-up): the owner is now unknown.
    with sqlite_project.store.write() as session:
        session.execute(sa.delete(UserRow).where(UserRow.name == "alice"))
    assert finding(sqlite_project, "collaboration.owners").outcome.evidence == (
        "ADR-1: owner alice is unknown",
    )
    record(sqlite_project, title="Re-recorded with an owner")
    sqlite_project.decisions.supersede("ADR-1", by="ADR-2")
    assert finding(sqlite_project, "collaboration.owners").status == "pass"  # superseded ones need no owner


def test_several_active_users_need_a_shared_metadata_server(project: Project, metadata_url: str) -> None:
    alone = finding(project, "collaboration.shared-store")
    assert alone.status == "pass" and alone.outcome.numbers["active_users"] == 1
    record(as_user(project, "alice"), owner=project.actor.name)
    shared = finding(project, "collaboration.shared-store")
    assert shared.outcome.numbers["active_users"] == 2
    assert "alice: 1 change(s)" in shared.outcome.evidence and "user:alice" in shared.outcome.refs
    if metadata_url.startswith("sqlite"):
        assert shared.status == "fail" and shared.weight == "medium"
        assert shared.outcome.evidence[0].startswith("metadata store: sqlite (sqlite:///")
        assert "setting:metadata_url" in shared.outcome.refs
    else:
        assert shared.status == "pass"  # PostgreSQL: every user shares one server
    later = finding(project, "collaboration.shared-store", now=utcnow() + timedelta(days=31))
    assert (
        later.status == "pass" and later.outcome.numbers["active_users"] == 0
    )  # nobody changed anything since
    project.users.disable("alice")
    assert finding(project, "collaboration.shared-store").status == "pass"  # a disabled user writes no more

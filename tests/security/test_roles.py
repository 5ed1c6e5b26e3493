"""The permission table, grants with scopes, and the services enforcing both."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import MloopError, PermissionDenied
from mloop.security import ACTIONS, ROLES, Actor, Grant

# Who may do what: x allowed, . denied. Changing the table is a security decision; so is changing this.
MATRIX = """
action                 admin  data_engineer  data_scientist  ml_engineer  mlops  auditor
project.read             x          x              x              x         x       x
data.read                x          x              x              x         x       x
features.read            x          x              x              x         x       x
runs.read                x          x              x              x         x       x
models.read              x          x              x              x         x       x
deployments.read         x          x              x              x         x       x
monitoring.read          x          x              x              x         x       x
loop.read                x          x              x              x         x       x
users.read               x          x              x              x         x       x
project.admin            x          .              .              .         .       .
data.write               x          x              .              .         .       .
features.write           x          x              x              x         .       .
features.materialize     x          x              .              x         x       .
features.push            x          x              .              .         .       .
runs.write               x          .              x              x         .       .
models.register          x          .              x              x         .       .
models.alias             x          .              x              x         x       .
models.promote           x          .              .              x         x       .
models.approve           x          .              .              .         x       .
models.delete            x          .              .              .         .       .
deployments.write        x          .              .              x         x       .
deployments.rollback     x          .              .              x         x       .
predict                  x          .              .              x         x       .
monitoring.write         x          .              .              .         x       .
loop.operate             x          .              .              .         x       .
users.write              x          .              .              .         .       .
keys.issue               x          .              .              .         x       .
keys.revoke              x          .              .              .         x       .
audit.read               x          .              .              .         .       x
privacy.forget           x          x              .              .         .       .
privacy.purge            x          x              .              .         .       .
encryption.rotate        x          .              .              .         .       .
decisions.read           x          x              x              x         x       x
decisions.write          x          x              x              x         x       .
review.read              x          .              .              .         x       x
"""


def parse_matrix() -> dict[tuple[str, str], bool]:
    header, *rows = [line.split() for line in MATRIX.strip().splitlines()]
    roles = header[1:]
    return {(role, row[0]): mark == "x" for row in rows for role, mark in zip(roles, row[1:], strict=True)}


EXPECTED = parse_matrix()


def test_the_matrix_covers_every_role_and_action() -> None:
    assert {role for role, _ in EXPECTED} == set(ROLES)
    assert {action for _, action in EXPECTED} == set(ACTIONS)


@pytest.mark.parametrize(("role", "action"), sorted(EXPECTED))
def test_role_allows_exactly_the_listed_actions(role: str, action: str) -> None:
    actor = Actor("someone", grants=(Grant(role),))
    assert actor.can(action) is EXPECTED[role, action]
    assert actor.can(action, "dataset:txns") is EXPECTED[role, action]


def test_the_auditor_only_reads() -> None:
    auditor = Actor("carol", grants=(Grant("auditor"),))
    allowed = {action for action in ACTIONS if auditor.can(action)}
    assert allowed == {action for action in ACTIONS if action.endswith(".read")}
    assert "audit.read" in allowed


def test_no_grant_allows_nothing() -> None:
    nobody = Actor("nobody")
    assert not any(nobody.can(action) for action in ACTIONS)


# ---- grants and scopes ---------------------------------------------------------------------------------


def test_a_scoped_grant_allows_only_matching_resources() -> None:
    fraud_engineer = Actor("dan", grants=(Grant.parse("ml_engineer@endpoint:fraud"),))
    assert fraud_engineer.can("deployments.write", "endpoint:fraud")
    assert not fraud_engineer.can("deployments.write", "endpoint:other")
    assert not fraud_engineer.can("deployments.write", "endpoint:fraud-v2")
    assert not fraud_engineer.can("deployments.write")  # everything is more than endpoint:fraud
    assert not fraud_engineer.can("users.write", "endpoint:fraud")  # the scope never adds actions


def test_a_scope_may_be_a_pattern() -> None:
    txn_engineer = Actor("erin", grants=(Grant.parse("data_engineer@dataset:txn_*"),))
    assert txn_engineer.can("data.write", "dataset:txn_2024")
    assert not txn_engineer.can("data.write", "dataset:users")
    assert not txn_engineer.can("data.write", "DATASET:TXN_2024")  # resources are case-sensitive


def test_grants_add_up() -> None:
    actor = Actor("fay", grants=(Grant("data_scientist"), Grant.parse("mlops@endpoint:fraud")))
    assert actor.can("runs.write")
    assert actor.can("deployments.write", "endpoint:fraud")
    assert not actor.can("deployments.write", "endpoint:churn")


def test_an_unknown_role_lists_the_roles() -> None:
    with pytest.raises(MloopError, match=r"Unknown role 'superuser'\. Roles: admin, data_engineer"):
        Grant.parse("superuser@endpoint:fraud")


def test_an_empty_scope_is_refused_not_widened() -> None:
    with pytest.raises(MloopError, match=r"Grant 'ml_engineer@' has an empty scope: write role@pattern"):
        Grant.parse("ml_engineer@")


def test_an_unknown_action_is_an_error_not_a_denial() -> None:
    with pytest.raises(MloopError, match=r"Unknown action 'deployment\.write'; actions: audit\.read"):
        Actor.local_admin("root").can("deployment.write")


@given(role=st.sampled_from(ROLES), scope=st.text(min_size=1).filter(lambda s: s == s.strip()))
def test_a_grant_reads_back_from_its_text(role: str, scope: str) -> None:
    grant = Grant(role, scope)
    assert Grant.parse(str(grant)) == grant


# ---- PermissionDenied ----------------------------------------------------------------------------------


def test_permission_denied_names_actor_action_resource_and_the_roles_that_may() -> None:
    alice = Actor("alice", grants=(Grant("data_scientist"), Grant.parse("mlops@endpoint:churn")))
    with pytest.raises(PermissionDenied) as denied:
        alice.require("deployments.write", "endpoint:fraud")
    message = str(denied.value)
    assert "alice (roles: data_scientist, mlops@endpoint:churn)" in message
    assert "may not deployments.write on endpoint:fraud" in message
    assert "Roles that may: admin, ml_engineer, mlops." in message
    assert "mloop users grant alice ROLE" in message


def test_require_passes_silently_when_allowed() -> None:
    Actor("alice", grants=(Grant("data_scientist"),)).require("runs.write", "run:1")


# ---- the services enforce the table --------------------------------------------------------------------


def as_role(project: Project, name: str, role: str) -> Project:
    project.users.add(name, [role])
    return project.as_actor(Actor(name, grants=(Grant.parse(role),)))


def event_count(project: Project) -> int:
    return len(project.audit.events())


def test_a_data_scientist_cannot_add_users_or_change_roles(sqlite_project: Project) -> None:
    scientist = as_role(sqlite_project, "alice", "data_scientist")
    before = event_count(sqlite_project)
    with pytest.raises(PermissionDenied, match=r"alice .* may not users\.write on user:bob"):
        scientist.users.add("bob", ["admin"])
    with pytest.raises(PermissionDenied, match=r"may not users\.write on user:alice"):
        scientist.users.grant("alice", "admin")
    with pytest.raises(PermissionDenied, match=r"may not keys\.issue"):
        scientist.keys.issue("alice")
    assert [u.name for u in sqlite_project.users.list()] == ["alice", "local-admin"]
    assert sqlite_project.users.get("alice").grants == (Grant("data_scientist"),)
    assert event_count(sqlite_project) == before  # a denied mutation leaves no trace in the log


def test_an_auditor_reads_the_log_but_cannot_issue_or_revoke_keys(sqlite_project: Project) -> None:
    key = sqlite_project.keys.issue("local-admin")
    auditor = as_role(sqlite_project, "carol", "auditor")
    before = event_count(sqlite_project)
    with pytest.raises(PermissionDenied, match=r"may not keys\.issue on user:carol"):
        auditor.keys.issue("carol")
    with pytest.raises(PermissionDenied, match=r"may not keys\.revoke"):
        auditor.keys.revoke(key.key_id)
    with pytest.raises(PermissionDenied, match=r"may not users\.write"):
        auditor.users.disable("local-admin")
    assert auditor.audit.verify().ok
    assert len(auditor.audit.events()) == before
    assert sqlite_project.keys.list()[0].active


def test_only_auditors_and_admins_read_the_audit_log(sqlite_project: Project) -> None:
    for role in ROLES:
        member = as_role(sqlite_project, f"member-{role}", role)
        if role in ("admin", "auditor"):
            assert member.audit.verify().ok
        else:
            with pytest.raises(
                PermissionDenied, match=r"may not audit\.read on audit\. Roles that may: admin, auditor"
            ):
                member.audit.events()


def test_only_an_admin_issues_keys_for_someone_else(sqlite_project: Project) -> None:
    """Issue 17, item 2: a key acts with its owner's roles when it is used, so a key an mlops user minted
    for a role-less user became an admin's key once an admin granted that user admin. Keys for others
    are an admin's to issue; anyone with keys.issue issues their own."""
    operator = as_role(sqlite_project, "olga", "mlops")
    sqlite_project.users.add("scoring-service", ["mlops@endpoint:fraud"], kind="service")
    sqlite_project.users.add("blank")
    assert operator.keys.issue("olga").user == "olga"
    before = event_count(sqlite_project)
    for other in ("scoring-service", "blank"):
        with pytest.raises(PermissionDenied, match=rf"olga .* may issue keys only for itself.*for {other}"):
            operator.keys.issue(other)
        assert [k.user for k in sqlite_project.keys.list(other)] == []
    assert event_count(sqlite_project) == before  # refused before anything was written
    assert sqlite_project.keys.issue("blank").user == "blank"  # the admin may

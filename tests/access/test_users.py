"""Users, service accounts and API keys: what an admin does, and what a key lets its holder do."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop._time import utcnow
from mloop.access.users import IssuedKey
from mloop.errors import AlreadyExists, AuthenticationError, MloopError, NotFound
from mloop.security import Actor, Grant
from mloop.store.schema import ApiKeyRow, EventRow


def new_events(project: Project, after: int) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.resource) for e in project.audit.events(after=after)]


def head(project: Project) -> int:
    return project.audit.verify().head_seq


def secret_of(key: IssuedKey) -> str:
    return key.token.removeprefix(f"mlk_{key.key_id}_")


# ---- users ---------------------------------------------------------------------------------------------


def test_add_get_and_list_users(sqlite_project: Project) -> None:
    alice = sqlite_project.users.add("alice", ["data_scientist", "mlops@endpoint:fraud"])
    scorer = sqlite_project.users.add("scorer", kind="service")
    assert alice.grants == (Grant("data_scientist"), Grant("mlops", "endpoint:fraud"))
    assert (alice.kind, alice.disabled) == ("user", False)
    assert alice.created_at.utcoffset() == timedelta(0)
    assert (scorer.kind, scorer.grants) == ("service", ())
    assert sqlite_project.users.get("alice") == alice
    assert [u.name for u in sqlite_project.users.list()] == ["alice", "local-admin", "scorer"]


def test_grant_revoke_disable_and_enable(sqlite_project: Project) -> None:
    users = sqlite_project.users
    users.add("alice", ["data_scientist"])
    assert users.grant("alice", "mlops@endpoint:fraud").grants == (
        Grant("data_scientist"),
        Grant("mlops", "endpoint:fraud"),
    )
    assert len(users.grant("alice", "data_scientist").grants) == 2  # granting a held role changes nothing
    assert users.revoke_role("alice", "data_scientist").grants == (Grant("mlops", "endpoint:fraud"),)
    assert users.disable("alice").disabled
    assert users.get("alice").disabled
    assert not users.enable("alice").disabled


def test_every_user_change_appends_one_event_by_its_actor(sqlite_project: Project) -> None:
    start = head(sqlite_project)
    users = sqlite_project.users
    users.add("alice", ["data_scientist"])
    users.grant("alice", "mlops")
    users.revoke_role("alice", "mlops")
    users.disable("alice")
    users.enable("alice")
    assert new_events(sqlite_project, start) == [
        ("local-admin", "users.add", "user:alice"),
        ("local-admin", "users.grant", "user:alice"),
        ("local-admin", "users.revoke_role", "user:alice"),
        ("local-admin", "users.disable", "user:alice"),
        ("local-admin", "users.enable", "user:alice"),
    ]
    added = sqlite_project.audit.events(after=start, action="users.add")[0]
    assert added.payload == {"kind": "user", "roles": ["data_scientist"]}


def test_refused_user_changes_say_why_and_leave_no_event(sqlite_project: Project) -> None:
    users = sqlite_project.users
    users.add("alice", ["data_scientist"])
    start = head(sqlite_project)
    with pytest.raises(AlreadyExists, match="User 'alice' exists already; change its roles with"):
        users.add("alice")
    with pytest.raises(NotFound, match="User 'alice' does not hold mlops; it holds: data_scientist"):
        users.revoke_role("alice", "mlops")
    with pytest.raises(NotFound, match="No user named 'bob'; `mloop users list` shows them"):
        users.disable("bob")
    with pytest.raises(NotFound, match="No user named 'bob'"):
        users.get("bob")
    with pytest.raises(MloopError, match=r"Unknown role 'wizard'\. Roles: admin"):
        users.add("bob", ["wizard"])
    with pytest.raises(MloopError, match="kind 'robot' is not one of: user, service"):
        users.add("bob", kind="robot")
    assert new_events(sqlite_project, start) == []
    assert [u.name for u in users.list()] == ["alice", "local-admin"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["", " alice", "-alice", "al ice", "alice/../root", "a" * 201, "élise"])
def test_bad_user_names_are_refused(sqlite_project: Project, name: str) -> None:
    with pytest.raises(MloopError, match="is not allowed: use letters, digits and"):
        sqlite_project.users.add(name)


def test_adding_the_same_user_concurrently_creates_it_once(project: Project) -> None:
    import concurrent.futures
    import threading

    start = threading.Barrier(4)

    def add() -> str:
        start.wait()
        try:
            return project.users.add("alice", ["data_scientist"]).name
        except AlreadyExists:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = sorted(f.result() for f in [pool.submit(add) for _ in range(4)])
    assert outcomes == ["alice", "refused", "refused", "refused"]
    assert len(project.audit.events(action="users.add", resource="user:alice")) == 1


# ---- keys ----------------------------------------------------------------------------------------------


def test_a_key_authenticates_as_its_owner_with_the_owners_grants(project: Project) -> None:
    project.users.add("alice", ["data_scientist", "mlops@endpoint:fraud"])
    key = project.keys.issue("alice", description="laptop")
    assert key.token.startswith(f"mlk_{key.key_id}_")
    assert (key.user, key.expires_at) == ("alice", None)
    actor = project.keys.authenticate(key.token)
    assert actor == Actor(
        "alice", "user", (Grant("data_scientist"), Grant("mlops", "endpoint:fraud")), key_id=key.key_id
    )
    assert project.keys.authenticate(f"  {key.token}\n") == actor  # pasted with whitespace around it


def test_only_a_salted_hash_of_the_secret_is_stored(sqlite_project: Project) -> None:
    sqlite_project.users.add("alice", ["data_scientist"])
    first, second = sqlite_project.keys.issue("alice"), sqlite_project.keys.issue("alice")
    with sqlite_project.store.read() as session:
        rows = {row.key_id: row for row in session.scalars(sa.select(ApiKeyRow))}
        events = " ".join(row.payload + row.resource for row in session.scalars(sa.select(EventRow)))
    for key in (first, second):
        row = rows[key.key_id]
        stored = " ".join(str(getattr(row, column.key)) for column in ApiKeyRow.__table__.columns)
        assert secret_of(key) not in stored
        assert secret_of(key) not in events
        assert row.hash != hashlib.sha256(secret_of(key).encode()).hexdigest()
    assert rows[first.key_id].salt != rows[second.key_id].salt
    assert not hasattr(sqlite_project.keys.list()[0], "token")


def test_keys_are_listed_without_secrets(sqlite_project: Project) -> None:
    sqlite_project.users.add("alice", ["data_scientist"])
    alice_key = sqlite_project.keys.issue("alice", description="laptop")
    sqlite_project.keys.issue("local-admin")
    listed = sqlite_project.keys.list("alice")
    assert [(k.key_id, k.user, k.description, k.active) for k in listed] == [
        (alice_key.key_id, "alice", "laptop", True)
    ]
    assert len(sqlite_project.keys.list()) == 2
    assert secret_of(alice_key) not in str(listed[0].to_dict())


def test_a_revoked_key_is_refused(sqlite_project: Project) -> None:
    key = sqlite_project.keys.issue("local-admin")
    revoked = sqlite_project.keys.revoke(key.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    with pytest.raises(AuthenticationError, match=f"API key {key.key_id} was revoked on .*; issue a new one"):
        sqlite_project.keys.authenticate(key.token)
    assert sqlite_project.keys.revoke(key.key_id).revoked_at == revoked.revoked_at


def test_an_expired_key_is_refused(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    key = project.keys.issue("local-admin", expires_in="1s")
    assert key.expires_at is not None
    assert project.keys.authenticate(key.token).name == "local-admin"
    later = utcnow() + timedelta(seconds=2)
    monkeypatch.setattr("mloop.access.users.utcnow", lambda: later)
    with pytest.raises(AuthenticationError, match=f"API key {key.key_id} expired on .*; issue a new one"):
        project.keys.authenticate(key.token)
    assert not project.keys.list()[0].active


@pytest.mark.parametrize("lifetime", ["0s", 0, -5, timedelta(seconds=-1)])
def test_a_key_lifetime_must_be_positive(sqlite_project: Project, lifetime: object) -> None:
    with pytest.raises(MloopError, match="is not positive: give one such as '90d', or none"):
        sqlite_project.keys.issue("local-admin", expires_in=lifetime)  # type: ignore[arg-type]
    assert sqlite_project.keys.list() == []


def test_an_unreadable_key_lifetime_says_how_to_write_one(sqlite_project: Project) -> None:
    with pytest.raises(MloopError, match=r"The key lifetime 'soon' does not parse: .* '7d'"):
        sqlite_project.keys.issue("local-admin", expires_in="soon")


def test_a_disabled_users_keys_are_refused(sqlite_project: Project) -> None:
    sqlite_project.users.add("alice", ["data_scientist"])
    key = sqlite_project.keys.issue("alice")
    sqlite_project.users.disable("alice")
    with pytest.raises(AuthenticationError, match="belongs to disabled user 'alice'"):
        sqlite_project.keys.authenticate(key.token)
    with pytest.raises(MloopError, match="User 'alice' is disabled; enable it"):
        sqlite_project.keys.issue("alice")
    sqlite_project.users.enable("alice")
    assert sqlite_project.keys.authenticate(key.token).name == "alice"


def test_a_wrong_secret_or_unknown_key_id_is_refused(sqlite_project: Project) -> None:
    key = sqlite_project.keys.issue("local-admin")
    wrong_secret = f"mlk_{key.key_id}_{'A' * 43}"
    unknown_id = f"mlk_{'0' * 12}_{secret_of(key)}"
    for token in (wrong_secret, unknown_id, key.token[:-1]):
        with pytest.raises(
            AuthenticationError, match=r"Unknown API key .*: check the key, or issue a new one"
        ):
            sqlite_project.keys.authenticate(token)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text() | st.from_regex(r"mlk_[0-9a-f]{12}_[A-Za-z0-9_-]{20,50}", fullmatch=True))
def test_any_other_token_is_refused(sqlite_project: Project, token: str) -> None:
    with pytest.raises(AuthenticationError):
        sqlite_project.keys.authenticate(token)


@pytest.mark.parametrize("token", ["", "mlk_", "mlk_abc_def", "Bearer mlk_0123456789ab_" + "x" * 43, None])
def test_a_malformed_token_says_what_a_key_looks_like(sqlite_project: Project, token: str) -> None:
    with pytest.raises(AuthenticationError, match=r"Malformed API key: expected mlk_<12 hex>_<secret>"):
        sqlite_project.keys.authenticate(token)


def test_keys_for_unknown_users_or_ids_are_not_found(sqlite_project: Project) -> None:
    start = head(sqlite_project)
    with pytest.raises(NotFound, match="No user named 'ghost'"):
        sqlite_project.keys.issue("ghost")
    with pytest.raises(NotFound, match="No API key with id 'feedfacecafe'; `mloop keys list` shows them"):
        sqlite_project.keys.revoke("feedfacecafe")
    assert sqlite_project.keys.list() == []
    assert new_events(sqlite_project, start) == []


def test_issuing_and_revoking_keys_appends_one_event_each(sqlite_project: Project) -> None:
    start = head(sqlite_project)
    key = sqlite_project.keys.issue("local-admin", expires_in="7d")
    sqlite_project.keys.revoke(key.key_id)
    assert new_events(sqlite_project, start) == [
        ("local-admin", "keys.issue", "user:local-admin"),
        ("local-admin", "keys.revoke", f"key:{key.key_id}"),
    ]
    issued = sqlite_project.audit.events(after=start, action="keys.issue")[0]
    assert issued.payload == {"key_id": key.key_id, "expires_at": key.expires_at.isoformat()}  # type: ignore[union-attr]


def test_authenticating_records_when_a_key_was_last_used_at_most_once_a_minute(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.users.add("svc", ["auditor"], kind="service")
    key = project.keys.issue("svc")
    assert project.keys.list("svc")[0].last_used_at is None
    before = utcnow()
    project.keys.authenticate(key.token)
    first = project.keys.list("svc")[0].last_used_at
    assert first is not None and first >= before
    project.keys.authenticate(key.token)
    assert project.keys.list("svc")[0].last_used_at == first  # throttled: no write per request
    later = utcnow() + timedelta(minutes=2)
    monkeypatch.setattr("mloop.access.users.utcnow", lambda: later)
    project.keys.authenticate(key.token)
    assert project.keys.list("svc")[0].last_used_at == later

from __future__ import annotations

from tests.cli.conftest import Run


def test_users_keys_and_acting_with_a_key(cli: Run) -> None:
    assert cli("users", "add", "alice", "--role", "auditor").code == 0
    issued = cli("keys", "issue", "alice", "--json").json()
    token = issued["token"]
    assert token.startswith(f"mlk_{issued['key_id']}_")
    listed = cli("keys", "list", "--json").json()
    assert [(k["key_id"], k["user"], k["active"]) for k in listed] == [(issued["key_id"], "alice", True)]
    assert token not in cli("keys", "list").out

    as_alice = cli("info", "--json", env={"MLOOP_API_KEY": token}).json()
    assert as_alice["actor"] == "alice" and as_alice["roles"] == ["auditor"]
    denied = cli("users", "add", "mallory", env={"MLOOP_API_KEY": token})
    assert denied.code == 1 and "alice (roles: auditor) may not users.write" in denied.err

    assert cli("keys", "revoke", issued["key_id"]).code == 0
    refused = cli("info", env={"MLOOP_API_KEY": token})
    assert refused.code == 1 and "revoked" in refused.err


def test_grant_revoke_disable(cli: Run) -> None:
    cli("users", "add", "bob", "-r", "data_scientist")
    assert "mlops" in cli("users", "grant", "bob", "mlops").out
    users = {u["name"]: u for u in cli("users", "list", "--json").json()}
    assert users["bob"]["roles"] == ["data_scientist", "mlops"]
    cli("users", "revoke", "bob", "data_scientist")
    cli("users", "disable", "bob")
    users = {u["name"]: u for u in cli("users", "list", "--json").json()}
    assert users["bob"]["roles"] == ["mlops"] and users["bob"]["disabled"] is True
    assert cli("users", "enable", "bob").code == 0
    assert {u["name"]: u for u in cli("users", "list", "--json").json()}["bob"]["disabled"] is False
    unknown_role = cli("users", "add", "carol", "-r", "superuser")
    assert unknown_role.code == 1 and "Unknown role 'superuser'" in unknown_role.err


def test_the_role_names_in_the_help_are_the_roles() -> None:
    """cli/users.py lists the roles without importing the security package (startup time); they must agree."""
    from mloop.cli.users import ROLE_NAMES
    from mloop.security.roles import ROLES

    assert tuple(ROLES) == ROLE_NAMES

"""``mloop users`` and ``mloop keys``: accounts, roles and API keys."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

# The role names, for the help text only: importing mloop.security.roles would load the metadata store's
# code into every `--help` (tests/cli/test_users.py checks that these stay equal to ROLES).
ROLE_NAMES = ("admin", "data_engineer", "data_scientist", "ml_engineer", "mlops", "auditor")

users_app = typer.Typer(help="Users, service accounts and their roles.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: issue (shown once), list, revoke.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
_ROLES_HELP = f"Role, optionally scoped as role@pattern. Roles: {', '.join(ROLE_NAMES)}."


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="User or service-account name."),
    role: list[str] = typer.Option([], "--role", "-r", help=_ROLES_HELP),
    service: bool = typer.Option(False, "--service", help="A service account (for programs), not a person."),
) -> None:
    """Add a user (or a service account with --service).

    Examples:

      $ mloop users add alice --role data_scientist
      $ mloop users add ci --service --role ml_engineer@fraud*
    """
    user = _state.project().users.add(name, role, kind="service" if service else "user")
    out.success(
        f"added {user.kind} {user.name} with roles: {out.fmt([str(g) for g in user.grants]) or 'none'}"
    )


@users_app.command("list")
def list_users(as_json: bool = JsonOpt) -> None:
    """Users and service accounts with their roles.

    Example:

      $ mloop users list
    """
    users = _state.project().users.list()
    if as_json:
        out.emit_json([u.to_dict() for u in users])
        return
    out.table("Users", ["name", "kind", "roles", "disabled", "created"],
              [(u.name, u.kind, [str(g) for g in u.grants], u.disabled, u.created_at) for u in users])  # fmt: skip


@users_app.command("grant")
def grant(name: str = typer.Argument(...), role: str = typer.Argument(..., help=_ROLES_HELP)) -> None:
    """Grant a role to a user.

    Example:

      $ mloop users grant alice mlops
    """
    user = _state.project().users.grant(name, role)
    out.success(f"{user.name} now holds: {out.fmt([str(g) for g in user.grants])}")


@users_app.command("revoke")
def revoke_role(name: str = typer.Argument(...), role: str = typer.Argument(..., help=_ROLES_HELP)) -> None:
    """Take a role away from a user.

    Example:

      $ mloop users revoke alice mlops
    """
    user = _state.project().users.revoke_role(name, role)
    out.success(f"{user.name} now holds: {out.fmt([str(g) for g in user.grants]) or 'none'}")


@users_app.command("disable")
def disable(name: str = typer.Argument(...)) -> None:
    """Disable a user: its API keys stop working.

    Example:

      $ mloop users disable alice
    """
    _state.project().users.disable(name)
    out.success(f"disabled {name}")


@users_app.command("enable")
def enable(name: str = typer.Argument(...)) -> None:
    """Enable a disabled user again.

    Example:

      $ mloop users enable alice
    """
    _state.project().users.enable(name)
    out.success(f"enabled {name}")


@keys_app.command("issue")
def issue(
    user: str = typer.Argument(..., help="The user or service account the key acts as."),
    expires: str | None = typer.Option(None, "--expires", help="Lifetime, e.g. 90d; default: no expiry."),
    description: str = typer.Option("", "--description", help="What the key is for."),
    as_json: bool = JsonOpt,
) -> None:
    """Issue an API key. It is printed once and never stored: keep it in a secret manager.

    Example:

      $ mloop keys issue ci --expires 90d --description 'nightly retraining'
    """
    key = _state.project().keys.issue(user, expires_in=expires, description=description)
    if as_json:
        out.emit_json(
            {"key_id": key.key_id, "user": key.user, "token": key.token, "expires_at": key.expires_at}
        )
        return
    out.console.print(key.token, soft_wrap=True, highlight=False)
    out.err.print(
        f"key {key.key_id} for {key.user}; shown only now. Use it as MLOOP_API_KEY or 'Authorization: Bearer …'."
    )


@keys_app.command("list")
def list_keys(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys."), as_json: bool = JsonOpt
) -> None:
    """API keys (ids only; secrets are never stored).

    Example:

      $ mloop keys list --user ci
    """
    project = _state.project()
    if user is not None:
        project.users.get(user)  # an unknown user is an error naming the known ones, not an empty table
    keys = project.keys.list(user)
    if as_json:
        out.emit_json([k.to_dict() for k in keys])
        return
    out.table("API keys", ["key id", "user", "active", "created", "expires", "revoked", "description"],
              [(k.key_id, k.user, k.active, k.created_at, k.expires_at, k.revoked_at, k.description) for k in keys])  # fmt: skip


@keys_app.command("rotate-data-key")
def rotate_data_key(as_json: bool = JsonOpt) -> None:
    """Re-encrypt everything kept at rest under a new data key, then retire the old one (admin only).

    Readers keep working throughout; a rotation that was stopped is finished by running it again.

    Example:

      $ mloop keys rotate-data-key
    """
    report = _state.project().encryption.rotate()
    if as_json:
        out.emit_json(report.to_dict())
        return
    resumed = " (finished an interrupted rotation)" if report.resumed else ""
    out.success(
        f"data key {report.new_key} active{resumed}: {report.files} file(s) and {report.blobs} blob(s) "
        f"re-encrypted; retired {', '.join(report.retired) or 'none'}"
    )


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key id (the part after mlk_).")) -> None:
    """Revoke an API key at once.

    Example:

      $ mloop keys revoke 7c1e2a
    """
    info = _state.project().keys.revoke(key_id)
    out.success(f"revoked key {info.key_id} of {info.user}")

"""Users, service accounts and API keys.

An API key is ``mlk_<key id>_<secret>``. Only a salted SHA-256 of the secret is stored, and the key is
shown once, when issued. The secret is 256 random bits, so a slow password hash would add latency to
every request without adding safety (see docs/decisions.md).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.orm import Session

from mloop._names import valid
from mloop._service import Service
from mloop._time import parse_duration, utcnow
from mloop.access import queries
from mloop.access.tokens import TokenVerifier, looks_like_jwt
from mloop.errors import (
    AlreadyExists,
    AuthenticationError,
    MetadataUnavailable,
    MloopError,
    NotFound,
    PermissionDenied,
)
from mloop.security.actor import Actor
from mloop.security.roles import Grant
from mloop.store.schema import ApiKeyRow, UserRow

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")
_LAST_USED_EVERY = timedelta(minutes=1)
_TOKEN = re.compile(r"^mlk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")


@dataclass(frozen=True)
class User:
    name: str
    kind: Literal["user", "service"]
    grants: tuple[Grant, ...]
    disabled: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        kind = cast(Literal["user", "service"], row.kind)  # the column holds only these two
        return cls(row.name, kind, tuple(Grant.parse(g) for g in row.grants), row.disabled, row.created_at)

    def actor(self, key_id: str | None = None) -> Actor:
        return Actor(self.name, self.kind, self.grants, key_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": [str(g) for g in self.grants],
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    user: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())

    def to_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}
        return {**out, "active": self.active}


@dataclass(frozen=True)
class IssuedKey:
    """A new key. ``token`` is shown once and never stored; keep it in a secret manager."""

    key_id: str
    user: str
    token: str
    expires_at: datetime | None


class Users(Service):
    """``project.users``: add users and service accounts, grant and revoke roles."""

    def add(self, name: str, roles: builtins.list[str] | tuple[str, ...] = (), kind: str = "user") -> User:
        if not valid(_NAME, name):
            raise MloopError(
                f"User name {name!r} is not allowed: use letters, digits and . _ @ -, starting with a letter "
                "or digit."
            )
        if kind not in ("user", "service"):
            raise MloopError(f"User kind {kind!r} is not one of: user, service.")
        grants = [Grant.parse(r) for r in roles]
        with self._mutate(
            "users.write", f"user:{name}", action="users.add", kind=kind, roles=[str(g) for g in grants]
        ) as change:
            if queries.user(change.session, name) is not None:
                raise AlreadyExists(
                    f"User {name!r} exists already; change its roles with `mloop users grant`."
                )
            row = UserRow(
                name=name,
                kind=kind,
                grants=[str(g) for g in grants],
                disabled=False,
                created_at=utcnow(),
                created_by=self.actor.name,
            )
            change.session.add(row)
            change.session.flush()
            return User.from_row(row)

    def get(self, name: str) -> User:
        self._authorize("users.read", f"user:{name}")
        with self._ctx.store.read() as session:
            return User.from_row(self._row(session, name))

    def list(self) -> builtins.list[User]:
        self._authorize("users.read")
        with self._ctx.store.read() as session:
            return [User.from_row(r) for r in queries.users(session)]

    def grant(self, name: str, role: str) -> User:
        grant = Grant.parse(role)
        with self._mutate("users.write", f"user:{name}", action="users.grant", grant=str(grant)) as change:
            row = self._row(change.session, name)
            if str(grant) not in row.grants:
                row.grants = [*row.grants, str(grant)]
            return User.from_row(row)

    def revoke_role(self, name: str, role: str) -> User:
        grant = Grant.parse(role)
        with self._mutate(
            "users.write", f"user:{name}", action="users.revoke_role", role=str(grant)
        ) as change:
            row = self._row(change.session, name)
            if str(grant) not in row.grants:
                raise NotFound(
                    f"User {name!r} does not hold {grant}; it holds: {', '.join(row.grants) or 'none'}."
                )
            row.grants = [g for g in row.grants if g != str(grant)]
            return User.from_row(row)

    def disable(self, name: str) -> User:
        with self._mutate("users.write", f"user:{name}", action="users.disable") as change:
            row = self._row(change.session, name)
            row.disabled = True
            return User.from_row(row)

    def enable(self, name: str) -> User:
        with self._mutate("users.write", f"user:{name}", action="users.enable") as change:
            row = self._row(change.session, name)
            row.disabled = False
            return User.from_row(row)

    def ensure_local_admin(self, name: str) -> None:
        """Create the configured local admin on first use (bootstrap; recorded like any other change)."""
        with self._ctx.store.read() as session:
            if queries.user(session, name) is not None:
                return
        with contextlib.suppress(AlreadyExists):  # another process bootstrapped it at the same moment
            self.add(name, ["admin"])

    def confirm(self, actor: Actor) -> Actor:
        """``actor`` if it is an enabled user whose grants cover the ones it claims, else
        :class:`PermissionDenied`: with ``local_admin: false``, code cannot make itself someone."""
        with self._ctx.store.read() as session:
            row = queries.user(session, actor.name)
            user = User.from_row(row) if row is not None else None
        if user is None or user.disabled:
            state = "is not a user of this project" if user is None else "is disabled"
            raise PermissionDenied(
                f"{actor.name!r} {state}, and local_admin is false: act with an API key "
                "(MLOOP_API_KEY) or as a user an admin added with `mloop users add`."
            )
        if not user.actor().holds_all_of(actor.grants):
            claimed = ", ".join(str(g) for g in actor.grants)
            held = ", ".join(str(g) for g in user.grants) or "none"
            raise PermissionDenied(
                f"{actor.name!r} claims {claimed} but holds {held}; an admin can grant a role with "
                f"`mloop users grant {actor.name} ROLE`."
            )
        return actor

    @staticmethod
    def _row(session: Session, name: str) -> UserRow:
        row = queries.user(session, name)
        if row is None:
            raise NotFound(
                f"No user named {name!r}; `mloop users list` shows them, `mloop users add` adds one."
            )
        return row


class Keys(Service):
    """``project.keys``: issue, list, revoke and check API keys."""

    def issue(
        self, user: str, *, expires_in: str | timedelta | None = None, description: str = ""
    ) -> IssuedKey:
        ttl = parse_duration(expires_in, what="key lifetime")
        if ttl is not None and ttl <= timedelta(0):
            # Checked here because a zero lifetime would otherwise read as "never expires".
            raise MloopError(
                f"The key lifetime {expires_in!r} is not positive: give one such as '90d', "
                "or none for a key that does not expire."
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        expires_at = utcnow() + ttl if ttl is not None else None
        with self._mutate("keys.issue", f"user:{user}", key_id=key_id) as change:
            owner = Users._row(change.session, user)
            if owner.disabled:
                raise MloopError(
                    f"User {user!r} is disabled; enable it (project.users.enable) before issuing keys."
                )
            # A key acts with its owner's roles *when it is used*: a key issued for someone else would gain
            # whatever that user is granted later. So only an admin issues keys for others.
            if user != self.actor.name and not self.actor.can("project.admin"):
                held = ", ".join(str(g) for g in self.actor.grants) or "none"
                raise PermissionDenied(
                    f"{self.actor.name} (roles: {held}) may issue keys only for itself: a key acts with its "
                    f"owner's roles at the time it is used, so a key for {user} is an admin's to issue."
                )
            if not self.actor.holds_all_of(Grant.parse(g) for g in owner.grants):
                held = ", ".join(str(g) for g in self.actor.grants) or "none"
                raise PermissionDenied(
                    f"{self.actor.name} (roles: {held}) may not issue a key for {user}: its roles "
                    f"({', '.join(owner.grants)}) allow more than yours. Ask an admin to issue it."
                )
            change.session.add(
                ApiKeyRow(
                    key_id=key_id,
                    user_id=owner.id,
                    salt=salt,
                    hash=_hash(salt, secret),
                    description=description,
                    created_at=utcnow(),
                    expires_at=expires_at,
                    revoked_at=None,
                    last_used_at=None,
                )
            )
            change.payload["expires_at"] = expires_at.isoformat() if expires_at else None
        return IssuedKey(key_id, user, f"mlk_{key_id}_{secret}", expires_at)

    def revoke(self, key_id: str) -> KeyInfo:
        with self._mutate("keys.revoke", f"key:{key_id}") as change:
            row, owner = queries.key(change.session, key_id)
            if row is None:
                raise NotFound(f"No API key with id {key_id!r}; `mloop keys list` shows them.")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return _key_info(row, owner.name if owner else "?")

    def list(self, user: str | None = None) -> builtins.list[KeyInfo]:
        self._authorize("users.read")
        with self._ctx.store.read() as session:
            return [_key_info(row, name) for row, name in queries.keys(session, user)]

    def authenticate(self, token: str, *, wait: bool = True) -> Actor:
        """The actor a key stands for; :class:`AuthenticationError` if unknown, revoked or expired.

        Needs no permission: holding the key is the credential. With ``oidc:`` settings, a single sign-on
        token (a JWT) is accepted too (:mod:`mloop.access.tokens`). ``wait=False`` (a request's path):
        :class:`~mloop.errors.MetadataUnavailable` at once when the metadata store cannot be reached.
        """
        if isinstance(token, str) and looks_like_jwt(token.strip()):
            return self._single_sign_on(token.strip())
        match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
        if not match:
            raise AuthenticationError(
                "Malformed API key: expected mlk_<12 hex>_<secret> as issued by `mloop keys issue`."
            )
        key_id, secret = match.groups()
        with self._ctx.store.read(wait=wait) as session:
            row, owner = queries.key(session, key_id)
        # Compare even for an unknown key id, so timing does not tell which key ids exist.
        salt, stored = (row.salt, row.hash) if row is not None else ("0" * 32, "0" * 64)
        if not hmac.compare_digest(_hash(salt, secret), stored) or row is None or owner is None:
            raise AuthenticationError(f"Unknown API key {key_id}: check the key, or issue a new one.")
        if row.revoked_at is not None:
            raise AuthenticationError(
                f"API key {key_id} was revoked on {row.revoked_at:%Y-%m-%d}; issue a new one."
            )
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise AuthenticationError(
                f"API key {key_id} expired on {row.expires_at:%Y-%m-%d}; issue a new one."
            )
        if owner.disabled:
            raise AuthenticationError(f"API key {key_id} belongs to disabled user {owner.name!r}.")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY:
            # Throttled, so a busy API key costs one small write a minute, not one per request.
            try:
                with self._ctx.store.write(serialize=False, wait=wait) as session:
                    queries.touch_key(session, row.id, now)
            except MetadataUnavailable:  # bookkeeping: the next use a minute later records it
                if wait:
                    raise
        return User.from_row(owner).actor(key_id)

    def _single_sign_on(self, token: str) -> Actor:
        oidc = self._ctx.settings.oidc
        if oidc is None:
            raise AuthenticationError(
                "This is a single sign-on token, and this project accepts none: configure the oidc: block "
                "of mloop.yaml (docs/security.md), or send an API key (mlk_...)."
            )
        verifier: TokenVerifier = self._ctx.resources.get("oidc", lambda: TokenVerifier(oidc))
        return verifier.actor(token)


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _key_info(row: ApiKeyRow, user: str) -> KeyInfo:
    return KeyInfo(
        row.key_id, user, row.description, row.created_at, row.expires_at, row.revoked_at, row.last_used_at
    )

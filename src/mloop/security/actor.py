"""Who is acting: a user or a service account, with the grants that say what it may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from mloop.errors import PermissionDenied
from mloop.security.roles import PERMISSIONS, Grant, check_action, roles_allowing


@dataclass(frozen=True)
class Actor:
    """The caller of a service function.

    >>> alice = Actor("alice", grants=(Grant("data_scientist"),))
    >>> alice.can("runs.write"), alice.can("deployments.write")
    (True, False)
    """

    name: str
    kind: Literal["user", "service"] = "user"
    grants: tuple[Grant, ...] = field(default=())
    key_id: str | None = None

    @classmethod
    def local_admin(cls, name: str) -> Actor:
        return cls(name, "user", (Grant("admin"),))

    def can(self, action: str, resource: str = "*") -> bool:
        check_action(action)
        return any(grant.allows(action, resource) for grant in self.grants)

    def holds_all_of(self, grants: Iterable[Grant]) -> bool:
        """True if this actor may do everything ``grants`` allow, wherever they allow it."""
        return all(
            any(action in PERMISSIONS[mine.role] and mine.includes(theirs.scope) for mine in self.grants)
            for theirs in grants
            for action in PERMISSIONS[theirs.role]
        )

    def can_somewhere(self, action: str) -> bool:
        """True if some grant allows ``action``, on whatever scope."""
        check_action(action)
        return any(action in PERMISSIONS[grant.role] for grant in self.grants)

    def require_somewhere(self, action: str, kind: str) -> None:
        """Raise :class:`PermissionDenied` unless ``action`` is allowed on at least one ``kind``: what a
        caller must hold before a lookup that could otherwise tell it what exists."""
        if not self.can_somewhere(action):
            self.require(action, f"any {kind}")

    def require(self, action: str, resource: str = "*") -> None:
        """Raise :class:`PermissionDenied`, naming the roles that would allow it, unless allowed."""
        if self.can(action, resource):
            return
        held = ", ".join(str(g) for g in self.grants) or "none"
        allowed = ", ".join(roles_allowing(action))
        raise PermissionDenied(
            f"{self.name} (roles: {held}) may not {action} on {resource}. Roles that may: {allowed}. "
            f"An admin can grant one: mloop users grant {self.name} ROLE."
        )

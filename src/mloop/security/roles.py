"""The permission table: which role may do which action. Least privilege; ``auditor`` only reads.

A user holds *grants*: a role, optionally limited to resources matching a pattern, written
``role`` or ``role@pattern`` (``ml_engineer@endpoint:fraud``, ``data_engineer@dataset:txn_*``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from mloop.errors import MloopError

READS = frozenset(
    {
        "project.read",
        "data.read",
        "features.read",
        "runs.read",
        "models.read",
        "deployments.read",
        "monitoring.read",
        "loop.read",
        "users.read",
        "decisions.read",  # architecture decisions: shared with everyone who reads the project
    }
)

ACTIONS: frozenset[str] = READS | {
    "project.admin",
    "data.write",
    "features.write",
    "features.materialize",
    "features.push",
    "runs.write",
    "models.register",
    "models.alias",
    "models.promote",
    "models.approve",
    "models.delete",
    "deployments.write",
    "deployments.rollback",
    "predict",
    "monitoring.write",
    "loop.operate",
    "users.write",
    "keys.issue",
    "keys.revoke",
    "audit.read",
    "privacy.forget",
    "privacy.purge",
    "encryption.rotate",  # re-encrypt everything at rest under a new data key (admin only)
    "decisions.write",  # record an architecture decision
    "review.read",  # the architecture review: key ages, settings, the audit chain's state
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": ACTIONS,
    "data_engineer": READS
    | {
        "data.write",
        "features.write",
        "features.materialize",
        "features.push",
        "privacy.forget",
        "privacy.purge",
        "decisions.write",
    },
    "data_scientist": READS
    | {"features.write", "runs.write", "models.register", "models.alias", "decisions.write"},
    "ml_engineer": READS
    | {
        "features.write",
        "features.materialize",
        "runs.write",
        "models.register",
        "models.alias",
        "models.promote",
        "deployments.write",
        "deployments.rollback",
        "predict",
        "decisions.write",
    },
    "mlops": READS
    | {
        "features.materialize",
        "models.alias",
        "models.promote",
        "models.approve",
        "deployments.write",
        "deployments.rollback",
        "predict",
        "monitoring.write",
        "loop.operate",
        "keys.issue",
        "keys.revoke",
        "decisions.write",
        "review.read",
    },
    "auditor": READS | {"audit.read", "review.read"},
}

ROLES = tuple(PERMISSIONS)


@dataclass(frozen=True)
class Grant:
    """A role, on every resource (``scope="*"``) or on those matching ``scope``."""

    role: str
    scope: str = "*"

    def __post_init__(self) -> None:
        if self.role not in PERMISSIONS:
            raise MloopError(f"Unknown role {self.role!r}. Roles: {', '.join(ROLES)}.")

    @classmethod
    def parse(cls, text: str) -> Grant:
        role, at, scope = text.strip().partition("@")
        if at and not scope:
            # Read as "every resource", a forgotten scope would grant far more than was meant.
            raise MloopError(
                f"Grant {text!r} has an empty scope: write role@pattern (ml_engineer@endpoint:fraud), "
                f"or {role!r} alone for every resource."
            )
        return cls(role, scope or "*")

    def allows(self, action: str, resource: str) -> bool:
        return action in PERMISSIONS[self.role] and (
            self.scope == "*" or fnmatch.fnmatchcase(resource, self.scope)
        )

    def includes(self, scope: str) -> bool:
        """True if every resource that ``scope`` matches is within this grant's scope."""
        return self.scope in ("*", scope) or (scope != "*" and fnmatch.fnmatchcase(scope, self.scope))

    def __str__(self) -> str:
        return self.role if self.scope == "*" else f"{self.role}@{self.scope}"


def roles_allowing(action: str) -> list[str]:
    return [role for role, actions in PERMISSIONS.items() if action in actions]


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise MloopError(f"Unknown action {action!r}; actions: {', '.join(sorted(ACTIONS))}.")

"""Identity and audit: actors, roles and permissions, users and API keys, the hash-chained event log."""

from mloop.security.actor import Actor
from mloop.security.audit import AuditReport, Event
from mloop.security.roles import ACTIONS, PERMISSIONS, ROLES, Grant

__all__ = ["ACTIONS", "PERMISSIONS", "ROLES", "Actor", "AuditReport", "Event", "Grant"]

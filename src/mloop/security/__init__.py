"""Security primitives every service relies on: actors, roles and permission checks, and the
hash-chained audit log (:mod:`mloop.security.audit_chain`). Managing users, API keys and reading the
audit log are services above these, in :mod:`mloop.access`."""

from mloop.security.actor import Actor
from mloop.security.audit_chain import AuditReport, Event, EventPage
from mloop.security.roles import ACTIONS, PERMISSIONS, ROLES, Grant

__all__ = ["ACTIONS", "PERMISSIONS", "ROLES", "Actor", "AuditReport", "Event", "EventPage", "Grant"]

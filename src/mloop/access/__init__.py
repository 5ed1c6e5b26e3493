"""Who may use a project, and what they did: ``project.users`` (users and their roles),
``project.keys`` (API keys: issue, rotate, revoke, authenticate) and ``project.audit`` (read and verify
the event log). Each change is an audited mutation like any other service's.

>>> project.users.add("alice", ["data_scientist"])   # doctest: +SKIP
>>> token = project.keys.issue("alice").token         # doctest: +SKIP
"""

from mloop.access.audit import AuditLog
from mloop.access.encryption import Encryption, RotationReport
from mloop.access.users import IssuedKey, Keys, User, Users

__all__ = ["AuditLog", "Encryption", "IssuedKey", "Keys", "RotationReport", "User", "Users"]

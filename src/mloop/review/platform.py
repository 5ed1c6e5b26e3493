"""What the review reads: every service of a project, the users and keys, the audit log and encryption.

:class:`mloop.Project` is a :class:`Reviewed`; the review is written against this protocol rather than the
facade, which sits above it (``project.review()`` calls into this package).
"""

from __future__ import annotations

from typing import Protocol

from mloop.access.audit import AuditLog
from mloop.access.encryption import Encryption
from mloop.access.users import Keys, Users
from mloop.artifacts import ArtifactStore
from mloop.loop.platform import Platform
from mloop.review.decisions import Decisions
from mloop.security.actor import Actor


class Reviewed(Platform, Protocol):
    """A whole project, as the review sees it."""

    @property
    def users(self) -> Users: ...

    @property
    def keys(self) -> Keys: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def encryption(self) -> Encryption: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    @property
    def decisions(self) -> Decisions: ...

    @property
    def actor(self) -> Actor: ...

    @property
    def name(self) -> str: ...

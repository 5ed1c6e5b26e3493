"""Every ``mloop serve`` / ``mloop ui`` start says who it is in the metadata store (a ``serving.start``
event, see :mod:`mloop.access.servers`), so the review, which runs elsewhere, knows how servers listen.

>>> announce(project, sock, tls=False, workers=4)        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import socket

from mloop.access.servers import Announcement
from mloop.errors import PermissionDenied
from mloop.project import Project

log = logging.getLogger("mloop.serving")


def announce(
    project: Project, sock: socket.socket, *, tls: bool, workers: int = 1, kind: str = "serve"
) -> Announcement | None:
    """Record that this process listens on ``sock``; None (and a warning) if the project's identity may
    not: the server still starts, but the review will not see it."""
    host, port = sock.getsockname()[:2]
    announcement = Announcement.here(str(host), int(port), tls=tls, local_admin=project.settings.local_admin,
                                     workers=workers, kind=kind)  # fmt: skip
    try:
        project.servers.announce(announcement)
    except PermissionDenied as exc:
        log.warning("this server is not announced, so `mloop review` will not see it: %s", exc)
        return None
    return announcement

"""Servers announce themselves: each ``mloop serve`` / ``mloop ui`` start appends a ``serving.start`` event
on ``server:<hostname>:<port>`` saying how it listens (host, port, TLS, workers, local_admin) and who it is
(hostname, pid, mloop version).

The review runs from the CLI, not inside a server, so it cannot see how servers were started; these events
are how it learns. They live in the metadata store, so with a shared PostgreSQL the replicas on other hosts
appear too.

>>> project.servers.announce(Announcement.here("0.0.0.0", 8700, tls=False, local_admin=True))  # doctest: +SKIP
>>> [Announcement.from_event(e) for e in project.audit.events(action=ACTION)]             # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from mloop._service import Service
from mloop._version import __version__
from mloop.security.audit_chain import Event

ACTION = "serving.start"
#: Starting a server needs no permission of its own in mloop (whoever can open the project can run
#: ``mloop serve``; the host decides who may listen), so the announcement asks for what every such
#: identity holds. A stronger permission would hide exactly the servers run by weaker identities.
PERMISSION = "project.read"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, ``localhost``).
    Wildcards (``0.0.0.0``, ``::``) and any other name or address face the network."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost: it resolves to whatever the network says


@dataclass(frozen=True)
class Announcement:
    """How one server process listens, as its ``serving.start`` event records it."""

    host: str
    port: int
    tls: bool
    workers: int
    local_admin: bool
    hostname: str
    pid: int
    version: str
    kind: str = "serve"  # serve (the API, with the dashboard) or ui (the dashboard alone)
    seq: int | None = None  # the event's number, once recorded
    at: datetime | None = None

    @classmethod
    def here(
        cls, host: str, port: int, *, tls: bool, local_admin: bool, workers: int = 1, kind: str = "serve"
    ) -> Announcement:
        """This process, listening on ``host:port``."""
        return cls(
            host, port, tls, workers, local_admin, socket.gethostname(), os.getpid(), __version__, kind
        )

    @classmethod
    def from_event(cls, event: Event) -> Announcement:
        p = event.payload
        return cls(str(p.get("host", "")), int(p.get("port", 0)), bool(p.get("tls")), int(p.get("workers", 1)),
                   bool(p.get("local_admin")), str(p.get("hostname", "")), int(p.get("pid", 0)),
                   str(p.get("version", "")), str(p.get("kind", "serve")), event.seq, event.ts)  # fmt: skip

    @property
    def resource(self) -> str:
        return f"server:{self.hostname}:{self.port}"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def describe(self) -> str:
        """One line of evidence: ``server:web1:8700 on 0.0.0.0 (network), no TLS, local_admin on``."""
        where = "loopback" if self.loopback else "network"
        return (f"{self.resource} ({self.kind}, pid {self.pid}, mloop {self.version}) on {self.host} ({where}), "
                f"{'TLS' if self.tls else 'no TLS'}, local_admin {'on' if self.local_admin else 'off'}, "
                f"{self.workers} worker(s)")  # fmt: skip

    def payload(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("seq", "at")}


class Servers(Service):
    """``project.servers``: record that a server started (``serving.start``)."""

    def announce(self, announcement: Announcement) -> None:
        """Append the ``serving.start`` event of ``announcement`` (permission :data:`PERMISSION`)."""
        with self._mutate(PERMISSION, announcement.resource, action=ACTION, **announcement.payload()):
            pass  # the event is the whole change

"""``project.servers``: a server's start is an audit event the review can read back as it was recorded."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mloop import Project
from mloop._version import __version__
from mloop.access.servers import ACTION, Announcement, is_loopback
from mloop.errors import PermissionDenied
from mloop.security.actor import Actor
from mloop.security.roles import Grant


def test_an_announcement_is_recorded_and_read_back_whole(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        here = Announcement.here("0.0.0.0", 8700, tls=True, local_admin=False, workers=3)
        assert (here.hostname, here.pid, here.version) == (socket.gethostname(), os.getpid(), __version__)
        project.servers.announce(here)
        (event,) = project.audit.events(action=ACTION)
        assert event.resource == f"server:{socket.gethostname()}:8700" and event.actor == project.actor.name
        back = Announcement.from_event(event)
        assert back.payload() == here.payload() and back.seq == event.seq and back.at == event.ts
        assert project.audit.verify().ok
    finally:
        project.close()


def test_an_identity_without_project_read_on_the_server_cannot_announce(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        scoped = project.as_actor(Actor("bot", "service", (Grant("ml_engineer", "endpoint:fraud"),)))
        with pytest.raises(PermissionDenied):
            scoped.servers.announce(Announcement.here("127.0.0.1", 1, tls=False, local_admin=False))
        assert project.audit.events(action=ACTION) == []
    finally:
        project.close()


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("web1.example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

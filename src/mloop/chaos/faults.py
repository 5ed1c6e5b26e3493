"""The faults ``mloop chaos run`` injects, each into a part of the user's own deployment on this machine.

A fault is prepared first (:func:`prepare`): its target is found and checked, and it is refused with the
reason and the fix when the target is not on this machine or the fault cannot be bounded. Then it is
injected once, for at most :data:`MAX_SECONDS`, by a mechanism that ends by itself; :meth:`Fault.undo`
(called in a ``finally``, after an error or Ctrl-C too) releases what the fault holds.

- ``online-store-pause``: ``CLIENT PAUSE <ms> ALL`` on the project's Redis online store (loopback only,
  Redis 6.2 or later): Redis accepts connections but answers no command for exactly that long, then
  resumes by itself, as a Redis stuck in a long command, a fork or a network black hole looks to clients.
- ``worker-kill``: ``kill -9`` of one worker of the ``mloop serve`` listening on the URL's port (this
  machine, this user); the server's supervisor starts a replacement. A single-process server is refused
  unless ``allow_outage``: killing it is an outage that nothing ends.

Not offered: pausing the PostgreSQL metadata store. ``SIGSTOP`` of its processes does not end by itself
(an interrupted run would leave the database frozen) and stopping it needs the rights of its owner.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from mloop.chaos import procs
from mloop.config.settings import Settings
from mloop.errors import MloopError

MAX_SECONDS = 120.0  # the longest fault: an experiment, not an outage


class ChaosRefused(MloopError):
    """A fault that ``mloop chaos run`` will not inject: its target is not on this machine, or unknown."""


class Fault(Protocol):
    """One prepared fault: checked, not yet injected."""

    name: str

    def inject(self, seconds: float) -> float:
        """Start the fault, which ends by itself within ``seconds``; when it ends (``time.monotonic()``;
        now for an instant fault such as a kill)."""
        ...

    def watch(self, stop: threading.Event) -> None:
        """After :meth:`inject`, follow the target's recovery until it is complete or ``stop`` is set."""
        ...

    def undo(self) -> None:
        """Release what the fault holds, and end it now where that is possible (it ends by itself anyway);
        idempotent, safe before :meth:`inject` and after the end."""
        ...

    def figures(self) -> dict[str, Any]:
        """What the fault measured of its target (for the result)."""
        ...


class OnlineStorePause:
    """``CLIENT PAUSE <ms> ALL`` on the project's Redis online store."""

    name = "online-store-pause"

    def __init__(self, settings: Settings) -> None:
        from mloop._redis import redact, split_prefix
        from mloop.review.probe import loopback

        url = settings.online_url
        if not url.startswith(("redis://", "rediss://")):
            raise ChaosRefused(
                f"{self.name} pauses a Redis online store; this project's online_url is {url!r}, not Redis. "
                "Set online_url: redis://127.0.0.1:6379/0 in mloop.yaml (and materialize), or pick another fault."
            )
        client_url, _ = split_prefix(url, None)
        try:
            import redis
        except ImportError as exc:
            raise ChaosRefused(f"{self.name} needs the redis client: pip install 'mloop[redis]'.") from exc
        self._client = redis.Redis.from_url(client_url, socket_timeout=5, socket_connect_timeout=5)
        host = self._client.connection_pool.connection_kwargs.get("host", "")
        self._shown = redact(url)
        if not loopback(str(host)):
            raise ChaosRefused(
                f"Refusing to pause the online store at {self._shown}: {host} is not this machine (127.0.0.0/8, "
                "::1, localhost). mloop chaos run injects faults into a deployment on this machine only."
            )
        try:
            version = str(self._client.info("server")["redis_version"])
        except redis.RedisError as exc:
            raise ChaosRefused(
                f"The online store at {self._shown} does not answer ({exc}): start it before pausing it."
            ) from exc
        if tuple(int(p) for p in version.split(".")[:2]) < (6, 2):
            raise ChaosRefused(
                f"The online store at {self._shown} is Redis {version}; {self.name} needs Redis 6.2 or later "
                "(CLIENT PAUSE … ALL that ends by itself)."
            )
        self._ends: float | None = None

    def inject(self, seconds: float) -> float:
        started = time.monotonic()
        self._client.client_pause(max(1, round(seconds * 1000)), all=True)
        self._ends = started + seconds
        return self._ends

    def watch(self, stop: threading.Event) -> None:
        return None  # Redis resumes by itself at the end of the pause: nothing to follow

    def undo(self) -> None:
        # Nothing can end a pause ALL sooner: Redis postpones every command meanwhile, CLIENT UNPAUSE too
        # (measured on Redis 7.0); the pause ends at its own deadline, at most MAX_SECONDS away.
        self._client.close()

    def figures(self) -> dict[str, Any]:
        return {"online_store": self._shown}


class WorkerKill:
    """``kill -9`` of one worker of the ``mloop serve`` that listens on ``port`` on this machine."""

    name = "worker-kill"

    def __init__(self, port: int, *, allow_outage: bool) -> None:
        found = procs.server_on(port)
        if found is None:
            raise ChaosRefused(
                f"No process on this machine that this user can see listens on port {port}: start "
                f"`mloop serve --port {port} --workers 2` here (as this user), or give its --url."
            )
        if not found.is_mloop_serve:
            raise ChaosRefused(
                f"Port {port} is held by process {found.supervisor} ({' '.join(found.argv)[:200]}), "
                "not `mloop serve`: worker-kill kills only mloop's own server processes."
            )
        if not found.workers and not allow_outage:
            raise ChaosRefused(
                f"`mloop serve` on port {port} (pid {found.supervisor}) runs a single process: killing it is an "
                "outage that nothing ends. Start it with --workers 2 (its supervisor replaces a killed "
                "worker), or pass --allow-outage to kill it anyway."
            )
        self.server = found
        self.port = port
        self.killed: int | None = None
        self.connections = 0
        self._at: float | None = None
        self._replaced_at: float | None = None

    def inject(self, seconds: float) -> float:
        candidates = self.server.workers or (self.server.supervisor,)
        # the worker holding the most client connections: the fault should hit clients, which is the point
        held = {pid: procs.connections(pid, self.port) for pid in candidates if procs.alive(pid)}
        if not held:
            raise ChaosRefused(
                f"The workers of the server on port {self.port} are gone: is it still running?"
            )
        self.killed = max(held, key=lambda pid: held[pid])
        self.connections = held[self.killed]
        self._at = time.monotonic()
        os.kill(self.killed, signal.SIGKILL)
        return self._at

    def watch(self, stop: threading.Event) -> None:
        """Until the supervisor has started a replacement worker (a new process holding the port)."""
        if not self.server.workers or self.killed is None:
            return  # a single-process server: nothing replaces it
        while not stop.wait(0.1):
            if procs.new_workers(self.server):
                self._replaced_at = time.monotonic()
                return

    def undo(self) -> None:
        return None  # a kill cannot be undone; the supervisor replaces the worker

    def figures(self) -> dict[str, Any]:
        respawn = None
        if self._replaced_at is not None and self._at is not None:
            respawn = round(self._replaced_at - self._at, 3)
        return {"killed_pid": self.killed, "its_connections": self.connections,
                "workers": len(self.server.workers), "respawned_s": respawn}  # fmt: skip


FAULTS: dict[str, Callable[[Settings, int, bool], Fault]] = {
    "online-store-pause": lambda settings, port, allow_outage: OnlineStorePause(settings),
    "worker-kill": lambda settings, port, allow_outage: WorkerKill(port, allow_outage=allow_outage),
}


def prepare(name: str, settings: Settings, port: int, *, allow_outage: bool = False) -> Fault:
    """The fault ``name`` (one of :data:`FAULTS`), checked against this machine; :class:`ChaosRefused`
    with the reason and the fix otherwise.

    >>> prepare("disk-fill", settings, 8700)                       # doctest: +SKIP
    ChaosRefused: Unknown fault 'disk-fill'; the faults are: online-store-pause, worker-kill.
    """
    known(name)
    return FAULTS[name](settings, port, allow_outage)


def known(name: str) -> None:
    """:class:`ChaosRefused`, listing the faults, unless ``name`` is one of :data:`FAULTS`."""
    if name not in FAULTS:
        raise ChaosRefused(f"Unknown fault {name!r}; the faults are: {', '.join(FAULTS)}.")

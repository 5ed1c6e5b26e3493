"""Who is calling: the API key in ``Authorization: Bearer``, resolved to an actor and cached briefly so
the hot path does not query the metadata store on every request."""

from __future__ import annotations

import threading
import time

from fastapi import Request

from mloop.errors import AuthenticationError
from mloop.project import Project

CACHE_SECONDS = 5.0


class Authenticator:
    def __init__(self, project: Project, cache_seconds: float = CACHE_SECONDS) -> None:
        self.project = project
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Project]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Project:
        header = request.headers.get("authorization", "")
        if not header:
            if self.project.settings.local_admin:
                return self.project
            raise AuthenticationError("This server needs an API key: send Authorization: Bearer mlk_...")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Send the API key as Authorization: Bearer mlk_...")
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        actor = self.project.keys.authenticate(token)
        seen = self.project.as_actor(actor)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, seen)
        return seen

"""Who is calling: the API key in ``Authorization: Bearer``, resolved to an actor and cached briefly so
the hot path does not query the metadata store on every request; then the key's rate limit.

It is an ``async`` dependency so FastAPI calls it on the event loop, without a thread hop; a cache miss
reads the metadata store once (a few hundred microseconds) for the next ``cache_seconds``. That is also
how long a revoked key, a removed role or a removed user keeps working on a worker that saw it last:
:data:`CACHE_SECONDS`, half a second (it was 5 s; a key used nonstop costs two reads a second)."""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import Request

from mloop.errors import AuthenticationError, MetadataUnavailable
from mloop.project import Project
from mloop.serving.http.protection import RateLimits
from mloop.serving.ratelimit import open_rate_limiter

CACHE_SECONDS = 0.5  # the longest a revocation takes to reach a serving worker


class Authenticator:
    def __init__(
        self, project: Project, cache_seconds: float = CACHE_SECONDS, limits: RateLimits | None = None
    ) -> None:
        self.project = project
        serving = project.settings.serving
        if limits is None:
            limited = serving.rate_limit is not None or bool(serving.rate_limits)
            limiter = (
                open_rate_limiter(serving.rate_limit_url) if limited and serving.rate_limit_url else None
            )
            limits = RateLimits(serving.rate_limit, serving.rate_burst, serving.rate_limits, limiter=limiter)
        self.limits = limits
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Project]] = {}
        self._lock = threading.Lock()

    async def __call__(self, request: Request) -> Project:
        return self.admit(request.headers.get("authorization", ""))

    def admit(self, header: str) -> Project:
        """The project as the caller of ``header`` (an ``Authorization`` value), after its rate limit."""
        seen = self.identify(header)
        if self.limits.enabled:
            self.limits.check(self._key(header), seen.actor.name)
        return seen

    @staticmethod
    def _key(header: str) -> str:
        token = header.partition(" ")[2]
        return hashlib.blake2b(token.encode(), digest_size=12).hexdigest() if token else "(no key)"

    def identify(self, header: str) -> Project:
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
        try:  # a request's path: never wait for the metadata store
            actor = self.project.keys.authenticate(token, wait=False)
        except MetadataUnavailable:
            if cached is None:
                raise  # 503: the key cannot be checked until the database is back
            return cached[1]  # checked before the database became unreachable; checked again after
        seen = self.project.as_actor(actor)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, seen)
        return seen


class MetricsGate:
    """The dependency of ``GET /metrics``: open, or (``serving.metrics_auth``, by default when
    ``local_admin`` is false) a caller with ``monitoring.read``. Prometheus sends a key with
    ``authorization: {credentials: mlk_...}`` in its scrape config."""

    def __init__(self, caller: Authenticator) -> None:
        settings = caller.project.settings
        wanted = settings.serving.metrics_auth
        self.required = (not settings.local_admin) if wanted is None else wanted
        self.caller = caller

    async def __call__(self, request: Request) -> None:
        if not self.required:
            return
        header = request.headers.get("authorization", "")
        if not header:  # even a local-admin server, when metrics_auth says so
            raise AuthenticationError("/metrics needs an API key here: send Authorization: Bearer mlk_...")
        self.caller.identify(header).actor.require("monitoring.read", "metrics")

"""Keeping a server up under load: a concurrency cap that sheds excess requests at once, a body size
limit, and per-key token-bucket rate limits.

Shedding is the point: a server that queues every request it cannot serve yet answers all of them late
(and then runs out of memory). Past ``max_concurrency`` requests in flight, this one answers 503 with
``Retry-After`` in microseconds, so the load balancer or client can retry elsewhere, and the admitted
requests keep their latency.

>>> limits = RateLimits(rate=100, burst=200)
>>> limits.check("key-a")   # raises TooManyRequests past 200 at once or 100/s sustained
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mloop.errors import TooManyRequests
from mloop.serving import metrics

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

_GUARDED = ("/v1/endpoints/", "/v2/models/", "/v1/features/", "/v1/feedback")


class RateLimits:
    """Token buckets per key: ``rate`` tokens a second up to ``burst``; ``per_name`` replaces the rate for
    the named callers. Thread-safe; the state is a dict of small lists (one per key seen)."""

    def __init__(
        self, rate: float | None, burst: int | None = None, per_name: Mapping[str, float] | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.per_name = dict(per_name or {})
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill (monotonic)]
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate is not None or bool(self.per_name)

    def limits_for(self, name: str) -> tuple[float, float] | None:
        rate = self.per_name.get(name, self.rate)
        if rate is None:
            return None
        burst = self.burst if self.burst is not None and name not in self.per_name else max(1.0, 2 * rate)
        return rate, float(burst)

    def check(self, key: str, name: str | None = None, now: float | None = None) -> None:
        """Take one token from ``key``'s bucket (limits of caller ``name``), or raise TooManyRequests."""
        found = self.limits_for(name if name is not None else key)
        if found is None:
            return
        rate, burst = found
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) > 100_000:  # keys seen long ago are full buckets again anyway
                    self._buckets.clear()
                bucket = self._buckets[key] = [burst, now]
            tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        wait = (1.0 - tokens) / rate
        metrics.RATE_LIMITED.inc()
        raise TooManyRequests(
            f"Rate limit of {rate:g} requests/s (burst {burst:g}) reached for this API key; retry in "
            f"{wait:.2f} s, or ask an admin to raise serving.rate_limits for {name or key!r}.",
            retry_after=wait,
        )


class Guard:
    """ASGI middleware: the concurrency cap and the body size limit, before any routing or parsing."""

    def __init__(self, app: Any, *, max_concurrency: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0  # touched only on the event loop thread: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_GUARDED):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrency:
            metrics.SHED.inc()
            await _reply(send, 503, {"error": "Overloaded", "message": (
                f"The server is at its limit of {self.max_concurrency} requests in flight; retry shortly "
                "(or add workers: mloop serve --workers N).")}, {"retry-after": "1"})  # fmt: skip
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            return
        self.in_flight += 1
        metrics.IN_FLIGHT.set(self.in_flight)
        try:
            if declared is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                receive = await self._buffered(receive)  # a chunked body: read it, bounded, first
                if receive is None:
                    await _too_large(send, self.max_body_bytes)
                    return
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.set(self.in_flight)

    async def _buffered(self, receive: Receive) -> Receive | None:
        """The whole body of a request without Content-Length, read up to the limit and replayed; None
        when it passes the limit."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def again() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return replay
            return await receive()

        return again


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    await _reply(send, 413, {"error": "PayloadTooLarge", "message": (
        f"The request body is over the limit of {limit:,} bytes; send fewer rows per request (or score "
        "files with `mloop score`), or raise serving.max_body_bytes.")})  # fmt: skip


async def _reply(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

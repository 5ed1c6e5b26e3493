"""Keeping a server up under load: a concurrency cap that sheds excess requests at once, a body size
limit, and per-key token-bucket rate limits.

Shedding is the point: a server that queues every request it cannot serve yet answers all of them late
(and then runs out of memory). Past ``max_concurrency`` requests in flight, this one answers 503 with
``Retry-After`` in microseconds, so the load balancer or client can retry elsewhere, and the admitted
requests keep their latency.

A cap on requests in flight sees only requests that wait *inside* the app (for a batch, say). A model
called inline on the event loop finishes each request before the next starts, so under overload the
queue builds up outside the app, in the loop's backlog of parsed requests, and the in-flight count stays
near one. So the guard also watches the loop itself, through its
:class:`~mloop.serving.http.looplag.LoopMonitor` (started with the app, so that the loop-lag metrics
cover the whole life of the worker): a timer due every 2 ms measures how late it runs, which is how long
a callback queued now waits. As in CoDel (Nichols and Jacobson's queue
discipline), a delay is only overload when it persists and builds: once every measurement for a whole
:data:`INTERVAL` was over ``max_queue_ms`` and one of them was an :data:`INTERVAL` late, or the timer has
been overdue that long (counting only the delay the server caused itself, not the time other processes
held the CPU), the guard is
*dropping*: each turn of the loop admits requests only until the loop has run ``max_queue_ms`` since the
timer last ran (and always the first request since then), and answers the rest at once with 503. A
rejection costs a tenth of a prediction, so the admitted work per turn is bounded, the loop keeps up,
and admitted and refused requests alike are answered within a few multiples of ``max_queue_ms``. Dropping ends when the measurements have stayed
under half the target for a whole :data:`INTERVAL`. A short stall (a garbage collection, a model loading
in another thread) sheds nothing, nor does a slow stretch at normal load that leaves a queue of a few
tens of ms (requests costing twice as much for a tenth of a second while another process thrashes the
shared caches): the loop works such a queue off by itself.

>>> limits = RateLimits(rate=100, burst=200)
>>> limits.check("key-a")   # raises TooManyRequests past 200 at once or 100/s sustained
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from mloop.errors import TooManyRequests
from mloop.serving import metrics
from mloop.serving.http.looplag import TICK, LoopMonitor
from mloop.serving.ratelimit import MemoryRateLimiter, RateLimiter

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

log = logging.getLogger(__name__)
_GUARDED = ("/v1/endpoints/", "/v2/models/", "/v1/features/", "/v1/feedback")
INTERVAL = 0.1  # how long the lag must stay over the target before requests are shed (CoDel's interval)


class RateLimits:
    """Per-key limits: ``rate`` requests a second up to ``burst`` at once; ``per_name`` replaces the rate
    for the named callers. The budgets live in ``limiter``: this process's token buckets by default, or
    a server every replica shares (:mod:`mloop.serving.ratelimit`, ``serving.rate_limit_url``)."""

    def __init__(
        self,
        rate: float | None,
        burst: int | None = None,
        per_name: Mapping[str, float] | None = None,
        *,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.per_name = dict(per_name or {})
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()

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
        """Take one request from ``key``'s budget (limits of caller ``name``), or raise TooManyRequests."""
        found = self.limits_for(name if name is not None else key)
        if found is None:
            return
        rate, burst = found
        wait = self.limiter.take(key, rate, burst, now)
        if wait <= 0:
            return
        metrics.RATE_LIMITED.inc()
        raise TooManyRequests(
            f"Rate limit of {rate:g} requests/s (burst {burst:g}) reached for this API key; retry in "
            f"{wait:.2f} s, or ask an admin to raise serving.rate_limits for {name or key!r}.",
            retry_after=wait,
        )

    def close(self) -> None:
        self.limiter.close()


class Guard:
    """ASGI middleware: the concurrency cap and the body size limit, before any routing or parsing."""

    def __init__(
        self, app: Any, *, max_concurrency: int, max_body_bytes: int, max_queue_ms: float | None = None
    ) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.max_body_bytes = max_body_bytes
        self.max_queue = max_queue_ms / 1000 if max_queue_ms else None
        self.in_flight = 0  # touched only on the event loop thread: no lock needed
        self.monitor = LoopMonitor(self._measured)
        self._above: float | None = None  # since when (loop time) every measurement was over the target
        self._below: float | None = None  # since when every measurement was under half the target
        self._peak = 0.0  # the longest measurement since ``_above``
        self.dropping = False  # overloaded: admitting a bounded amount of work per turn of the loop
        self._dropped_at = 0.0  # when dropping began (loop time)
        self.refused = 0  # requests refused for lag since dropping began
        self._admitted = math.nan  # the watcher's ``due`` when a request was last admitted

    @property
    def lag(self) -> float:
        """How late the loop ran the last timer, seconds."""
        return self.monitor.lag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the app starts: measure the loop from now on
            self._restart()
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or not scope["path"].startswith(_GUARDED):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrency:
            await _shed(send, f"at its limit of {self.max_concurrency} requests in flight")
            return
        behind = self._behind()
        if behind is not None:
            self.refused += 1
            await _shed(send, f"{behind * 1000:.0f} ms behind (limit serving.max_queue_ms: "
                              f"{self.max_queue * 1000:g} ms)")  # type: ignore[operator]  # fmt: skip
            return
        self._admitted = self.monitor.due
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            return
        self.in_flight += 1
        metrics.IN_FLIGHT.set(self.in_flight)
        try:
            if declared is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                buffered = await self._buffered(receive)  # a chunked body: read it, bounded, first
                if buffered is None:
                    await _too_large(send, self.max_body_bytes)
                    return
                receive = buffered
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.set(self.in_flight)

    def _behind(self) -> float | None:
        """How far the event loop is behind when this request should be shed, else None."""
        if self._restart() or self.max_queue is None:
            return None
        busy = asyncio.get_running_loop().time() - (self.monitor.due - TICK)  # since the watcher last ran
        if not self.dropping:
            # The watcher itself may be stuck behind a long stretch of work: overdue all INTERVAL long.
            if busy - TICK - self.max_queue < INTERVAL:
                return None
            # ... unless other processes held the CPU meanwhile: that is a busy machine, not a queue of
            # requests this server made for itself (a lone client's request would be refused for nothing).
            if busy - self.monitor.waited_since_timer() - TICK - self.max_queue < INTERVAL:
                return None
            self._drop(True, busy)
        # Overloaded: admit work only until the loop has run max_queue since the watcher last ran, so
        # every turn of the loop admits a bounded amount and answers the rest at once; but the first
        # request since the watcher last ran is always admitted. A loop that was busy without having
        # admitted anything (start-up work, a stall) has no queue of requests to relieve: refusing the
        # one request that arrives then (a lone client's, say) would relieve nothing.
        if busy > self.max_queue and self._admitted == self.monitor.due:
            return max(self.lag, busy)
        return None

    def _restart(self) -> bool:
        """Measure the running loop (a first request without a lifespan, a new loop in tests); True when
        the measurements just started."""
        if not self.monitor.ensure_started():
            return False
        self._above, self._below, self.dropping = None, None, False
        return True

    def _measured(self, lag: float, now: float) -> None:
        if self.max_queue is None:
            return
        target = self.max_queue
        # What the server did to itself: the lag less the time other processes held the CPU. A machine
        # starved by others delays the loop too, but refusing requests would not give the CPU back, and it
        # would refuse a lone client whose requests queue behind nothing.
        lag = self.monitor.blocked
        if lag > target:
            self._below = None
            if self._above is None:
                self._above, self._peak = self.monitor.due + target, 0.0
            self._peak = max(self._peak, lag)
            # Overload is a queue that builds: over the target for a whole INTERVAL, and an INTERVAL behind
            # at least once in that time. A slow stretch (requests costing twice as much for a tenth of a
            # second while another process thrashes the caches, a model loading) leaves a queue of a few
            # tens of ms that the loop works off by itself; refusing requests then fails them for nothing.
            # At real overload the lag grows with the excess (a second a second at twice capacity), so it
            # passes an INTERVAL within the INTERVAL anyway.
            if now - self._above >= INTERVAL and self._peak >= INTERVAL and not self.dropping:
                self._drop(True, self._peak)
        else:
            self._above = None
            if lag > target / 2:
                self._below = None
            elif self._below is None:
                self._below = now
            # Leave only once well under the target for a whole INTERVAL: a single short turn while
            # dropping (a turn of cheap refusals) is not the end of the overload.
            if self._below is not None and now - self._below >= INTERVAL and self.dropping:
                self._drop(False)

    def _drop(self, on: bool, lag: float = 0.0) -> None:
        """Start or end dropping, with a line in the server's log for each: when a server sheds, and how
        much, is what its operator needs to see beside the 503s."""
        self.dropping = on
        now = asyncio.get_running_loop().time()
        if on:
            self._dropped_at, self.refused = now, 0
            log.warning("overloaded: the event loop is %.0f ms behind (serving.max_queue_ms: %g); refusing "
                        "what arrives past that much work per turn of the loop, until it catches up",
                        lag * 1000, self.max_queue * 1000)  # type: ignore[operator]  # fmt: skip
        else:
            log.warning("caught up after %.0f ms of shedding: %d requests refused",
                        (now - self._dropped_at) * 1000, self.refused)  # fmt: skip

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


async def _shed(send: Send, why: str) -> None:
    metrics.SHED.inc()
    await _reply(send, 503, {"error": "Overloaded", "message": (
        f"The server is {why}; retry shortly (or add workers: mloop serve --workers N)."
    )}, {"retry-after": "1"})  # fmt: skip


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

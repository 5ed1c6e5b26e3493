"""The rate limiter seam: one budget of requests per key, taken one request at a time."""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    """Where the budgets live: in this process (:class:`~mloop.serving.ratelimit.memory.MemoryRateLimiter`)
    or in a server every replica shares (:class:`~mloop.serving.ratelimit.redis.RedisRateLimiter`).

    >>> limiter.take("key-a", rate=100.0, burst=200.0)   # 0.0: admitted; else seconds until one passes
    0.0
    """

    def take(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        """Take one request from ``key``'s budget (``rate`` a second, up to ``burst`` at once): 0.0 when
        admitted, else the seconds until a request would be. ``now`` (monotonic seconds) is a clock for
        tests; a backend with its own clock (Redis's) ignores it."""
        ...

    def close(self) -> None: ...

"""Rate limit budgets: in this process (default) or in Redis, shared by every replica.

The backend is chosen by ``serving.rate_limit_url``'s scheme from one table; none keeps the budgets in
each server process.

>>> limiter = open_rate_limiter(None)                                # per process
>>> limiter = open_rate_limiter("redis://127.0.0.1:6379/0?prefix=fraud:")
"""

from __future__ import annotations

from mloop.plugins import Plugins
from mloop.serving.ratelimit.base import RateLimiter
from mloop.serving.ratelimit.memory import MemoryRateLimiter

BACKENDS = Plugins(
    "rate limiter",
    {
        "memory": "mloop.serving.ratelimit.memory:MemoryRateLimiter",
        "redis": "mloop.serving.ratelimit.redis:RedisRateLimiter [redis]",
        "rediss": "mloop.serving.ratelimit.redis:RedisRateLimiter [redis]",
    },
    unknown="serving.rate_limit_url {url!r}: unknown backend {name!r}. Use redis://host:6379/0 (rediss:// "
    "for TLS), or leave it unset for per-process limits.",
)


def open_rate_limiter(url: str | None) -> RateLimiter:
    """The limiter at ``url``: ``redis://host:port/db`` or ``rediss://`` (``?prefix=name:`` namespaces the
    keys, default ``mloop:``); None or ``memory://`` for buckets in this process."""
    if not url:
        return MemoryRateLimiter()
    scheme = url.split("://", 1)[0].lower() if "://" in url else url
    limiter: RateLimiter = BACKENDS.load(scheme, url=url.split("@")[-1]).from_url(url)
    return limiter


__all__ = ["BACKENDS", "MemoryRateLimiter", "RateLimiter", "open_rate_limiter"]

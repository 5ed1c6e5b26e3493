"""Rate limits kept in this process: a token bucket per key (the embedded default).

With several replicas behind a load balancer each has its own buckets, so a key gets up to N times its
rate in all; ``serving.rate_limit_url: redis://...`` shares one budget instead
(:mod:`mloop.serving.ratelimit.redis`).
"""

from __future__ import annotations

import threading
import time

MAX_KEYS = 100_000  # keys seen long ago are full buckets again anyway: forgetting them loses nothing


class MemoryRateLimiter:
    """Token buckets per key; thread-safe, the state a dict of small lists (one per key seen).

    >>> limiter = MemoryRateLimiter()
    >>> limiter.take("k", rate=10, burst=1, now=0.0), limiter.take("k", rate=10, burst=1, now=0.0)
    (0.0, 0.1)
    """

    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill (monotonic)]
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> MemoryRateLimiter:
        return cls()

    def take(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) > MAX_KEYS:
                    self._buckets.clear()
                bucket = self._buckets[key] = [burst, now]
            tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
        return (1.0 - tokens) / rate

    def close(self) -> None:
        self._buckets.clear()

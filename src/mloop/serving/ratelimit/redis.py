"""Rate limits shared by every replica: one budget per key in a Redis server (needs ``mloop[redis]``).

Each check is one atomic Lua script (GCRA, the generic cell rate algorithm: a token bucket stored as a
single number, the key's *theoretical arrival time*), so N replicas taking from one key never admit more
than one bucket allows, whichever replica a request reaches. The clock is Redis's own (``TIME`` inside
the script), so replicas on hosts whose clocks disagree still share one budget. One round trip per
request: about 0.1 ms on loopback, a few tenths of a millisecond across a network.

When Redis does not answer (within :data:`TIMEOUT`), the check *fails open to the local bucket*: this
replica limits the key with an in-process bucket of the same rate, so a key gets at most N times its
rate across N replicas until Redis is back (never unlimited, and never refused because Redis is down;
docs/decisions.md, "Rate limits in Redis fail open to per-replica buckets"). Each such check counts in
``mloop_rate_limit_fallback_total`` and a warning is logged at most every 10 s; Redis is tried again
after :data:`RETRY_SECONDS`.

Keys: ``{prefix}rl:{key}`` (the key is already a hash of the API key), default prefix ``mloop:``, set with
``?prefix=name:`` on the URL; each expires once its bucket would be full again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from mloop._redis import redact, split_prefix
from mloop.errors import BackendNotInstalled
from mloop.serving import metrics
from mloop.serving.ratelimit.memory import MemoryRateLimiter

log = logging.getLogger("mloop.serving")

TIMEOUT = 0.1  # seconds a check waits for Redis before it falls back to the local bucket
RETRY_SECONDS = 1.0  # after a failure, checks use the local bucket this long before Redis is tried again
WARN_SECONDS = 10.0

# KEYS[1]: the key's arrival time (µs). ARGV: µs per request (1/rate), tolerance (µs: (burst - 1)/rate).
# Answers 0 when admitted, else the µs until a request would be.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait > 0 then return math.ceil(wait) end
local after = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1)
return 0
"""


class RedisRateLimiter:
    """Budgets per key in Redis, shared by every process that uses the same server and prefix.

    >>> limiter = RedisRateLimiter("redis://127.0.0.1:6379/0")           # or ...?prefix=myproject:
    >>> limiter.take("key-a", rate=100.0, burst=200.0)
    0.0
    """

    def __init__(self, url: str, *, prefix: str | None = None, timeout: float = TIMEOUT) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise BackendNotInstalled(
                f"serving.rate_limit_url {redact(url)!r} needs the redis client: pip install "
                "'mloop[redis]', or leave rate_limit_url unset for per-process limits."
            ) from None
        client_url, self.prefix = split_prefix(url, prefix)
        self.url = redact(url)
        # No retries and short timeouts: a check that waits for a dead server delays every request.
        self._client = redis.Redis.from_url(client_url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))  # fmt: skip
        self._take = self._client.register_script(_TAKE)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._local = MemoryRateLimiter()  # while Redis does not answer
        self._down_until = 0.0  # monotonic: until then, checks use the local bucket
        self._warned = -WARN_SECONDS
        self._lock = threading.Lock()
        try:
            self._client.ping()
        except self._errors as exc:  # start anyway: serving must not depend on the limiter's server
            self._failed(exc)

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        return cls(url)

    def take(self, key: str, rate: float, burst: float, now: float | None = None) -> float:
        clock = time.monotonic()
        if clock >= self._down_until:
            interval = 1_000_000 / rate
            try:
                wait: Any = self._take(
                    keys=[f"{self.prefix}rl:{key}"], args=[interval, (burst - 1) * interval]
                )
                return int(wait) / 1_000_000
            except self._errors as exc:
                self._failed(exc)
        metrics.RATE_LIMIT_FALLBACK.inc()
        return self._local.take(key, rate, burst, now)

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._down_until = now + RETRY_SECONDS
            warn = now - self._warned >= WARN_SECONDS
            if warn:
                self._warned = now
        if warn:
            log.warning(
                "rate limits: Redis at %s does not answer (%s); each replica limits keys on its own until it "
                "does (check the server, or serving.rate_limit_url)",
                self.url,
                str(exc) or type(exc).__name__,
            )

    def close(self) -> None:
        self._client.close()

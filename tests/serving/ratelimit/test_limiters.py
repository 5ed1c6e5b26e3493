"""The rate limiter seam, one conformance suite over both backends (this process's buckets and a real
Redis), then what only a shared limiter does: replicas taking from one budget, and Redis going away."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from mloop.errors import BackendNotInstalled, ConfigError
from mloop.serving import metrics
from mloop.serving.ratelimit import MemoryRateLimiter, RateLimiter, open_rate_limiter
from mloop.serving.ratelimit.redis import RedisRateLimiter
from tests.services import free_port


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    opened = open_rate_limiter(None if request.param == "memory" else request.getfixturevalue("redis_url"))
    try:
        yield opened
    finally:
        opened.close()


def test_a_budget_admits_its_burst_then_answers_the_wait(limiter: RateLimiter) -> None:
    assert [limiter.take("k", rate=20, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k", rate=20, burst=3)
    assert 0 < wait <= 0.05  # one request's worth of the rate, at most
    assert limiter.take("other", rate=20, burst=3) == 0.0  # each key has its own budget
    time.sleep(wait + 0.01)
    assert limiter.take("k", rate=20, burst=3) == 0.0  # refilled
    assert limiter.take("k", rate=20, burst=3) > 0


def test_a_budget_refills_at_the_rate_only(limiter: RateLimiter) -> None:
    admitted, start = 0, time.monotonic()
    while time.monotonic() - start < 0.3:
        admitted += limiter.take("k", rate=50, burst=5) == 0.0
    elapsed = time.monotonic() - start
    assert 5 + 50 * 0.25 <= admitted <= 5 + 50 * elapsed + 1


@pytest.mark.redis
def test_two_replicas_share_one_budget_per_key(redis_url: str) -> None:
    first, second = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    try:
        taken = [first.take("k", rate=0.01, burst=5) for _ in range(3)]
        taken += [second.take("k", rate=0.01, burst=5) for _ in range(2)]
        assert taken == [0.0] * 5
        assert second.take("k", rate=0.01, burst=5) > 0 and first.take("k", rate=0.01, burst=5) > 0
        # The clock is Redis's: both see the same wait (about one request at 0.01/s: 100 s).
        assert 99 < first.take("k", rate=0.01, burst=5) <= 100
    finally:
        first.close()
        second.close()


@pytest.mark.redis
def test_concurrent_replicas_never_admit_more_than_one_bucket(redis_url: str) -> None:
    limiters = [RedisRateLimiter(redis_url) for _ in range(4)]  # four replicas, one connection each
    admitted = [0] * len(limiters)
    start = time.monotonic()

    def hammer(i: int) -> None:
        for _ in range(150):
            admitted[i] += limiters[i].take("shared", rate=10, burst=20) == 0.0

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(limiters))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    for one in limiters:
        one.close()
    assert 20 <= sum(admitted) <= 20 + 10 * elapsed + 1  # per-process buckets would admit 80 at once


@pytest.mark.redis
def test_redis_down_falls_back_to_this_replicas_own_bucket(caplog: pytest.LogCaptureFixture) -> None:
    before = metrics.RATE_LIMIT_FALLBACK._value.get()
    with caplog.at_level(logging.WARNING, logger="mloop.serving"):
        down = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        assert "does not answer" in caplog.text and "rate_limit_url" in caplog.text
        # Still limited, by this process: the burst passes, the next request waits.
        assert [down.take("k", rate=1, burst=2) for _ in range(2)] == [0.0, 0.0]
        assert down.take("k", rate=1, burst=2) > 0
        assert metrics.RATE_LIMIT_FALLBACK._value.get() - before == 3
    finally:
        down.close()


@pytest.mark.redis
def test_a_replica_uses_redis_again_once_it_answers(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.serving.ratelimit import redis as module

    monkeypatch.setattr(module, "RETRY_SECONDS", 0.05)
    limiter, other = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    try:
        limiter._failed(ConnectionError("as if Redis had gone for a moment"))
        assert limiter.take("k", rate=0.01, burst=1) == 0.0  # the local bucket
        time.sleep(0.06)
        assert limiter.take("k", rate=0.01, burst=1) == 0.0  # Redis again: its budget was untouched
        assert other.take("k", rate=0.01, burst=1) > 0  # and now it is shared
    finally:
        limiter.close()
        other.close()


def test_the_url_picks_the_backend_and_an_unknown_one_lists_the_choices() -> None:
    assert isinstance(open_rate_limiter(None), MemoryRateLimiter)
    assert isinstance(open_rate_limiter("memory://"), MemoryRateLimiter)
    with pytest.raises(ConfigError, match="unknown backend 'memcached'.*redis://"):
        open_rate_limiter("memcached://cache:11211")


def test_without_the_redis_client_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_redis(name: str, *args: object, **kwargs: object) -> object:
        if name == "redis" or name.startswith("redis."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_redis)
    with pytest.raises(BackendNotInstalled, match=r"mloop\[redis\]") as raised:
        RedisRateLimiter("redis://:secret@127.0.0.1:6379/0")
    assert "secret" not in str(raised.value)

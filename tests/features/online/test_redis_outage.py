"""The Redis online store during an outage: a read fails within its timeout with the error that names
the store and the fix; the reads after it fail at once (no request waits out a timeout on the server's
event loop) until a background probe finds Redis answering; then they read again (no stuck pool)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from mloop.errors import OnlineStoreUnavailable
from mloop.features.online import OnlineRow, open_online_store
from mloop.features.online.redis import RedisOnlineStore
from tests.services import RedisServer

pytestmark = pytest.mark.redis
ROW = OnlineRow("42", event_ts=1, created_ts=1, values={"spend": 3.5})


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A Redis of this test's own: it is paused and stopped here."""
    pytest.importorskip("redis")
    own = RedisServer().start()
    try:
        yield own
    finally:
        own.stop()


def read_from_threads(store: RedisOnlineStore, threads: int = 4) -> list[BaseException | float]:
    """One read per thread at once (each on a pooled connection of its own): the error or the value."""
    out: list[BaseException | float] = []

    def read() -> None:
        try:
            found = store.read([("stats", "42")]).rows[0]
            out.append(found.values["spend"] if found is not None else float("nan"))  # type: ignore[index]
        except BaseException as exc:
            out.append(exc)

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    return out


def test_a_paused_redis_fails_one_read_within_the_timeout_and_the_next_at_once(server: RedisServer) -> None:
    store = open_online_store(server.url(), timeout=1.0)
    assert isinstance(store, RedisOnlineStore)
    try:
        store.write("stats", [ROW])
        os.kill(server.process.pid, signal.SIGSTOP)  # type: ignore[union-attr]  # connects, never answers
        try:
            started = time.perf_counter()
            with pytest.raises(
                OnlineStoreUnavailable, match=r"cannot reach Redis within 1000 ms.*online_timeout_ms"
            ):
                store.read([("stats", "42")])
            took = time.perf_counter() - started
            started = time.perf_counter()
            with pytest.raises(OnlineStoreUnavailable, match="cannot reach Redis"):
                store.read([("stats", "42")])
            second = time.perf_counter() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        assert took < 5.0, f"a read waited {took:.2f} s for a paused Redis (timeout 1 s)"  # redis-py: forever
        assert second < 0.5, f"the next read waited {second:.2f} s: it must fail at once (timeout 1 s)"
        assert _read_again(store) < 5.0
    finally:
        store.close()


def test_reads_recover_after_a_restart(server: RedisServer) -> None:
    store = open_online_store(server.url(), timeout=0.2)
    assert isinstance(store, RedisOnlineStore)
    try:
        store.write("stats", [ROW])
        assert read_from_threads(store) == [3.5] * 4  # four pooled connections, all dead after the restart
        assert server.command("SAVE") == b"+OK\r\n"
        server.stop(remove=False)
        started = time.perf_counter()
        failed = read_from_threads(store)
        assert all(isinstance(e, OnlineStoreUnavailable) for e in failed), failed
        assert time.perf_counter() - started < 1.0  # refused at once: nothing waits out a timeout
        server.start()
        print(f"\nread again {_read_again(store):.2f} s after Redis answered")
        assert read_from_threads(store) == [3.5] * 4  # every pooled connection reconnected
    finally:
        store.close()


def _read_again(store: RedisOnlineStore, bound: float = 10.0) -> float:
    """Seconds until a read succeeds (the background probe's PING ends fail-fast); fails past ``bound``."""
    started = time.perf_counter()
    while time.perf_counter() - started < bound:
        try:
            assert store.read([("stats", "42")]).rows[0] == ROW
            return time.perf_counter() - started
        except OnlineStoreUnavailable:
            time.sleep(0.02)
    raise AssertionError(f"reads did not resume within {bound} s of Redis answering")


def test_an_unreachable_redis_at_open_is_unavailable_not_misconfigured() -> None:
    from tests.services import free_port

    pytest.importorskip("redis")
    started = time.perf_counter()
    with pytest.raises(OnlineStoreUnavailable, match="Start Redis or fix online_url"):
        open_online_store(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    assert time.perf_counter() - started < 1.0

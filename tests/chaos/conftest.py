"""Fixtures the chaos scenarios share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import RedisServer


@pytest.fixture(scope="module")
def redis_own() -> Iterator[RedisServer]:
    """A Redis of the module's own: its scenario stops or pauses it, which the session's server must never be."""
    pytest.importorskip("redis")
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.stop()

"""A metadata server that cannot be reached: a transaction waits for it with back-off up to the retry
window, then fails with an error that names the store and what to do; a request's path does not wait; an
embedded SQLite store's errors are raised as they are. (tests/chaos/test_postgres_restart.py restarts a
real server under load.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from mloop.errors import MetadataUnavailable
from mloop.store import open_metadata_store
from tests.services import free_port


@pytest.fixture
def unreachable() -> object:
    pytest.importorskip("psycopg")
    # nothing listens on a fresh free port: each connection attempt is refused at once
    store = open_metadata_store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", migrate=False)
    yield store
    store.close()


def test_a_write_retries_for_the_window_then_says_what_to_do(unreachable) -> None:  # type: ignore[no-untyped-def]
    unreachable.retry_seconds = 0.6
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable) as caught, unreachable.write() as session:
        session.execute(text("SELECT 1"))
    waited = time.monotonic() - started
    assert waited >= 0.6
    message = str(caught.value)
    assert "127.0.0.1" in message and "could not be reached" in message
    assert "metadata_retry_seconds" in message and "Nothing was read or written" in message


def test_a_read_that_must_not_wait_fails_at_once(unreachable) -> None:  # type: ignore[no-untyped-def]
    unreachable.retry_seconds = 30.0
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable), unreachable.read(wait=False):
        pass
    assert time.monotonic() - started < 10  # no retry window: one refused connection (generous bound)


def test_the_window_comes_from_the_project_settings(tmp_path: Path) -> None:
    from mloop.config.settings import Settings

    assert Settings().metadata_retry_seconds == 30.0
    with pytest.raises(ValueError, match="metadata_retry_seconds"):
        Settings(metadata_retry_seconds=-1)


def test_a_database_that_does_not_exist_is_not_waited_for(postgres_server) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    store = open_metadata_store(
        f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/no_such_db", migrate=False
    )
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="no_such_db"), store.read():
            pass
        assert time.monotonic() - started < 10  # the 30 s window is for a server restarting, not a typo
    finally:
        store.close()


def test_embedded_sqlite_never_waits(tmp_path: Path) -> None:
    """A SQLite error (a locked or unreadable file) is not a server restarting: no window to wait out."""
    store = open_metadata_store(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        assert store.retry_seconds == 0
    finally:
        store.close()

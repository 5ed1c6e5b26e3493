"""The embedded metadata store: SQLite in WAL mode, one file in the project's ``.mloop/`` folder."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from mloop.store.base import MetadataStore


class SqliteMetadataStore(MetadataStore):
    backend = "sqlite"

    @classmethod
    def from_url(cls, url: str) -> SqliteMetadataStore:
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return cls(_engine(url))


def _engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction starts (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # LIKE matches case as on PostgreSQL, so filters answer the same on both backends.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so two processes never both read the audit head and then
        # collide on commit; readers start deferred and, in WAL mode, never wait for a writer.
        mode = "IMMEDIATE" if conn.get_execution_options().get("mloop_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _use_wal(cursor: Any, wait: float = 30.0) -> None:
    """Switch the database file to WAL mode (it stays so), retrying while another process holds a lock.

    SQLite answers "database is locked" at once, without waiting out busy_timeout, when two processes
    open a new database at the same moment and both try to switch it.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)

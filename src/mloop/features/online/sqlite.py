"""The embedded online store: one SQLite file in WAL mode, no server.

Two tables:

- ``online_rows(view, key, event_ts, created_ts, value)``, primary key ``(view, key)``. A rowid table, not
  ``WITHOUT ROWID``: a row of 50 values is over 1 KB of JSON, which a ``WITHOUT ROWID`` leaf on 4 KiB pages
  spills to an overflow page (measured 4x slower lookups); a rowid leaf holds up to 4 KB inline. The
  forward-only rule is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` in SQL, so concurrent
  writers (threads or processes) can never move a key backwards.
- ``online_events(view, key, event_ts, event_id, value)``, ``WITHOUT ROWID`` (events are small), clustered
  on ``(view, key, event_ts, event_id)`` so a range read ``event_ts > since`` is one contiguous scan in time
  order; a unique index on ``(view, key, event_id)`` makes adding idempotent.

Each thread gets its own connection, kept open: readers never wait on each other or on the writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mloop.errors import ConfigError
from mloop.features.online.base import OnlineEvent, OnlineRead, OnlineRow, decode, encode, newest_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    view TEXT NOT NULL, key TEXT NOT NULL, event_ts INTEGER NOT NULL, created_ts INTEGER NOT NULL,
    value TEXT NOT NULL, PRIMARY KEY (view, key)
);
CREATE TABLE IF NOT EXISTS online_events (
    view TEXT NOT NULL, key TEXT NOT NULL, event_ts INTEGER NOT NULL, event_id TEXT NOT NULL,
    value TEXT NOT NULL, PRIMARY KEY (view, key, event_ts, event_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS online_events_id ON online_events (view, key, event_id);
"""

_UPSERT = """
INSERT INTO online_rows (view, key, event_ts, created_ts, value) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET
    event_ts = excluded.event_ts, created_ts = excluded.created_ts, value = excluded.value
WHERE excluded.event_ts > online_rows.event_ts
   OR (excluded.event_ts = online_rows.event_ts AND excluded.created_ts >= online_rows.created_ts)
"""
_ADD_EVENT = (
    "INSERT OR IGNORE INTO online_events (view, key, event_ts, event_id, value) VALUES (?, ?, ?, ?, ?)"
)
_ONE_ROW = "SELECT event_ts, created_ts, value FROM online_rows WHERE view = ? AND key = ?"
_ONE_RANGE = (
    "SELECT event_ts, event_id, value FROM online_events WHERE view = ? AND key = ? AND event_ts > ? "
    "ORDER BY event_ts, event_id"
)
# Row values and CTEs keep any number of lookups to one statement; CROSS JOIN makes the (small) list of
# requests the outer loop, so each request is one index descent.
_MANY_ROWS = (
    "WITH q(view, key) AS (VALUES {values}) SELECT t.view, t.key, t.event_ts, t.created_ts, t.value "
    "FROM q CROSS JOIN online_rows AS t ON t.view = q.view AND t.key = q.key"
)
_MANY_RANGES = (
    "WITH q(i, view, key, since) AS (VALUES {values}) SELECT q.i, e.event_ts, e.event_id, e.value "
    "FROM q CROSS JOIN online_events AS e ON e.view = q.view AND e.key = q.key AND e.event_ts > q.since"
)
_CHUNK = 400  # lookups per statement: well under SQLite's limit on bound parameters


def _event_order(event: OnlineEvent) -> tuple[int, str]:
    return event.event_ts, event.event_id


class SqliteOnlineStore:
    """The default online store, in one SQLite file.

    >>> store = SqliteOnlineStore(".mloop/online.db")
    >>> store.write("customer_stats", [OnlineRow("42", event_ts=1, created_ts=1, values={"spend": 3.5})])
    1
    >>> store.read([("customer_stats", "42")]).rows[0].values
    {'spend': 3.5}
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        if str(path) in ("", ":memory:"):
            raise ConfigError(
                f"online store path {str(path)!r}: the SQLite online store needs a file (it is shared "
                "between threads and processes), e.g. .mloop/online.db."
            )
        self.path = Path(path).expanduser().resolve()
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn().executescript(_SCHEMA)

    @classmethod
    def from_url(cls, url: str, *, timeout: float | None = None) -> SqliteOnlineStore:
        """``sqlite:///relative/online.db``, ``sqlite:////absolute/online.db`` or a plain path.
        ``timeout`` (online_timeout_ms) is for network stores: a local file has no outage to bound."""
        if url.startswith("sqlite:///"):
            return cls(url[len("sqlite:///") :])
        if url.startswith("sqlite:"):
            raise ConfigError(
                f"online_url {url!r}: write sqlite:///relative/path or sqlite:////absolute/path."
            )
        return cls(url)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the online store {self.url} is closed")
            # Autocommit mode: transactions are explicit, so a read holds no lock after it returns.
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            _wal(conn, self.timeout)
            conn.execute("PRAGMA synchronous=NORMAL")  # an online store can be re-materialized
            # Up to 64 MiB of page cache, so a materialization batch does not spill to the WAL mid-transaction.
            conn.execute("PRAGMA cache_size=-65536")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        params = [(view, r.key, r.event_ts, r.created_ts, encode(r.values)) for r in newest_rows(rows)]
        if not params:
            return 0
        return self._write_many(_UPSERT, params)

    def add_events(self, view: str, events: Sequence[OnlineEvent]) -> int:
        params = [(view, e.key, e.event_ts, e.event_id, encode(e.values)) for e in events]
        if not params:
            return 0
        return self._write_many(_ADD_EVENT, params)

    def _write_many(self, sql: str, params: Sequence[tuple[object, ...]]) -> int:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # rowcount sums the changes: a row the WHERE kept back, or an ignored event, counts 0.
            changed = conn.executemany(sql, params).rowcount
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return changed

    def read(
        self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]] = ()
    ) -> OnlineRead:
        conn = self._conn()
        if len(rows) == 1 and not events:  # the serving hot path: one statement, no transaction
            view, key = rows[0]
            found = conn.execute(_ONE_ROW, (view, key)).fetchone()
            return OnlineRead(rows=[OnlineRow(key, found[0], found[1], decode(found[2])) if found else None])
        # Several statements read one snapshot inside one transaction.
        explicit = -(-len(rows) // _CHUNK) + -(-len(events) // _CHUNK) > 1
        if explicit:
            conn.execute("BEGIN")
        try:
            return OnlineRead(rows=self._read_rows(conn, rows), events=self._read_events(conn, events))
        finally:
            if explicit:
                conn.execute("COMMIT")

    def _read_rows(
        self, conn: sqlite3.Connection, wanted: Sequence[tuple[str, str]]
    ) -> list[OnlineRow | None]:
        found: dict[tuple[str, str], OnlineRow] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            sql = _MANY_ROWS.format(values=",".join(["(?,?)"] * len(chunk)))
            flat = [part for pair in chunk for part in pair]
            for view, key, event_ts, created_ts, value in conn.execute(sql, flat):
                found[view, key] = OnlineRow(key, event_ts, created_ts, decode(value))
        return [found.get((view, key)) for view, key in wanted]

    def _read_events(
        self, conn: sqlite3.Connection, wanted: Sequence[tuple[str, str, int]]
    ) -> list[list[OnlineEvent]]:
        out: list[list[OnlineEvent]] = [[] for _ in wanted]
        if len(wanted) == 1:
            _, key, _ = wanted[0]
            out[0] = [
                OnlineEvent(key, ts, eid, decode(v)) for ts, eid, v in conn.execute(_ONE_RANGE, wanted[0])
            ]
            return out
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            sql = _MANY_RANGES.format(values=",".join(["(?,?,?,?)"] * len(chunk)))
            flat = [part for i, triple in enumerate(chunk, start) for part in (i, *triple)]
            for i, event_ts, event_id, value in conn.execute(sql, flat):
                out[i].append(OnlineEvent(wanted[i][1], event_ts, event_id, decode(value)))
        for found in out:  # each range comes in primary-key order already; this only guarantees it
            found.sort(key=_event_order)
        return out

    def trim(self, view: str, before: int) -> int:
        return self._write_many(
            "DELETE FROM online_events WHERE view = ? AND event_ts <= ?", [(view, before)]
        )

    def drop(self, view: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM online_rows WHERE view = ?", (view,))
            conn.execute("DELETE FROM online_events WHERE view = ?", (view,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def delete(self, view: str, keys: Sequence[str]) -> int:
        conn = self._conn()
        held = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key in dict.fromkeys(keys):
                rows = conn.execute(
                    "DELETE FROM online_rows WHERE view = ? AND key = ?", (view, key)
                ).rowcount
                events = conn.execute(
                    "DELETE FROM online_events WHERE view = ? AND key = ?", (view, key)
                ).rowcount
                held += bool(rows or events)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return held

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"


def _wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, waiting for the lock as any statement would. SQLite answers "database is locked" at
    once, without its busy handler, when another connection holds the lock while this one changes the
    journal mode: processes that open a new store together (materialization chunks on Ray workers) failed
    that way."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)

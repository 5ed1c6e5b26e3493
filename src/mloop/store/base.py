"""The metadata store: one SQL implementation shared by every backend.

Backends differ only in how the engine is made (``sqlite.py``, ``postgres.py``); everything else —
tables, migrations, transactions — is written once here, as Dagster does with its SQL storage.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mloop._time import utcnow
from mloop.errors import MetadataUnavailable
from mloop.store.schema import AuditHeadRow, ProjectRow

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration, read from the file names (``0010_model_indexes.py`` is revision "0010"), so that
# opening an up-to-date store needs no alembic: importing it cost every CLI command ~0.15 s (more on a busy
# machine). tests/store/test_conformance.py checks that this is alembic's own head.
log = logging.getLogger(__name__)
# A check every serialized write of this context runs inside its transaction, after the writers' lock:
# the loop's controller fences its actions with its lease (:meth:`MetadataStore.fenced`).
_FENCE: contextvars.ContextVar[Callable[[Session], None] | None] = contextvars.ContextVar(
    "fence", default=None
)
HEAD: str | None = max(  # None where the sources are not shipped: migrate() then asks alembic
    (p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py")), default=None
)


class MetadataStore:
    """Transactions over the metadata tables.

    >>> store = open_metadata_store("sqlite:///.mloop/mloop.db")   # doctest: +SKIP
    >>> with store.write() as session:                              # doctest: +SKIP
    ...     session.add(row)
    """

    backend = "sql"
    # How long a transaction waits for a server that cannot be reached (restarting, failing over) before it
    # raises MetadataUnavailable; 0 for an embedded store, whose errors are not transient. Set from
    # ``metadata_retry_seconds``.
    retry_seconds = 0.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(engine.execution_options(mloop_write=True), expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self, *, wait: bool = True) -> Iterator[Session]:
        """A session for reads. Closing it ends the transaction but keeps loaded rows usable. Waits for an
        unreachable server as :meth:`write` does; ``wait=False`` (a request's path, which must not hang)
        raises :class:`MetadataUnavailable` at once."""
        with self._connected(self._sessions, wait=wait) as session:
            yield session

    @contextlib.contextmanager
    def write(self, *, serialize: bool = True, wait: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.

        Writers are serialised (SQLite ``BEGIN IMMEDIATE``; the audit head row lock on PostgreSQL), so a
        mutation and its audit event always commit together, in one order. ``wait`` as for :meth:`read`.
        """
        with self._connected(self._writer, wait=wait) as session:
            # Take the writers' lock before the body runs, so a check-then-insert ("does this name exist?")
            # cannot race another writer. SQLite holds it from BEGIN IMMEDIATE already; on PostgreSQL
            # the audit head row is that lock.
            # ``serialize=False`` is for bookkeeping that no check depends on (key last-used times, metric
            # points), so it never queues behind mutations on PostgreSQL.
            if serialize:
                session.execute(select(AuditHeadRow.id).where(AuditHeadRow.id == 1).with_for_update())
                fence = _FENCE.get()
                if fence is not None:
                    fence(session)  # raises to roll the write back: the writer no longer holds its lease
            yield session
            session.commit()

    @contextlib.contextmanager
    def fenced(self, check: Callable[[Session], None]) -> Iterator[None]:
        """Within the block, every serialized write of this thread first runs ``check`` in its own
        transaction, under the writers' lock; ``check`` raises to refuse the write. The controller passes
        "do I still hold the lease?": a controller whose lease ran out (its database was down, it paused)
        cannot deploy after another has taken over, since taking the lease is a serialized write too."""
        token = _FENCE.set(check)
        try:
            yield
        finally:
            _FENCE.reset(token)

    @contextlib.contextmanager
    def _connected(self, sessions: sessionmaker[Session], *, wait: bool = True) -> Iterator[Session]:
        """A session whose transaction has begun on a live connection; rolled back if the block raises.

        The connection is checked out before the body runs (the pool pings it first), so a server that is
        down fails here, where nothing has been sent: retrying is safe. Waits with back-off (50 ms
        doubling to 1 s) up to :attr:`retry_seconds`, then raises :class:`MetadataUnavailable`."""
        started, delay, window = time.monotonic(), 0.05, self.retry_seconds if wait else 0.0
        while True:
            session = sessions()
            try:
                session.connection()  # autobegins the transaction the body runs in
                break
            except OperationalError as exc:
                session.close()
                if not self.retry_seconds or not _transient(exc):  # a locked file, a wrong password: at once
                    raise
                waited = time.monotonic() - started
                if waited >= window:
                    raise self._unreachable(exc, waited) from exc
                if delay == 0.05:
                    log.warning("metadata store %s unreachable; retrying for up to %.0f s: %s",
                                self.url, window, exc.orig)  # fmt: skip
                time.sleep(min(delay, window - waited))
                delay = min(delay * 2, 1.0)
        with session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise

    def _unreachable(self, exc: OperationalError, waited: float) -> MetadataUnavailable:
        return MetadataUnavailable(
            f"The metadata store {self.url} could not be reached for {waited:.1f} s ({exc.orig}). Nothing "
            "was read or written. Start or fix the database server and run the command again; raise "
            "metadata_retry_seconds in mloop.yaml to wait longer across restarts."
        )

    # ---- schema ---------------------------------------------------------------------------------------

    def alembic_config(self) -> Config:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        return config

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def migrate(self) -> None:
        """Bring the tables to the newest migration (a no-op when they are there already)."""
        if HEAD is not None and self._stored_revision() == HEAD:
            return
        from alembic import command

        if self.current_revision() != self.head_revision():
            command.upgrade(self.alembic_config(), "head")

    def _stored_revision(self) -> str | None:
        """The revision in ``alembic_version``, read without alembic; None for a new or odd store."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        return versions[0] if len(versions) == 1 else None

    def project_id(self, name: str) -> int:
        """The id of project ``name``, created on first use."""
        with self.read() as session:
            found = session.scalar(select(ProjectRow.id).where(ProjectRow.name == name))
        if found is not None:
            return found
        with self.write() as session:
            found = session.scalar(select(ProjectRow.id).where(ProjectRow.name == name))
            if found is None:
                row = ProjectRow(name=name, created_at=utcnow())
                session.add(row)
                session.flush()
                found = row.id
        return found

    def close(self) -> None:
        self.engine.dispose()


def _transient(exc: OperationalError) -> bool:
    """Whether a failed connection may succeed if tried again: no answer from the server (refused, timed out,
    cut), or the server's own "not now" (SQLSTATE class 08 connection, 57P operator intervention such as a
    shutdown or start-up in progress, 53 insufficient resources). A database that does not exist or a
    password the server refuses is not waited for. psycopg gives no SQLSTATE for a refused connection
    attempt, so there the server's FATAL message tells (PostgreSQL's own words, stable across versions)."""
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return str(code).startswith(("08", "57P", "53"))
    message = str(exc.orig)
    if "FATAL" not in message:
        return True  # the client's own failure: refused, timed out, closed
    return any(words in message for words in _NOT_NOW)


_NOT_NOW = ("shutting down", "starting up", "in recovery mode", "too many clients", "administrator command",
            "not yet accepting connections")  # fmt: skip

"""The metadata store: one SQL implementation shared by every backend.

Backends differ only in how the engine is made (``sqlite.py``, ``postgres.py``); everything else —
tables, migrations, transactions — is written once here, as Dagster does with its SQL storage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from mloop._time import utcnow
from mloop.store.schema import AuditHeadRow, ProjectRow

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration, read from the file names (``0010_model_indexes.py`` is revision "0010"), so that
# opening an up-to-date store needs no alembic: importing it cost every CLI command ~0.15 s (more on a busy
# machine). tests/store/test_conformance.py checks that this is alembic's own head.
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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(engine.execution_options(mloop_write=True), expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads. Closing it ends the transaction but keeps loaded rows usable."""
        with self._sessions() as session:
            yield session

    @contextlib.contextmanager
    def write(self, *, serialize: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.

        Writers are serialised (SQLite ``BEGIN IMMEDIATE``; the audit head row lock on PostgreSQL), so a
        mutation and its audit event always commit together, in one order.
        """
        with self._writer() as session, session.begin():
            # Take the writers' lock before the body runs, so a check-then-insert ("does this name exist?")
            # cannot race another writer. SQLite holds it from BEGIN IMMEDIATE already; on PostgreSQL
            # the audit head row is that lock.
            # ``serialize=False`` is for bookkeeping that no check depends on (key last-used times, metric
            # points), so it never queues behind mutations on PostgreSQL.
            if serialize:
                session.execute(select(AuditHeadRow.id).where(AuditHeadRow.id == 1).with_for_update())
            yield session

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

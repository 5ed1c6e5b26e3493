"""Alembic environment: mloop runs migrations programmatically with the store's own engine."""

from __future__ import annotations

from alembic import context

from mloop.store.schema import Base

config = context.config
engine = config.attributes["engine"]
# Any fixed number: the PostgreSQL advisory lock that migrations of an mloop database hold.
MIGRATION_LOCK = 0x6D6C6F6F70

# Migrate inside one writer's transaction, holding the writers' lock (SQLite: BEGIN IMMEDIATE) or the
# migration lock (PostgreSQL) before the current revision is read: processes that open a fresh store at
# the same moment then migrate it once, one after the other, instead of creating the same tables twice.
with engine.execution_options(mloop_write=True).connect() as connection, connection.begin():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()

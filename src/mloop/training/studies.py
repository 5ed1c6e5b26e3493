"""Where a search on Ray keeps its Optuna study: in the metadata database, beside mloop's tables.

>>> study_storage("postgresql+psycopg://mloop@db/mloop")     # doctest: +SKIP
<optuna.storages._rdb.storage.RDBStorage object ...>         # the tables in schema "optuna"

Optuna and mloop both version their tables with Alembic, and both name the version table
``alembic_version``: in one namespace Optuna would read mloop's revision as its own and refuse the
database (docs/decisions.md). So Optuna's tables live apart, in the same database:

- PostgreSQL: the schema ``optuna`` (created on first use), so every host that reaches the metadata
  database reaches the study;
- SQLite: the file beside the metadata database, ``<name>.optuna.db`` (one host, like SQLite itself);
- anything else, or an in-memory SQLite database: the study stays in memory, in the driver.

The driver alone asks and tells (trials run as tasks and return their scores), so the database sees
one writer per study; storing it makes the study outlive the process and lets anyone inspect it
(``optuna.load_study(study_name=..., storage=...)``, the name and storage are tags of the parent run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SCHEMA = "optuna"
STUDY_PREFIX = "mloop-"


def study_storage(metadata_url: str) -> Any:
    """An Optuna storage for studies kept with the metadata at ``metadata_url`` (None: in memory)."""
    import optuna

    url = make_url(metadata_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        path = Path(url.database)
        sibling = url.set(database=str(path.with_name(f"{path.stem}.optuna.db")))
        return optuna.storages.RDBStorage(sibling.render_as_string(hide_password=False))
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        finally:
            engine.dispose()
        return optuna.storages.RDBStorage(
            url.render_as_string(hide_password=False),
            engine_kwargs={"connect_args": {"options": f"-csearch_path={SCHEMA}"}},
        )
    return None


def describe(metadata_url: str) -> str:
    """Where :func:`study_storage` keeps studies, for a tag (no password)."""
    url = make_url(metadata_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return "memory"
        path = Path(url.database)
        return url.set(database=str(path.with_name(f"{path.stem}.optuna.db"))).render_as_string()
    if url.get_backend_name() == "postgresql":
        return f"{url.render_as_string()} (schema {SCHEMA})"
    return "memory"


__all__ = ["SCHEMA", "STUDY_PREFIX", "describe", "study_storage"]

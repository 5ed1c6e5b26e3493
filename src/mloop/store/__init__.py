"""Metadata store: experiments, runs, models, deployments, users, audit events (SQLAlchemy 2).

The backend is chosen by the URL's scheme from one table; unknown schemes list the choices.
"""

from __future__ import annotations

import importlib

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mloop.errors import ConfigError
from mloop.store.base import MetadataStore

BACKENDS = {
    "sqlite": "mloop.store.sqlite:SqliteMetadataStore",
    "postgresql": "mloop.store.postgres:PostgresMetadataStore",
    "postgres": "mloop.store.postgres:PostgresMetadataStore",
}


def open_metadata_store(url: str, *, migrate: bool = True) -> MetadataStore:
    """Open the store at ``url`` and bring its tables to the newest migration."""
    try:
        scheme = make_url(url).get_backend_name()
    except ArgumentError:
        scheme = url.split(":", 1)[0]
    if scheme not in BACKENDS:
        raise ConfigError(
            f"metadata_url {url.split('@')[-1]!r}: unknown backend {scheme!r}. "
            "Use sqlite:///path/to/mloop.db or postgresql+psycopg://user@host/db."
        )
    module, _, name = BACKENDS[scheme].partition(":")
    store: MetadataStore = getattr(importlib.import_module(module), name).from_url(url)
    if migrate:
        store.migrate()
    return store


__all__ = ["BACKENDS", "MetadataStore", "open_metadata_store"]

"""Metadata store: experiments, runs, models, deployments, users, audit events (SQLAlchemy 2).

The backend is chosen by the URL's scheme from one table; unknown schemes list the choices.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mloop.plugins import Plugins
from mloop.store.base import MetadataStore

BACKENDS = Plugins(
    "metadata store",
    {
        "sqlite": "mloop.store.sqlite:SqliteMetadataStore",
        "postgresql": "mloop.store.postgres:PostgresMetadataStore [postgres]",
        "postgres": "mloop.store.postgres:PostgresMetadataStore [postgres]",
    },
    unknown="metadata_url {url!r}: unknown backend {name!r}. "
    "Use sqlite:///path/to/mloop.db or postgresql+psycopg://user@host/db.",
)


def open_metadata_store(url: str, *, migrate: bool = True) -> MetadataStore:
    """Open the store at ``url`` and bring its tables to the newest migration."""
    try:
        scheme = make_url(url).get_backend_name()
    except ArgumentError:
        scheme = url.split(":", 1)[0]
    store: MetadataStore = BACKENDS.load(scheme, url=url.split("@")[-1]).from_url(url)
    if migrate:
        store.migrate()
    return store


__all__ = ["BACKENDS", "MetadataStore", "open_metadata_store"]

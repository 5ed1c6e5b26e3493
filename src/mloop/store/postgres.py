"""The team metadata store: PostgreSQL through psycopg 3."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mloop.errors import BackendNotInstalled
from mloop.store.base import MetadataStore


class PostgresMetadataStore(MetadataStore):
    backend = "postgresql"
    retry_seconds = 30.0  # a restart or a failover; metadata_retry_seconds in mloop.yaml changes it

    @classmethod
    def from_url(cls, url: str) -> PostgresMetadataStore:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise BackendNotInstalled(
                f"metadata_url '{make_url(url).render_as_string(hide_password=True)}' needs the psycopg "
                "client: pip install 'mloop[postgres]', or use the default sqlite:///.mloop/mloop.db."
            ) from None
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        # connect_timeout: a host that drops packets must fail a connection attempt, not hang it forever
        # (the retry window then decides how long to keep trying); a URL's own ?connect_timeout= wins.
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
        return cls(
            create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)
        )

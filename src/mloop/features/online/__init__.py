"""The online store: latest feature rows and window events by entity key, for serving.

The backend is chosen by the URL's scheme from one table; a plain path is a SQLite file.

>>> store = open_online_store(".mloop/online.db")                  # embedded default
>>> store = open_online_store("redis://127.0.0.1:6379/0?prefix=fraud:")
"""

from __future__ import annotations

import importlib

from mloop.errors import ConfigError
from mloop.features.online.base import (
    OnlineEvent,
    OnlineRead,
    OnlineRow,
    OnlineStore,
    decode,
    encode,
    entity_key,
)

BACKENDS = {
    "sqlite": "mloop.features.online.sqlite:SqliteOnlineStore",
    "redis": "mloop.features.online.redis:RedisOnlineStore",
    "rediss": "mloop.features.online.redis:RedisOnlineStore",
}


def open_online_store(url: str) -> OnlineStore:
    """Open the online store at ``url``: a path or ``sqlite:///path`` (SQLite), ``redis://host:port/db``
    or ``rediss://`` (Redis; ``?prefix=name:`` namespaces the keys, default ``mloop:``)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "sqlite"
    if scheme not in BACKENDS:
        raise ConfigError(
            f"online_url {url.split('@')[-1]!r}: unknown backend {scheme!r}. Use a SQLite file "
            "(.mloop/online.db or sqlite:///path/online.db) or redis://host:6379/0 (rediss:// for TLS)."
        )
    module, _, name = BACKENDS[scheme].partition(":")
    store: OnlineStore = getattr(importlib.import_module(module), name).from_url(url)
    return store


__all__ = [
    "BACKENDS",
    "OnlineEvent",
    "OnlineRead",
    "OnlineRow",
    "OnlineStore",
    "decode",
    "encode",
    "entity_key",
    "open_online_store",
]

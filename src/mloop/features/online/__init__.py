"""The online store: latest feature rows and window events by entity key, for serving.

The backend is chosen by the URL's scheme from one table; a plain path is a SQLite file.

>>> store = open_online_store(".mloop/online.db")                  # embedded default
>>> store = open_online_store("redis://127.0.0.1:6379/0?prefix=fraud:")
"""

from __future__ import annotations

from mloop.features.online.base import (
    OnlineEvent,
    OnlineRead,
    OnlineRow,
    OnlineStore,
    decode,
    encode,
    entity_key,
)
from mloop.plugins import Plugins

BACKENDS = Plugins(
    "online store",
    {
        "sqlite": "mloop.features.online.sqlite:SqliteOnlineStore",
        "redis": "mloop.features.online.redis:RedisOnlineStore [redis]",
        "rediss": "mloop.features.online.redis:RedisOnlineStore [redis]",
    },
    unknown="online_url {url!r}: unknown backend {name!r}. Use a SQLite file "
    "(.mloop/online.db or sqlite:///path/online.db) or redis://host:6379/0 (rediss:// for TLS).",
)


def open_online_store(url: str, *, timeout: float | None = None) -> OnlineStore:
    """Open the online store at ``url``: a path or ``sqlite:///path`` (SQLite), ``redis://host:port/db``
    or ``rediss://`` (Redis; ``?prefix=name:`` namespaces the keys, default ``mloop:``). ``timeout``:
    seconds a network store's read may take (the setting ``online_timeout_ms``)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "sqlite"
    store: OnlineStore = BACKENDS.load(scheme, url=url.split("@")[-1]).from_url(url, timeout=timeout)
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

"""What the two Redis users (the online store and the shared rate limiter) read from a ``redis://`` URL.

Both accept ``?prefix=name:`` for the keys they own, which the Redis client does not know, and both
name the URL in errors and ``repr`` without its password.

>>> split_prefix("redis://:pw@127.0.0.1:6379/0?prefix=shop:", None)
('redis://:pw@127.0.0.1:6379/0', 'shop:')
>>> redact("redis://:pw@127.0.0.1:6379/0")
'redis://:***@127.0.0.1:6379/0'
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_PREFIX = "mloop:"


def split_prefix(url: str, prefix: str | None) -> tuple[str, str]:
    """``(the URL for the Redis client, the key prefix)``: ``prefix`` when given, else the URL's last
    ``prefix=`` query value, else ``mloop:``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    given = [value for name, value in query if name == "prefix"]
    client_url = urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n != "prefix"])))
    return client_url, prefix if prefix is not None else (given[-1] if given else DEFAULT_PREFIX)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return url

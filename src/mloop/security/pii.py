"""Personal data: the keyed hash that stands for a PII value, and the mask that hides one.

A value tagged ``pii`` (a dataset column, a feature, an entity's join keys) is written to the prediction log
as ``pii:<32 hex>``, the first 128 bits of HMAC-SHA256 under the project's own secret key. Keyed, because
a plain SHA-256 of a customer id or a phone number is reversed by hashing every candidate (there are only
so many ids); deterministic, so the same customer hashes the same in every request, feedback still joins
on request ids, and erasure finds a subject's rows by the hash of the value it is given.

The key is 32 random bytes in ``.mloop/pii.key`` (``pii.key_file``), created 0600 on first use; every
process of the project (each server replica) must read the same file. Losing it does not lose data, but
new hashes no longer match old ones, so erasure would miss the older rows: back it up with the project.

>>> p = Pseudonymizer(b"k" * 32)
>>> p.token(42) == p.token("42") == p.token(42.0)
True
>>> p.token(42).startswith("pii:")
True
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from mloop.errors import ConfigError

MASK = "***"
PREFIX = "pii:"
KEY_BYTES = 32
Mode = Literal["hash", "mask", "keep"]


def canonical(value: Any) -> str:
    """The text a value is hashed and compared as: ``42``, ``42.0``, ``"42"`` and ``np.int64(42)`` are all
    ``"42"``, so a key typed on the command line finds the integer the server logged."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Pseudonymizer:
    """Keyed hashes of PII values under one project key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ConfigError(f"The PII key must hold at least {KEY_BYTES} bytes; it holds {len(key)}.")
        self._key = key

    @classmethod
    def from_file(cls, path: str | Path) -> Pseudonymizer:
        """The key in ``path``, created (32 random bytes, mode 0600) if there is none yet. Two processes
        creating it at once agree on one key: the file appears whole, by a hard link that fails if it exists."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                    os.link(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the PII key {path}: {exc}. Every process of the project needs to read it "
                "(copy it to each server with the same mode, 0600)."
            ) from None

    def token(self, value: Any) -> str:
        """``pii:`` and 32 hex digits: what the prediction log stores instead of ``value``."""
        return PREFIX + self.digest(value)[:32]

    def digest(self, value: Any) -> str:
        """The whole HMAC-SHA256 of ``value`` (hex): what an audit event records of an erased key."""
        return hmac.new(self._key, canonical(value).encode(), hashlib.sha256).hexdigest()

    def matches(self, stored: Any, value: Any) -> bool:
        """True when ``stored`` (a logged value, plain or hashed) is ``value``."""
        if stored is None:
            return False
        if isinstance(stored, str) and stored.startswith(PREFIX):
            return hmac.compare_digest(stored, self.token(value))
        return canonical(stored) == canonical(value)

    def protect(
        self, inputs: Mapping[str, list[Any]], names: Collection[str], mode: Mode
    ) -> dict[str, list[Any]]:
        """``inputs`` (columns) with each column in ``names`` hashed, masked or kept as ``mode`` says."""
        out = dict(inputs)
        if mode == "keep":
            return out
        for name in names:
            values = out.get(name)
            if values is None:
                continue
            if mode == "mask":
                out[name] = [None if v is None else MASK for v in values]
            else:
                out[name] = [None if v is None else self.token(v) for v in values]
        return out

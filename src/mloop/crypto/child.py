"""Handing the data keys to a child process of ours (the prediction log's compactor) through a pipe, as
one line: the child has no metadata store or master key of its own."""

from __future__ import annotations

import json

from mloop.crypto.keys import Keyring
from mloop.crypto.parquet import PLAIN, ParquetFiles


def to_line(parquet: ParquetFiles) -> str:
    """One line for the child's stdin: ``{}`` when encryption is off, else the active key id and the
    unwrapped keys in hex."""
    ring = parquet.keyring
    if ring is None:
        return "{}\n"
    keys = {key_id: key.hex() for key_id, key in ring.known().items()}
    return json.dumps({"active": ring.active_id, "keys": keys}) + "\n"


def from_line(line: str) -> ParquetFiles:
    """The :class:`ParquetFiles` the parent's :func:`to_line` describes."""
    data = json.loads(line or "{}")
    if not data:
        return PLAIN
    keys = {key_id: bytes.fromhex(key) for key_id, key in data["keys"].items()}
    return ParquetFiles(Keyring.fixed(keys, data["active"]))

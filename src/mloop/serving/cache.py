"""The optional response cache of an endpoint: answers keyed on the full input (every row, every field,
and a pinned version), least recently used out first. One cache belongs to one deployment revision, so a
new revision (a deploy, a canary step, a rollback) starts empty and never serves an older model's answer.

A hit returns the version that computed the answer: under a canary a repeated input keeps the version it
first got, as sticky routing would.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def cache_key(rows: Sequence[Mapping[str, Any]], pinned: int | None) -> bytes:
    """A digest of the input, equal for equal JSON inputs whatever the order of their fields."""
    text = json.dumps([pinned, list(rows)], sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _plain(value: Any) -> Any:
    # A tensor's every element counts (str() of an array elides the middle of a large one), so does its
    # dtype: an image sent as FP32 and as FP64 may not answer the same after the signature casts it.
    if isinstance(value, np.ndarray):
        return [
            str(value.dtype),
            list(value.shape),
            hashlib.blake2b(value.tobytes(), digest_size=16).hexdigest(),
        ]
    return str(value)


class ResponseCache:
    def __init__(self, revision: int, size: int) -> None:
        self.revision = revision
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, rows: Sequence[Mapping[str, Any]], pinned: int | None) -> Any:
        key = cache_key(rows, pinned)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, rows: Sequence[Mapping[str, Any]], pinned: int | None, value: Any) -> None:
        key = cache_key(rows, pinned)
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

"""The online store seam: latest feature rows and window-aggregation events, by entity key.

Two kinds of record, both keyed by ``(view, key)`` where ``key`` is the entity's join-key values encoded
by :func:`entity_key`:

- a **row** holds a plain feature view's latest values. Writes only move it forward in event time: a row
  whose ``(event_ts, created_ts)`` is older than the stored one is ignored, in every backend.
- **events** feed window aggregations. Adding is idempotent by ``event_id`` (a replayed event is stored
  once), and events older than a view's longest window are trimmed.

``read`` answers any number of rows and event ranges, across views, in one round trip. The store knows
nothing of TTLs or aggregation functions: the feature service applies them to what it reads.
Times are integers: microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson


@dataclass(frozen=True)
class OnlineRow:
    key: str
    event_ts: int
    created_ts: int
    values: dict[str, Any] | str  # or JSON text, already encoded


@dataclass(frozen=True)
class OnlineEvent:
    key: str
    event_ts: int
    event_id: str
    values: dict[str, Any] | str  # or JSON text, already encoded


@dataclass
class OnlineRead:
    """``rows[i]`` answers the i-th requested row (None if absent); ``events[j]`` lists the j-th requested
    event range, oldest first."""

    rows: list[OnlineRow | None] = field(default_factory=list)
    events: list[list[OnlineEvent]] = field(default_factory=list)


class OnlineStore(Protocol):
    url: str

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Upsert rows, moving each key forward only; returns how many were written (not ignored)."""

    def add_events(self, view: str, events: Sequence[OnlineEvent]) -> int:
        """Add events (idempotent by ``event_id``); returns how many were new."""

    def read(
        self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]] = ()
    ) -> OnlineRead:
        """Rows for ``(view, key)`` pairs, and events with ``event_ts > since`` for ``(view, key, since)``
        triples — all in one round trip."""

    def trim(self, view: str, before: int) -> int:
        """Delete the view's events with ``event_ts <= before``; returns how many."""

    def drop(self, view: str) -> None:
        """Delete everything stored for ``view``."""

    def delete(self, view: str, keys: Sequence[str]) -> int:
        """Delete the rows and events of ``keys`` in ``view`` (erasure); returns how many keys held any."""

    def close(self) -> None: ...


def entity_key(values: Sequence[Any]) -> str:
    """The string key of an entity from its join-key values, the same in every backend and process:
    ``entity_key([42]) == '42'``, ``entity_key(['DE', 7]) == '["DE",7]'``."""
    if len(values) == 1 and type(values[0]) is int:  # the common key, a plain int: a ranker asks for 200
        return str(values[0])
    values = [_plain(v) for v in values]
    if len(values) == 1 and isinstance(values[0], str | int) and not isinstance(values[0], bool):
        return str(values[0]) if isinstance(values[0], int) else json.dumps(values[0])
    return json.dumps(values, separators=(",", ":"))


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    # An integer key that passed through a float column (pandas does that to ints with gaps) is still
    # that integer: 42.0 finds the entity 42.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def newest_rows(rows: Sequence[OnlineRow]) -> list[OnlineRow]:
    """One row per key, the newest by ``(event_ts, created_ts)`` (the later one on a full tie), in
    first-seen order: what a batch leaves behind, so backends write each key once per batch."""
    newest: dict[str, OnlineRow] = {}
    for row in rows:
        seen = newest.get(row.key)
        if seen is None or (row.event_ts, row.created_ts) >= (seen.event_ts, seen.created_ts):
            newest[row.key] = row
    return list(newest.values())


def encode(values: dict[str, Any] | str) -> str:
    """Feature values as compact JSON, the one encoding every backend stores. NaN and ±inf round-trip
    (as JSON's ``NaN``/``Infinity`` extension that Python reads back), so a missing float value reads
    the same online as offline; numpy scalars are stored as their Python values. Text is taken to be
    encoded already (materialization has DuckDB encode whole columns at once)."""
    if isinstance(values, str):
        return values
    return json.dumps(values, separators=(",", ":"), default=_default)


def decode(text: str | bytes) -> dict[str, Any]:
    """The values :func:`encode` stored. orjson reads strict JSON several times faster (a rank stage
    decodes a row per candidate). The standard library reads what orjson refuses (``NaN``, ``Infinity``)
    and rows whose values orjson may have read wrong: it turns an integer outside 64 bits into a float,
    silently, so a row with a float that large, or with a list, is read again."""
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    for value in values.values():
        kind = type(value)
        if kind is list or (kind is float and not -9.2e18 < value < 1.8e19):
            return json.loads(text)
    return values


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a feature value")

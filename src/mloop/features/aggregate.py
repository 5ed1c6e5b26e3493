"""Window aggregations computed online, from the events the online store holds: the same values the
offline store computes for a training set (:func:`mloop.features.offline.historical`).

An aggregation at time ``end`` covers the events with ``start < event_ts <= end`` (``start = end -
window``). Null values, NaN included, are ignored by every function. Over an empty window ``count``,
``distinct_count`` and ``sum`` are 0, the others None. ``last`` is the value of the event with the
largest ``(event_ts, created_ts)`` (no created time sorts first), on a complete tie the largest value.

>>> events = [(1_000_000, 1_000_000, 5.0), (2_000_000, 2_000_000, 7.0), (3_000_000, 3_000_000, None)]
>>> aggregate("mean", events, start=0, end=3_000_000)
6.0
>>> aggregate("count", events, start=1_000_000, end=3_000_000)
1
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from numbers import Integral
from typing import Any

from mloop.errors import SchemaError

Event = tuple[int, int | None, Any]  # (event_ts_us, created_ts_us, value)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FIRST = float("-inf")  # sorts a missing created time before every real one


def aggregate(fn: str, events: Sequence[Event], start: int, end: int) -> Any:
    """``fn`` of the values of ``events`` (any order) with ``start < event_ts <= end``."""
    if fn == "last":
        best: tuple[int, Any, Any] | None = None
        for ts, created, value in events:
            if start < ts <= end and value is not None and value == value:
                key = (ts, _FIRST if created is None else created, value)
                if best is None or key > best:
                    best = key
        return None if best is None else best[2]
    values = [v for ts, _, v in events if start < ts <= end and v is not None and v == v]
    if fn == "count":
        return len(values)
    if fn == "sum":
        return sum(values)
    if fn == "mean":
        return sum(values) / len(values) if values else None
    if fn == "min":
        return min(values) if values else None
    if fn == "max":
        return max(values) if values else None
    if fn == "distinct_count":
        return len(set(values))
    raise SchemaError(
        f"Unknown aggregation {fn!r}; use one of count, sum, mean, min, max, last, distinct_count."
    )


def to_micros(ts: Any) -> int:
    """Microseconds since the Unix epoch (UTC) of a timezone-aware ``datetime`` or ``pandas.Timestamp``
    (sub-microsecond digits are dropped); an integer is taken to be microseconds already.

    >>> to_micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000000
    """
    if isinstance(ts, Integral) and not isinstance(ts, bool):
        return int(ts)
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise SchemaError(
                f"Timestamp {ts} is naive; mloop needs timezone-aware UTC times: "
                "ts.replace(tzinfo=datetime.UTC), or for a pandas column "
                'df[col] = df[col].dt.tz_localize("UTC").'
            )
        nanos = getattr(ts, "value", None)  # pandas.Timestamp keeps nanoseconds
        if isinstance(nanos, int):
            return nanos // 1000
        return (ts - _EPOCH) // _US
    raise SchemaError(f"Cannot read {ts!r} as a time: give a timezone-aware datetime or pandas.Timestamp.")

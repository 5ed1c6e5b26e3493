"""Window aggregations computed online, from the events the online store holds: the same values the
offline store computes for a training set (:func:`mloop.features.offline.historical`).

An aggregation at time ``end`` covers the events with ``start < event_ts <= end`` (``start = end -
window``). Null values, NaN included, are ignored by every function. Over an empty window ``count``,
``distinct_count`` and ``sum`` are 0, the others None. ``slope`` is the least-squares slope of the values
against the event time in days (None without two readings at two times); ``std`` the sample standard
deviation (None under two readings). :func:`window_value` applies an
:class:`~mloop.features.aggregation.Aggregation`'s ``since``, ``resample`` and ``min_count`` around them. ``last`` is the value of the event with the
largest ``(event_ts, created_ts)`` (no created time sorts first), on a complete tie the largest value.

>>> events = [(1_000_000, 1_000_000, 5.0), (2_000_000, 2_000_000, 7.0), (3_000_000, 3_000_000, None)]
>>> aggregate("mean", events, start=0, end=3_000_000)
6.0
>>> aggregate("count", events, start=1_000_000, end=3_000_000)
1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from numbers import Integral
from typing import Any

from mloop.errors import SchemaError
from mloop.features.aggregation import AGGREGATIONS, Aggregation

Event = tuple[int, int | None, Any]  # (event_ts_us, created_ts_us, value)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FIRST = float("-inf")  # sorts a missing created time before every real one
_DAY_US = 86_400_000_000


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
    if fn == "slope":
        return _slope([(ts, v) for ts, _, v in events if start < ts <= end and v is not None and v == v], end)
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
    if fn == "std":
        if len(values) < 2:
            return None
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    raise SchemaError(f"Unknown aggregation {fn!r}; use one of {', '.join(AGGREGATIONS)}.")


def _slope(points: list[tuple[int, Any]], origin: int) -> float | None:
    # Centred two-pass sums, times in days from the window's end: exact enough that the offline store's
    # streaming regr_slope agrees to ~1e-9.
    if len(points) < 2:
        return None
    xs = [(ts - origin) / _DAY_US for ts, _ in points]
    mx, my = sum(xs) / len(xs), sum(v for _, v in points) / len(points)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (v - my) for x, (_, v) in zip(xs, points, strict=True)) / sxx


def window_value(aggregation: Aggregation, events: Sequence[Event], end: int) -> tuple[Any, bool]:
    """``aggregation`` at time ``end`` (microseconds) from ``events`` (any order, any older ones too),
    and whether it was nulled for holding fewer than ``min_count`` values.

    >>> rain = Aggregation("rain_mm", "sum", since="03-01", min_count=2)
    >>> march_1, march_2 = 1_772_323_200_000_000, 1_772_409_600_000_000  # 2026-03-01 and 03-02, UTC
    >>> window_value(rain, [(march_1 - 1, 0, 9.0), (march_1, 0, 2.0), (march_2, 0, 3.0)], march_2)
    (5.0, False)
    """
    if aggregation.since is not None:
        start = season_start(end, aggregation.since) - 1  # the day itself counts: [since, end]
    else:
        start = end - int(aggregation.seconds * 1_000_000)
    step = aggregation.step
    if step is not None:
        events = resampled(events, start, end, step // _US)
    if aggregation.min_count is not None:
        count = sum(1 for ts, _, v in events if start < ts <= end and v is not None and v == v)
        if count < aggregation.min_count:
            return None, True
    return aggregate(aggregation.fn, events, start, end), False


def resampled(events: Sequence[Event], start: int, end: int, step: int) -> list[Event]:
    """The mean of the readings of each grid step ``(e - step, e]`` (``e`` a multiple of ``step`` since
    the epoch) whose end is in ``(start, end]``, as an event at ``e``."""
    sums: dict[int, list[Any]] = {}
    for ts, _, value in events:
        if value is None or value != value:
            continue
        edge = (ts - 1) - (ts - 1) % step + step  # the end of ts's step: the smallest multiple >= ts
        if start < edge <= end:
            sums.setdefault(edge, []).append(value)
    return [(edge, None, sum(values) / len(values)) for edge, values in sums.items()]


def season_start(end: int, since: str) -> int:
    """Microseconds of the latest ``since`` day ("MM-DD", 00:00 UTC) at or before ``end``."""
    month, day = int(since[:2]), int(since[3:])
    at = _EPOCH + end * _US
    year = at.year if (at.month, at.day) >= (month, day) else at.year - 1
    return (datetime(year, month, day, tzinfo=UTC) - _EPOCH) // _US


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

"""Tumbling windows over the prediction log: aligned time ranges, and the rows that fall in each.

Windows of size w start at whole multiples of w since the Unix epoch (UTC), so hourly windows start on
the hour and daily ones at midnight UTC, whichever process computes them; a window is *complete* once
its end has passed, and only complete windows are stored (a partial one is computed on demand).

>>> tumbling(datetime(2026, 12, 1, 10, 20, tzinfo=UTC), datetime(2026, 12, 1, 13, 5, tzinfo=UTC),
...          timedelta(hours=1))                                              # doctest: +NORMALIZE_WHITESPACE
[(datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc),
  datetime.datetime(2026, 12, 1, 11, 0, tzinfo=datetime.timezone.utc)),
 (datetime.datetime(2026, 12, 1, 11, 0, tzinfo=datetime.timezone.utc),
  datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)),
 (datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc),
  datetime.datetime(2026, 12, 1, 13, 0, tzinfo=datetime.timezone.utc))]
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from mloop._time import as_utc, parse_duration
from mloop.errors import MalformedInput, MloopError

Window = tuple[datetime, datetime]
MAX_WINDOWS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor(t: datetime, size: timedelta) -> datetime:
    """The start of the window of ``size`` that holds ``t``."""
    elapsed = as_utc(t) - _EPOCH
    return _EPOCH + size * (elapsed // size)


def tumbling(since: datetime, until: datetime, size: timedelta, *, complete: bool = True) -> list[Window]:
    """The windows of ``size`` overlapping ``[since, until)``: the first is the one holding ``since``;
    with ``complete`` only those ending by ``until``."""
    if size <= timedelta(0):
        raise MalformedInput(f"A window must be a positive duration; got {size}.")
    since, until = as_utc(since), as_utc(until)
    count = (until - floor(since, size)) / size
    if count > MAX_WINDOWS:
        raise MalformedInput(
            f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} holds {int(count):,} windows of {size}; "
            f"at most {MAX_WINDOWS:,}: pass a larger --window (window= over HTTP) or a shorter --since."
        )
    out: list[Window] = []
    start = floor(since, size)
    while start < until:
        end = start + size
        if end <= until or not complete:
            out.append((start, end))
        start = end
    return out


def since_time(text: str | datetime, now: datetime) -> datetime:
    """``--since``: a duration back from ``now`` (``7d``, ``12h``) or an ISO-8601 time."""
    if isinstance(text, datetime):
        return as_utc(text)
    try:
        back = parse_duration(text, what="--since")
    except MloopError:
        try:
            return as_utc(datetime.fromisoformat(text))
        except ValueError:
            raise MalformedInput(
                f"--since {text!r} is neither a duration (7d, 12h, 30m) nor an ISO time "
                "(2026-12-01 or 2026-12-01T08:00:00+00:00)."
            ) from None
    assert back is not None
    try:
        return as_utc(now) - back
    except OverflowError:
        raise MalformedInput(
            f"--since {text!r} reaches back before the year 1; give a shorter duration."
        ) from None


def split(
    frame: pd.DataFrame, windows: list[Window], column: str = "ts"
) -> Iterator[tuple[Window, pd.DataFrame]]:
    """Each window with the rows of ``frame`` (sorted by ``column`` or not) whose time falls in it."""
    if frame.empty:
        for window in windows:
            yield window, frame
        return
    ts = pd.to_datetime(frame[column], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ordered = ts[order]
    for window in windows:
        lo, hi = (int(np.searchsorted(ordered, pd.Timestamp(t).value, side="left")) for t in window)
        yield window, frame.iloc[np.sort(order[lo:hi])]


def label(size: timedelta) -> str:
    """``1h``, ``30m``, ``1d``: the shortest whole unit."""
    seconds = int(size.total_seconds())
    for unit, length in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"

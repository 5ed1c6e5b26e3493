"""Which time range and window size a monitoring read covers, when the caller gives few or none.

A range follows the data: it never starts before the endpoint's first logged prediction (windows before
it can only say "no data"), and when the caller gives no end it stops at the window holding the last
one, so a report of two minutes of traffic is two minutes wide, not the last hour with the traffic in
its right-most 3%. An endpoint with no logged prediction yet covers its deployed life instead.

The window is ``monitoring.window`` unless the caller names one. A range that would hold more than
:data:`AUTO_WINDOWS` windows of the configured size is read in the smallest coarser window from
:data:`LADDER` that fits, and the range's ``note`` says so; a window the caller named is kept, and more
than :data:`~mloop.monitoring.windows.MAX_WINDOWS` of it is an error that names the option to change.

>>> choose(since, until, None, timedelta(seconds=5), until_given=False, data=(first, last))  # doctest: +SKIP
Range(since=..., until=..., window=datetime.timedelta(seconds=60), note='7 days hold 120,960 windows ...')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pyarrow.compute as pc

from mloop._time import as_utc, parse_duration
from mloop.crypto import PLAIN, ParquetFiles
from mloop.errors import MalformedInput
from mloop.monitoring import windows
from mloop.predictions.files import SCHEMA, live_records, parquet_parts
from mloop.predictions.place import LogFolder

AUTO_WINDOWS = 1_000  # more windows than a heatmap can show or a table can be read in
LADDER = tuple(
    parse_duration(text) or timedelta(0)
    for text in ("1s", "5s", "10s", "15s", "30s", "1m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h",
                 "12h", "1d", "7d")
)  # fmt: skip


@dataclass(frozen=True)
class Range:
    """The windows of ``window`` from ``since`` to ``until``; ``note`` says what was chosen for the caller."""

    since: datetime
    until: datetime
    window: timedelta
    note: str = ""

    @property
    def count(self) -> int:
        return _count(self.since, self.until, self.window)


def choose(
    since: datetime,
    until: datetime,
    window: timedelta | str | None,
    configured: timedelta,
    *,
    until_given: bool,
    data: tuple[datetime, datetime] | None,
) -> Range:
    """The range to read: ``[since, until)`` clamped to ``data`` (first and last logged prediction), in
    the named ``window`` or the ``configured`` one, coarsened when it would hold too many windows."""
    since, until = as_utc(since), as_utc(until)
    last: datetime | None = None
    if data is not None:
        first, newest = as_utc(data[0]), as_utc(data[1])
        since = max(since, first)
        if not until_given and since <= newest < until:
            last = newest  # end at the window holding the last prediction
    named = parse_duration(window, what="window") if window is not None else None
    size = named or configured
    if size <= timedelta(0):
        raise MalformedInput(f"A window must be a positive duration; got {size}.")
    end = until if last is None else last + timedelta(microseconds=1)
    count = _count(since, end, size)
    note = ""
    if named is not None and count > windows.MAX_WINDOWS:
        raise MalformedInput(
            f"{_span(since, end)} holds {count:,} windows of {windows.label(size)}; at most "
            f"{windows.MAX_WINDOWS:,}: pass a larger --window (window= over HTTP), for example "
            f"--window {windows.label(_coarser(since, end, size))}, or a shorter --since."
        )
    if named is None and count > AUTO_WINDOWS:
        size = _coarser(since, end, size)
        note = (
            f"{_span(since, end)} holds {count:,} windows of {windows.label(configured)}: read in "
            f"{windows.label(size)} windows instead (pass --window to choose, or a shorter --since)"
        )
    if last is not None:
        until = min(until, windows.floor(last, size) + size)
    return Range(windows.floor(since, size), until, size, note)


def data_span(
    folder: Path | LogFolder, endpoint: str, parquet: ParquetFiles = PLAIN
) -> tuple[datetime, datetime] | None:
    """The times of the first and the last prediction logged for ``endpoint`` (None when there is none).

    Reads only the ``ts`` column of the oldest and the newest day's Parquet parts, and the live segments."""
    parts = parquet_parts(folder, endpoint)
    times: list[datetime] = []
    if parts:
        days = sorted({p.rsplit("/", 1)[0] for p in parts})
        for day in {days[0], days[-1]}:
            table = parquet.dataset([p for p in parts if p.rsplit("/", 1)[0] == day], schema=SCHEMA).to_table(
                columns=["ts"]
            )
            if table.num_rows:
                low, high = pc.min_max(table["ts"]).values()
                times += [low.as_py(), high.as_py()]
    live = [float(r["ts"]) for r in live_records(folder) if r.get("endpoint") == endpoint]
    if live:
        times += [datetime.fromtimestamp(min(live), UTC), datetime.fromtimestamp(max(live), UTC)]
    return (min(times), max(times)) if times else None


def logged_endpoints(folder: Path | LogFolder) -> set[str]:
    """The endpoints the compacted prediction log holds predictions of."""
    return {unquote(p.rsplit("/", 3)[-3].partition("=")[2]) for p in parquet_parts(folder)}


def _count(since: datetime, until: datetime, size: timedelta) -> int:
    """How many windows of ``size`` overlap ``[since, until)``."""
    return max(0, -(-(until - windows.floor(since, size)) // size))


def _coarser(since: datetime, until: datetime, size: timedelta) -> timedelta:
    for step in LADDER:
        if step > size and step % size == timedelta(0) and _count(since, until, step) <= AUTO_WINDOWS:
            return step
    return _fit(since, until, size)


def _fit(since: datetime, until: datetime, size: timedelta) -> timedelta:
    """The smallest multiple of ``size`` whose windows over the range number at most AUTO_WINDOWS."""
    factor = max(2, -(-(until - since) // (size * (AUTO_WINDOWS - 1))))
    return size * factor


def _span(since: datetime, until: datetime) -> str:
    return f"{since:%Y-%m-%d %H:%M:%S} to {until:%Y-%m-%d %H:%M:%S} UTC"

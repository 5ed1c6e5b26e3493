"""Time helpers: every timestamp mloop stores is timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mloop.errors import MloopError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# How far apart two hosts' clocks may be for mloop's cross-process timing to hold (docs/reliability.md,
# "Clock skew"): a loop step finds the requests servers logged up to this far "before" it began, and an
# online read counts an event a writer stamped up to this far in the reader's future as happening now.
# NTP keeps hosts within milliseconds; this bounds a host whose sync failed.
CLOCK_SKEW = timedelta(minutes=15)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_duration(text: str | int | float | timedelta | None, *, what: str = "duration") -> timedelta | None:
    """Parse ``"10m"``, ``"1h"``, ``"7d"``, ``"500ms"`` (or seconds as a number) into a timedelta.

    >>> parse_duration("90m")
    datetime.timedelta(seconds=5400)
    """
    if text is None or isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    match = _DURATION.fullmatch(str(text))
    if not match:
        raise MloopError(
            f"The {what} {text!r} does not parse: write a number and a unit, "
            "one of ms, s, m, h, d, w (for example '10m', '24h' or '7d')."
        )
    try:
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:
        raise MloopError(f"The {what} {text!r} is too long; at most 999,999,999 days.") from None

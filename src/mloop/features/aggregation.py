"""The definition of a window aggregation: a function of a column over the readings of a time window,
as one feature of a :class:`~mloop.features.definitions.FeatureView`.

Besides the plain rolling window (``window="7d"``: the events in ``(t - 7d, t]``) an aggregation can

- accumulate ``since`` a day of the year (``since="03-01"``: the events in ``[the latest 1 March 00:00 UTC
  at or before t, t]``), for season rainfall or growing degree days;
- average the readings per step of a regular grid first (``resample="1h"``), so a sensor that reports ten
  times as often in one hour does not weigh ten times as much in a daily mean or slope;
- be null when the window holds fewer than ``min_count`` values (after resampling: grid steps with a
  reading), never a mean of three readings passed off as a day's.

>>> Aggregation("soil_moisture", "slope", window="7d", resample="1h", min_count=120).feature
'soil_moisture_slope_7d_by_1h'
>>> Aggregation("rain_mm", "sum", since="03-01").feature
'rain_mm_sum_since_0301'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mloop._time import parse_duration
from mloop.errors import SchemaError

AGGREGATIONS = ("count", "sum", "mean", "min", "max", "last", "distinct_count", "slope", "std")
# Numbers only: the offline store refuses these over a text column with the fix.
NUMERIC = ("sum", "mean", "slope", "std")
# A grid step's value is the mean of its readings: `last` and `distinct_count` of means mean little.
_NOT_RESAMPLED = ("last", "distinct_count")
# The longest time from a `since` day back to the feature time: a leap year and a day, at most.
SEASON = timedelta(days=366)
_SINCE = re.compile(r"^(\d{2})-(\d{2})$")


def duration_text(value: timedelta) -> str:
    """``timedelta(hours=36)`` -> ``"36h"``: the largest whole unit, up to days."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


def parse_window(text: str | timedelta, where: str, what: str = "window") -> timedelta:
    try:
        value = parse_duration(text, what=f"{what} of {where}")
    except Exception as exc:
        raise SchemaError(str(exc)) from None
    if value is None or value <= timedelta(0):
        raise SchemaError(f"{where}: the {what} must be positive, like '10m', '1h', '24h' or '7d'.")
    return value


def parse_since(text: Any, where: str) -> tuple[int, int]:
    """``"03-01"`` -> ``(3, 1)``: a month and day that every year has (so not 29 February)."""
    match = _SINCE.fullmatch(text) if isinstance(text, str) else None
    valid = False
    if match:
        try:
            date(2001, int(match.group(1)), int(match.group(2)))  # 2001: not a leap year
            valid = True
        except ValueError:
            pass
    if not valid:
        raise SchemaError(
            f"{where}: since={text!r} is not a day of the year; write it as 'MM-DD', like '03-01' for the "
            "latest 1 March (29 February is refused: most years lack it, use '03-01')."
        )
    assert match is not None
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Aggregation:
    """``fn`` of ``column`` over the events in ``(t - window, t]``: count, sum, mean, min, max, last,
    distinct_count, slope (least-squares trend of the values against time, per day) or std (sample
    standard deviation). Named ``<column>_<fn>_<window>`` (``amount_mean_1h``) unless ``name`` is given.

    Over a window with no events, count, distinct_count and sum are 0; the others are null; slope needs
    two readings at two different times, std two readings. Null and NaN values are ignored.

    - ``since="MM-DD"`` instead of ``window``: the events from the latest such day (00:00 UTC) at or
      before t, up to t (``rain_mm_sum_since_0301``).
    - ``resample="1h"``: the readings are first averaged per step of a grid aligned on the Unix epoch
      (UTC); step ``(e - 1h, e]`` is a value at time ``e``, and the window takes the steps that end in
      ``(t - window, t]`` (a step still open at t waits for its end). The window must be a whole number
      of steps; not with ``since``, ``last`` or ``distinct_count``.
    - ``min_count=N``: null (with the count of such windows reported) when the window holds fewer than
      N values: readings, or with ``resample`` grid steps that have a reading (``resample="1h",
      window="24h", min_count=18``: at least 75 % of the day's hours).

    >>> Aggregation("amount", "mean", "1h").feature
    'amount_mean_1h'
    """

    column: str
    fn: str
    window: str | timedelta | None = None
    name: str | None = None
    min_count: int | None = None
    resample: str | timedelta | None = None
    since: str | None = None

    def __post_init__(self) -> None:
        where = f"aggregation {self.fn}({self.column})"
        if self.fn not in AGGREGATIONS:
            raise SchemaError(
                f"Aggregation of {self.column!r}: unknown function {self.fn!r}; use one of {', '.join(AGGREGATIONS)}."
            )
        if (self.window is None) == (self.since is None):
            raise SchemaError(
                f"{where}: give either window= (a rolling window, like '7d') or since= (a day of the year, "
                "like '03-01'), not both and not neither."
            )
        if self.min_count is not None and (
            isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 1
        ):
            raise SchemaError(
                f"{where}: min_count={self.min_count!r} must be a whole number >= 1 (the fewest values a "
                "window needs to have a value), or None for no minimum."
            )
        suffix = ""
        if self.resample is not None:
            step = parse_window(self.resample, where, "resample step")
            if self.since is not None or self.fn in _NOT_RESAMPLED:
                raise SchemaError(
                    f"{where}: resample= works with a rolling window and count, sum, mean, min, max, slope or "
                    f"std; drop resample= for {'since=' if self.since is not None else self.fn}."
                )
            suffix = f"_by_{''.join(self.resample.split()) if isinstance(self.resample, str) else duration_text(step)}"
            object.__setattr__(self, "resample", step)
        if self.since is not None:
            month, day = parse_since(self.since, where)
            object.__setattr__(self, "since", f"{month:02d}-{day:02d}")
            if self.name is None:
                object.__setattr__(self, "name", f"{self.column}_{self.fn}_since_{month:02d}{day:02d}")
            return
        written = self.window
        assert written is not None
        window = parse_window(written, where)
        object.__setattr__(self, "window", window)
        if isinstance(self.resample, timedelta) and window % self.resample:
            raise SchemaError(
                f"{where}: the window {duration_text(window)} is not a whole number of resample steps of "
                f"{duration_text(self.resample)}; make it a multiple (e.g. window='7d', resample='1h')."
            )
        if self.name is None:
            # Named as the user wrote the window ("24h" stays 24h), so the feature is easy to find.
            text = "".join(written.split()) if isinstance(written, str) else duration_text(window)
            object.__setattr__(self, "name", f"{self.column}_{self.fn}_{text}{suffix}")

    @property
    def feature(self) -> str:
        assert self.name is not None
        return self.name

    @property
    def seconds(self) -> float:
        """The rolling window in seconds (0 for a ``since`` aggregation, whose window varies)."""
        return self.window.total_seconds() if isinstance(self.window, timedelta) else 0.0

    @property
    def step(self) -> timedelta | None:
        """The resample step, if any."""
        return self.resample if isinstance(self.resample, timedelta) else None

    @property
    def lookback(self) -> timedelta:
        """How far back from t an event can still count: the window and one grid step (the first step may
        start before the window), or for ``since`` a leap year and a day. The online store keeps this much."""
        if self.since is not None:
            return SEASON
        assert isinstance(self.window, timedelta)
        return self.window + (self.step or timedelta(0))

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "column": self.column,
            "fn": self.fn,
            "window": duration_text(self.window) if isinstance(self.window, timedelta) else None,
            "name": self.name,
        }
        # Only when set: aggregations without them keep their stored hash.
        if self.min_count is not None:
            spec["min_count"] = self.min_count
        if self.step is not None:
            spec["resample"] = duration_text(self.step)
        if self.since is not None:
            spec["since"] = self.since
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Aggregation:
        """The aggregation a stored :meth:`spec` describes."""
        return cls(spec["column"], spec["fn"], spec.get("window"), spec.get("name"), spec.get("min_count"),
                   spec.get("resample"), spec.get("since"))  # fmt: skip

"""Cron expressions for the loop's ``Schedule`` trigger: parse, match, and find the next or previous run.

Standard five fields (minute hour day-of-month month day-of-week), always in UTC, with Vixie-cron
semantics. No seconds field, no time zones, no ``@reboot``.

>>> from datetime import datetime, UTC
>>> cron = Cron.parse("0 3 * * *")
>>> cron.next_after(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
datetime.datetime(2024, 5, 2, 3, 0, tzinfo=datetime.timezone.utc)
>>> due(cron, last_run=datetime(2024, 5, 1, 3, 0, tzinfo=UTC), now=datetime(2024, 5, 2, 3, 1, tzinfo=UTC))
True
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mloop._time import as_utc
from mloop.errors import MalformedInput

__all__ = ["Cron", "due"]

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_LONGEST_MONTH = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in range(1, 13)}
# The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks), so an
# expression that matches at all matches within any 400-year window: the searches need no other limit.
_CYCLE_YEARS = 401  # one more, as the window's ends are rounded to day 28
_NUMBER = re.compile(r"[0-9]+|[A-Za-z]{3}")
_PART = re.compile(r"^(?P<base>\*|[^-/]+(?:-[^-/]+)?)(?:/(?P<step>[^/]*))?$")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    allowed: str
    example: str
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59, "0-59", "'*/15 * * * *' (every 15 minutes)"),
    _Field("hour", 0, 23, "0-23", "'0 3 * * *' (03:00 UTC every day)"),
    _Field("day-of-month", 1, 31, "1-31", "'0 3 1 * *' (03:00 UTC on the 1st of each month)"),
    _Field("month", 1, 12, "1-12 or JAN-DEC", "'0 3 1 JAN,JUL *' (03:00 UTC on 1 January and 1 July)",
           _MONTHS),
    _Field("day-of-week", 0, 7, "0-7 (0 and 7 are Sunday) or SUN-SAT",
           "'0 9 * * MON-FRI' (09:00 UTC on weekdays)", _WEEKDAYS),
)  # fmt: skip


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; make one with :meth:`Cron.parse`.

    >>> from datetime import datetime, UTC
    >>> weekdays = Cron.parse("30 9 * * MON-FRI")
    >>> weekdays.matches(datetime(2024, 5, 3, 9, 30, tzinfo=UTC))   # a Friday
    True
    >>> str(weekdays.next_after(datetime(2024, 5, 3, 9, 30, tzinfo=UTC)))
    '2024-05-06 09:30:00+00:00'

    The value sets are sorted tuples; ``weekdays`` counts Sunday as 0 (a 7 in the text is stored as 0).
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    # Vixie cron: a day-of-month or day-of-week field that starts with '*' (so '*/2' too) leaves the
    # other in charge and both must match; when both are restricted a day matching either one runs.
    either_day: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse a five-field cron expression or a macro such as ``@daily``; raise :class:`MalformedInput`
        naming the field, the bad part, what is allowed and an example.

        >>> Cron.parse("*/20 8-18 * * 1-5").minutes
        (0, 20, 40)
        """
        if not isinstance(text, str):
            raise MalformedInput(
                f"a cron expression is a string such as '0 3 * * *' (03:00 UTC every day); got {text!r}"
            )
        expression = text.strip()
        if expression.startswith("@"):
            if expression.lower() not in MACROS:
                raise MalformedInput(
                    f"cron {text!r}: unknown macro {expression!r}; use one of {', '.join(MACROS)} "
                    "or five fields, for example '0 3 * * *' (03:00 UTC every day)"
                )
            expression = MACROS[expression.lower()]
        parts = expression.split()
        if len(parts) != 5:
            raise MalformedInput(
                f"cron {text!r} has {len(parts)} field{'' if len(parts) == 1 else 's'}; it needs 5: minute "
                "hour day-of-month month day-of-week (or a macro such as @daily); write for example "
                "'0 3 * * *' (03:00 UTC every day)"
            )
        values = [_parse_field(text, part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        minutes, hours, days, months, weekdays = values
        weekdays = sorted({d % 7 for d in weekdays})
        either_day = not parts[2].startswith("*") and not parts[4].startswith("*")
        cron = cls(
            text, tuple(minutes), tuple(hours), tuple(days), tuple(months), tuple(weekdays), either_day
        )
        if not either_day and not any(d <= _LONGEST_MONTH[m] for m in months for d in days):
            # Every real date falls on every weekday within 400 years, so only the dates can be impossible.
            raise MalformedInput(
                f"cron {text!r} never matches: no month in {parts[3]!r} has a day {parts[2]!r}; "
                "write for example '0 3 28 2 *' (03:00 UTC on 28 February)"
            )
        return cron

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Cron({self.text!r})"

    def matches(self, t: datetime) -> bool:
        """Whether the minute of ``t`` (converted to UTC; naive means UTC) is scheduled."""
        t = as_utc(t)
        return t.minute in self.minutes and t.hour in self.hours and self._day_matches(t.date())

    def next_after(self, t: datetime) -> datetime:
        """The first scheduled minute strictly after ``t``, as an aware UTC datetime."""
        start = _floor_minute(as_utc(t))
        try:
            start += timedelta(minutes=1)
        except OverflowError:
            raise self._no_time_after(t) from None
        day, hour, minute = start.date(), start.hour, start.minute
        limit = _add_years(day, _CYCLE_YEARS)
        while day <= limit:
            if day.month not in self.months:
                i = bisect_right(self.months, day.month)
                if i < len(self.months):
                    day = date(day.year, self.months[i], 1)
                elif day.year < date.max.year:
                    day = date(day.year + 1, self.months[0], 1)
                else:
                    break
                hour = minute = 0
                continue
            if self._day_matches(day):
                found = self._first_time(hour, minute)
                if found is not None:
                    return datetime(day.year, day.month, day.day, *found, tzinfo=UTC)
            if day == date.max:
                break
            day, hour, minute = day + timedelta(days=1), 0, 0
        raise self._no_time_after(t)

    def previous(self, t: datetime) -> datetime | None:
        """The newest scheduled minute at or before ``t``, or None when there is none (before year 1)."""
        end = _floor_minute(as_utc(t))
        day, hour, minute = end.date(), end.hour, end.minute
        limit = _add_years(day, -_CYCLE_YEARS)
        while day >= limit:
            if day.month not in self.months:
                i = bisect_left(self.months, day.month)
                if i > 0:
                    year, month = day.year, self.months[i - 1]
                elif day.year > 1:
                    year, month = day.year - 1, self.months[-1]
                else:
                    return None
                day = date(year, month, calendar.monthrange(year, month)[1])
                hour, minute = 23, 59
                continue
            if self._day_matches(day):
                found = self._last_time(hour, minute)
                if found is not None:
                    return datetime(day.year, day.month, day.day, *found, tzinfo=UTC)
            if day == date.min:
                return None
            day, hour, minute = day - timedelta(days=1), 23, 59
        return None

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        return (in_month or in_week) if self.either_day else (in_month and in_week)

    def _first_time(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first scheduled (hour, minute) of a day at or after hour:minute."""
        for h in self.hours[bisect_left(self.hours, hour) :]:
            i = bisect_left(self.minutes, minute) if h == hour else 0
            if i < len(self.minutes):
                return h, self.minutes[i]
        return None

    def _last_time(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The last scheduled (hour, minute) of a day at or before hour:minute."""
        for h in reversed(self.hours[: bisect_right(self.hours, hour)]):
            i = bisect_right(self.minutes, minute) if h == hour else len(self.minutes)
            if i > 0:
                return h, self.minutes[i - 1]
        return None

    def _no_time_after(self, t: datetime) -> MalformedInput:
        return MalformedInput(
            f"cron {self.text!r} never matches after {t.isoformat()} (the calendar ends at 9999)"
        )


def due(cron: Cron, last_run: datetime | None, now: datetime) -> bool:
    """Whether a scheduled time lies in ``(last_run, now]``: the run it asks for has not happened yet.

    With no last run a schedule is due as soon as any scheduled time has passed, so a new policy trains at
    its first check instead of waiting for the next slot.

    >>> from datetime import datetime, UTC
    >>> nightly = Cron.parse("0 3 * * *")
    >>> due(nightly, datetime(2024, 5, 2, 3, 0, 5, tzinfo=UTC), datetime(2024, 5, 2, 9, 0, tzinfo=UTC))
    False
    """
    latest = cron.previous(now)
    if latest is None:
        return False
    return last_run is None or latest > as_utc(last_run)


def _parse_field(text: str, field: str, spec: _Field) -> list[int]:
    values: set[int] = set()
    for part in field.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise _bad(text, spec, f"{part!r} is not a number, range a-b or step */n")
        base, step_text = match.group("base"), match.group("step")
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, last = base.split("-")
            low, high = _value(text, spec, first, part), _value(text, spec, last, part)
            if low > high:
                raise _bad(text, spec, f"range {part!r} runs backwards; write the smaller end first")
        else:
            low = _value(text, spec, base, part)
            # 'a/n' (cronie, not Vixie) means every n from a to the end of the field.
            high = spec.high if step_text is not None else low
        step = 1
        if step_text is not None:
            if not step_text.isascii() or not step_text.isdigit():
                raise _bad(text, spec, f"step {part!r} needs a whole number after '/'")
            step = int(step_text)
            # A step wider than the field gives one value, which is never what '*/90' meant.
            if not 1 <= step <= spec.high - spec.low:
                raise _bad(
                    text,
                    spec,
                    f"step {step} in {part!r} is out of range 1-{spec.high - spec.low} (the field spans {spec.allowed})",
                )
        values.update(range(low, high + 1, step))
    return sorted(values)


def _value(text: str, spec: _Field, token: str, part: str) -> int:
    if _NUMBER.fullmatch(token) is None:
        raise _bad(text, spec, f"{part!r} is not a number, range a-b or step */n")
    if token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise _bad(text, spec, f"{value} is out of range {spec.allowed}")
        return value
    if spec.names is None or token.upper() not in spec.names:
        raise _bad(text, spec, f"{token!r} is not a number or name")
    return spec.names[token.upper()]


def _bad(text: str, spec: _Field, problem: str) -> MalformedInput:
    range_note = "" if spec.allowed in problem else f" (allowed: {spec.allowed})"
    return MalformedInput(
        f"cron {text!r}: {spec.name} {problem}{range_note}; write for example {spec.example}"
    )


def _floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _add_years(day: date, years: int) -> date:
    year = min(max(day.year + years, date.min.year), date.max.year)
    return date(year, day.month, min(day.day, 28))

"""Cron parsing, matching and the next/previous search, checked against a minute-by-minute scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import MalformedInput
from mloop.loop.schedule import Cron, due

MINUTE = timedelta(minutes=1)
SCAN_LIMIT = 2 * 24 * 60  # minutes a brute-force scan may walk per example


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def runs(text: str, after: datetime, n: int) -> list[datetime]:
    cron, found = Cron.parse(text), []
    for _ in range(n):
        after = cron.next_after(after)
        found.append(after)
    return found


# -- expressions for the property tests ------------------------------------------------------------


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    span = st.tuples(number, number).map(sorted)
    step = st.integers(1, high - low)
    one = st.one_of(
        number.map(str),
        span.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        step.map(lambda n: f"*/{n}"),
        st.tuples(span, step).map(lambda x: f"{x[0][0]}-{x[0][1]}/{x[1]}"),
    )
    return st.one_of(st.just("*"), one, st.lists(one, min_size=2, max_size=3).map(",".join))


expressions = st.tuples(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7)).map(" ".join)
times = st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31)).map(lambda t: t.replace(tzinfo=UTC))


def possible(text: str) -> bool:
    try:
        Cron.parse(text)
    except MalformedInput:
        return False
    return True


def scan(cron: Cron, start: datetime, end: datetime) -> list[datetime]:
    """Every matching minute in [start, end), at most SCAN_LIMIT minutes of it, by brute force."""
    found, t = [], start
    while t < end and t < start + SCAN_LIMIT * MINUTE:
        if cron.matches(t):
            found.append(t)
        t += MINUTE
    return found


@settings(max_examples=150)
@given(expressions.filter(possible), times)
def test_next_after_is_the_first_match_strictly_after(text: str, t: datetime) -> None:
    cron = Cron.parse(text)
    following = cron.next_after(t)
    assert following > t
    assert following.tzinfo is UTC and following.second == following.microsecond == 0
    assert cron.matches(following)
    first_candidate = t.replace(second=0, microsecond=0) + MINUTE
    assert scan(cron, first_candidate, following) == []


@settings(max_examples=150)
@given(expressions.filter(possible), times)
def test_previous_is_the_last_match_at_or_before(text: str, t: datetime) -> None:
    cron = Cron.parse(text)
    latest = cron.previous(t)
    assert latest is not None and latest <= t and cron.matches(latest)
    assert cron.next_after(latest) > t  # nothing scheduled in (latest, t]
    assert scan(cron, latest + MINUTE, t + timedelta(microseconds=1)) == []
    assert cron.previous(cron.next_after(t)) == cron.next_after(t)


@given(expressions)
def test_text_round_trips(text: str) -> None:
    if possible(text):
        assert str(Cron.parse(text)) == text


@given(times, st.integers(-12 * 60, 14 * 60))
def test_aware_times_in_any_zone_mean_the_same_instant(t: datetime, offset: int) -> None:
    cron = Cron.parse("*/7 */5 * * *")
    local = t.astimezone(timezone(timedelta(minutes=offset)))
    naive = t.replace(tzinfo=None)
    assert cron.next_after(local) == cron.next_after(naive) == cron.next_after(t)
    assert cron.matches(local) == cron.matches(naive) == cron.matches(t)


# -- concrete schedules ----------------------------------------------------------------------------


def test_daily_at_three() -> None:
    assert runs("0 3 * * *", at(2024, 5, 1, 12, 0), 2) == [at(2024, 5, 2, 3, 0), at(2024, 5, 3, 3, 0)]
    assert Cron.parse("0 3 * * *").next_after(at(2024, 5, 1, 2, 59, 59)) == at(2024, 5, 1, 3, 0)
    # strictly after: a time exactly on the schedule moves on to the next day
    assert Cron.parse("0 3 * * *").next_after(at(2024, 5, 1, 3, 0)) == at(2024, 5, 2, 3, 0)


def test_every_fifteen_minutes_across_midnight_and_new_year() -> None:
    assert runs("*/15 * * * *", at(2023, 12, 31, 23, 40), 3) == [
        at(2023, 12, 31, 23, 45),
        at(2024, 1, 1, 0, 0),
        at(2024, 1, 1, 0, 15),
    ]


def test_weekdays_nine_to_five() -> None:
    found = runs("0 9-17 * * 1-5", at(2024, 5, 3, 16, 30), 3)  # Friday afternoon
    assert found == [at(2024, 5, 3, 17, 0), at(2024, 5, 6, 9, 0), at(2024, 5, 6, 10, 0)]
    assert runs("0 9-17 * * MON-FRI", at(2024, 5, 3, 16, 30), 3) == found


def test_february_29_waits_for_leap_years_even_across_1900_and_2100() -> None:
    assert runs("0 0 29 2 *", at(2024, 3, 1), 2) == [at(2028, 2, 29), at(2032, 2, 29)]
    assert Cron.parse("0 0 29 2 *").next_after(at(2096, 3, 1)) == at(2104, 2, 29)
    assert Cron.parse("0 0 29 2 *").previous(at(1904, 2, 28)) == datetime(1896, 2, 29, tzinfo=UTC)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # the 13th of the month, and every Friday
    found = runs("0 0 13 * FRI", at(2024, 9, 1), 4)
    assert found == [at(2024, 9, 6), at(2024, 9, 13), at(2024, 9, 20), at(2024, 9, 27)]
    assert at(2024, 9, 13).weekday() == 4  # a Friday the 13th runs once, not twice
    assert runs("0 0 13 * FRI", at(2024, 10, 4), 2) == [at(2024, 10, 11), at(2024, 10, 13)]


def test_both_must_match_when_either_day_field_starts_with_a_star() -> None:
    # Vixie cron: '*/2' counts as '*', so this is odd days of the month that are also Mondays
    found = runs("0 0 */2 * MON", at(2024, 1, 1, 0, 0), 3)
    assert all(t.day % 2 == 1 and t.weekday() == 0 for t in found)
    assert found == [at(2024, 1, 15), at(2024, 1, 29), at(2024, 2, 5)]
    # a restricted day-of-month with '*' weekdays is just the days of the month
    assert runs("0 0 1,15 * *", at(2024, 1, 1), 2) == [at(2024, 1, 15), at(2024, 2, 1)]


def test_sunday_is_zero_and_seven_and_names_are_case_insensitive() -> None:
    sundays = runs("0 12 * * 0", at(2024, 5, 1), 3)
    assert all(t.weekday() == 6 for t in sundays)
    for same in ("0 12 * * 7", "0 12 * * sun", "0 12 * * Sun", "0 12 * * 0,7"):
        assert runs(same, at(2024, 5, 1), 3) == sundays
    assert runs("0 12 * * 5-7", at(2024, 5, 1), 3) == runs("0 12 * * FRI,SAT,SUN", at(2024, 5, 1), 3)


def test_month_names() -> None:
    assert runs("0 0 1 jan,Jul *", at(2024, 2, 1), 2) == [at(2024, 7, 1), at(2025, 1, 1)]
    assert runs("0 0 1 MAR-MAY *", at(2024, 1, 1), 3) == runs("0 0 1 3-5 *", at(2024, 1, 1), 3)


def test_ranges_with_steps_and_lists() -> None:
    cron = Cron.parse("5-50/15,59 */6 * * *")
    assert cron.minutes == (5, 20, 35, 50, 59)
    assert cron.hours == (0, 6, 12, 18)
    assert Cron.parse("10/20 * * * *").minutes == (10, 30, 50)  # 'a/n' runs to the end of the field
    assert Cron.parse("*/2 * * * 1-7/2").weekdays == (0, 1, 3, 5)


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@ANNUALLY", "0 0 1 1 *"),
    ],
)
def test_macros(macro: str, fields: str) -> None:
    assert runs(macro, at(2024, 5, 17, 13, 30), 5) == runs(fields, at(2024, 5, 17, 13, 30), 5)
    assert str(Cron.parse(macro)) == macro


def test_matches_ignores_seconds_and_reads_naive_times_as_utc() -> None:
    cron = Cron.parse("30 9 * * *")
    assert cron.matches(datetime(2024, 5, 1, 9, 30, 59))
    assert not cron.matches(datetime(2024, 5, 1, 9, 31))
    assert cron.matches(datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))))


def test_next_after_is_fast_for_sparse_schedules() -> None:
    cron = Cron.parse("0 0 29 2 *")
    found = runs("0 0 29 2 *", at(2000, 3, 1), 25)
    assert found[-1] == at(2104, 2, 29)  # 2100 is not a leap year
    assert all(b - a >= timedelta(days=4 * 365) for a, b in pairwise(found))
    assert cron.previous(at(2024, 2, 28)) == at(2020, 2, 29)


# -- previous() and due() --------------------------------------------------------------------------


def test_previous_includes_the_minute_of_t() -> None:
    cron = Cron.parse("0 3 * * *")
    assert cron.previous(at(2024, 5, 2, 3, 0, 30)) == at(2024, 5, 2, 3, 0)
    assert cron.previous(at(2024, 5, 2, 2, 59)) == at(2024, 5, 1, 3, 0)
    assert Cron.parse("0 0 1 1 *").previous(datetime(1, 1, 1, 0, 0, tzinfo=UTC)) == datetime(
        1, 1, 1, tzinfo=UTC
    )
    assert Cron.parse("0 0 2 1 *").previous(datetime(1, 1, 1, 12, 0, tzinfo=UTC)) is None


def test_due_when_a_scheduled_time_lies_after_the_last_run() -> None:
    nightly = Cron.parse("0 3 * * *")
    last = at(2024, 5, 1, 3, 0, 5)  # the run the 03:00 slot started
    assert not due(nightly, last, at(2024, 5, 1, 23, 0))
    assert not due(nightly, last, at(2024, 5, 2, 2, 59, 59))
    assert due(nightly, last, at(2024, 5, 2, 3, 0))
    assert due(nightly, last, at(2024, 5, 9, 12, 0))  # missed slots fire once, not once each
    assert not due(
        nightly, at(2024, 5, 2, 3, 0), at(2024, 5, 2, 3, 0, 40)
    )  # the interval is open at last_run
    assert due(
        nightly, datetime(2024, 5, 2, 4, 59), datetime(2024, 5, 3, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    )


def test_due_with_no_last_run_once_any_time_has_passed() -> None:
    assert due(Cron.parse("0 3 * * *"), None, at(2024, 5, 1, 0, 0))
    assert not due(Cron.parse("0 0 2 1 *"), None, datetime(1, 1, 1, 12, 0, tzinfo=UTC))


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0 3 * *", ["has 4 fields", "needs 5", "minute hour day-of-month month day-of-week", "'0 3 * * *'"]),
        ("0 0 3 * * *", ["has 6 fields", "needs 5"]),
        ("", ["has 0 fields"]),
        ("0 25 * * *", ["hour 25 is out of range 0-23", "'0 3 * * *' (03:00 UTC every day)"]),
        ("60 * * * *", ["minute 60 is out of range 0-59", "for example"]),
        ("0 0 0 * *", ["day-of-month 0 is out of range 1-31"]),
        ("0 0 1 13 *", ["month 13 is out of range 1-12 or JAN-DEC"]),
        ("0 0 * * 8", ["day-of-week 8 is out of range 0-7 (0 and 7 are Sunday) or SUN-SAT", "MON-FRI"]),
        ("*/0 * * * *", ["minute step 0 in '*/0' is out of range 1-59", "'*/15 * * * *'"]),
        ("0 */24 * * *", ["hour step 24 in '*/24' is out of range 1-23"]),
        ("0 1-5/x * * *", ["hour step '1-5/x' needs a whole number", "(allowed: 0-23)"]),
        ("0 17-9 * * *", ["hour range '17-9' runs backwards", "(allowed: 0-23)"]),
        ("0 3 * * MON-", ["day-of-week 'MON-' is not a number", "SUN-SAT"]),
        ("0 3 * * FUN", ["day-of-week 'FUN' is not a number or name", "SUN-SAT"]),
        ("0 3 * JAN-FOO *", ["month 'FOO' is not a number or name", "JAN-DEC"]),
        ("0 MON * * *", ["hour 'MON' is not a number or name", "0-23"]),
        ("x 3 * * *", ["minute 'x' is not a number, range a-b or step */n", "0-59"]),
        ("0 3,,4 * * *", ["hour '' is not a number"]),
        ("0 ३ * * *", ["hour '३' is not a number"]),
        ("@reboot", ["unknown macro '@reboot'", "@daily", "'0 3 * * *'"]),
        ("0 0 30 2 *", ["never matches", "'2'", "'30'", "for example"]),
        ("0 0 31 4,6,9,11 *", ["never matches"]),
    ],
)
def test_bad_expressions_say_which_field_is_wrong_and_how_to_fix_it(text: str, words: list[str]) -> None:
    with pytest.raises(MalformedInput) as raised:
        Cron.parse(text)
    message = str(raised.value)
    assert message.startswith(f"cron {text!r}")
    for word in words:
        assert word in message


def test_impossible_dates_are_fine_when_the_weekday_can_match_instead() -> None:
    # both fields restricted: a day matching either runs, so Thursdays in February do
    assert Cron.parse("0 0 30 2 THU").next_after(at(2024, 1, 1)) == at(2024, 2, 1)
    assert Cron.parse("0 0 29 2 */7").next_after(at(2024, 3, 1)) == at(2032, 2, 29)  # Feb 29 on a Sunday


def test_a_non_string_is_refused() -> None:
    with pytest.raises(MalformedInput, match="a cron expression is a string"):
        Cron.parse(3)  # type: ignore[arg-type]

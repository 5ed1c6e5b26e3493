"""Which range and window a monitoring read covers: clamped to the data, coarsened when too fine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop._time import parse_duration
from mloop.errors import MalformedInput
from mloop.monitoring import ranges, windows

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
FIVE_S = timedelta(seconds=5)


def test_the_range_starts_at_the_first_prediction_and_ends_with_the_window_of_the_last() -> None:
    """The demo: 2.5 minutes of traffic, asked for the last hour, gives 30 windows of 5 s, not 720."""
    first, last = NOW - timedelta(minutes=3), NOW - timedelta(seconds=31)
    found = ranges.choose(NOW - timedelta(hours=1), NOW, None, FIVE_S, until_given=False, data=(first, last))
    assert found.since == windows.floor(first, FIVE_S) and found.until == windows.floor(last, FIVE_S) + FIVE_S
    assert found.window == FIVE_S and found.count == 30 and found.note == ""


def test_an_until_given_is_kept_and_a_range_after_the_data_is_left_alone() -> None:
    data = (NOW - timedelta(days=2), NOW - timedelta(days=1))
    kept = ranges.choose(NOW - timedelta(days=3), NOW, None, timedelta(hours=1), until_given=True, data=data)
    assert kept.since == data[0] and kept.until == NOW  # a day of empty windows after the data: shown
    later = ranges.choose(
        NOW - timedelta(hours=2), NOW, None, timedelta(hours=1), until_given=False, data=data
    )
    assert (later.since, later.until) == (NOW - timedelta(hours=2), NOW)  # nothing to clamp to: as asked


def test_the_documented_command_works_with_5_second_windows_and_says_it_coarsened() -> None:
    """`mloop monitor drift fraud --since 7d` over a week of traffic: 120,960 windows of 5 s."""
    data = (NOW - timedelta(days=8), NOW)
    found = ranges.choose(NOW - timedelta(days=7), NOW, None, FIVE_S, until_given=False, data=data)
    assert found.count <= ranges.AUTO_WINDOWS and found.window % FIVE_S == timedelta(0)
    assert found.window == timedelta(minutes=15)  # the smallest step of the ladder that fits
    assert "120,960 windows of 5s" in found.note and "15m" in found.note and "--window" in found.note


def test_a_named_window_is_kept_and_too_many_of_it_is_an_error_naming_the_option() -> None:
    data = (NOW - timedelta(days=8), NOW)
    kept = ranges.choose(NOW - timedelta(days=1), NOW, "10s", FIVE_S, until_given=False, data=data)
    assert kept.window == timedelta(seconds=10) and kept.note == ""  # 8,640 windows: more than the auto limit
    with pytest.raises(MalformedInput, match="--window") as raised:
        ranges.choose(NOW - timedelta(days=7), NOW, "5s", FIVE_S, until_given=False, data=data)
    advice = str(raised.value).split("for example --window ")[1].split(",")[0]
    again = ranges.choose(NOW - timedelta(days=7), NOW, advice, FIVE_S, until_given=False, data=data)
    assert again.count <= windows.MAX_WINDOWS  # the advice works


@settings(max_examples=200, deadline=None)
@given(
    back=st.integers(min_value=1, max_value=400 * 86_400),
    configured=st.sampled_from(["1s", "5s", "7s", "1m", "5m", "1h", "1d"]),
    first_back=st.integers(min_value=0, max_value=400 * 86_400),
    length=st.integers(min_value=0, max_value=400 * 86_400),
    until_given=st.booleans(),
)
def test_a_default_window_always_fits_and_stays_a_multiple(back: int, configured: str, first_back: int,
                                                            length: int, until_given: bool) -> None:  # fmt: skip
    size = parse_duration(configured) or FIVE_S
    first = NOW - timedelta(seconds=first_back)
    data = (first, min(NOW, first + timedelta(seconds=length)))
    found = ranges.choose(NOW - timedelta(seconds=back), NOW, None, size, until_given=until_given, data=data)
    assert found.count <= ranges.AUTO_WINDOWS
    assert found.window % size == timedelta(0)
    assert bool(found.note) == (found.window != size)
    assert found.until <= NOW and found.since == windows.floor(found.since, found.window)
    windows.tumbling(found.since, found.until, found.window, complete=False)  # never too many

"""The freshness SLI: one event a minute, bad when the view's data was too old or the online store was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mloop.monitoring.sli import freshness_events

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)  # the first materialization finished then
MINUTE = timedelta(minutes=1)


def _bad_minutes(events) -> list[datetime]:  # type: ignore[no-untyped-def]
    return [ts.to_pydatetime() for ts, good in zip(events["ts"], events["good"], strict=True) if not good]


def test_a_minute_is_bad_when_the_newest_materialized_data_is_older_than_max_age() -> None:
    # materialized data up to T0 (at T0), then nothing: stale once it is more than 10 minutes old
    events = freshness_events([(T0, T0)], timedelta(minutes=10), T0 + 30 * MINUTE)
    assert len(events) == 30 and events["total"].sum() == 30
    first_bad = min(_bad_minutes(events))
    assert first_bad - T0 > timedelta(minutes=10) and first_bad - T0 <= timedelta(minutes=11)
    # a new materialization makes the following minutes good again
    events = freshness_events(
        [(T0, T0), (T0 + 20 * MINUTE, T0 + 20 * MINUTE)], timedelta(minutes=10), T0 + 30 * MINUTE
    )
    assert all(T0 + 10 * MINUTE < ts <= T0 + 21 * MINUTE for ts in _bad_minutes(events))


def test_minutes_of_an_online_store_outage_are_bad_with_fresh_data() -> None:
    fresh = [(T0 + k * MINUTE, T0 + k * MINUTE) for k in range(60)]  # materialized every minute
    down = (T0 + timedelta(minutes=19, seconds=40), T0 + timedelta(minutes=20, seconds=10))  # 12:20:10-40
    events = freshness_events(fresh, timedelta(hours=1), T0 + 60 * MINUTE, [down])
    # the one minute holding the outage (its event is stamped at the minute's end)
    assert _bad_minutes(events) == [datetime(2026, 3, 1, 12, 21, tzinfo=UTC)]
    ongoing = freshness_events(fresh, timedelta(hours=1), T0 + 60 * MINUTE, [(down[0], None)])
    assert len(_bad_minutes(ongoing)) == 40  # from 12:21 to 13:00: still down now
    assert freshness_events(fresh, timedelta(hours=1), T0 + 60 * MINUTE)["good"].all()


@given(
    start=st.integers(min_value=0, max_value=3_600 * 2),
    length=st.integers(min_value=0, max_value=3_600),
)
def test_exactly_the_minutes_an_outage_touches_are_bad(start: int, length: int) -> None:
    fresh = [(T0 + k * MINUTE, T0 + k * MINUTE) for k in range(200)]
    began, ended = T0 + timedelta(seconds=start), T0 + timedelta(seconds=start + length)
    events = freshness_events(fresh, timedelta(hours=1), T0 + 120 * MINUTE, [(began, ended)])
    for ts, good in zip(events["ts"], events["good"], strict=True):
        minute_start, minute_end = ts.to_pydatetime() - MINUTE, ts.to_pydatetime()
        touched = began <= minute_end and ended > minute_start  # (minute_start, minute_end] meets it
        assert bool(good) == (not touched), (ts, began, ended)

"""The online computation of window aggregations: the window bounds, nulls, empty windows, `last`'s
tie-breaks, and times as microseconds. (That it equals the offline value is proved in test_offline.py.)"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.errors import SchemaError
from mloop.features.aggregate import aggregate, to_micros

EVENTS = [(10, 1, 4), (20, 1, None), (20, 2, 1), (30, None, 4), (40, 5, math.nan)]


@pytest.mark.parametrize(
    ("fn", "start", "end", "expected"),
    [
        ("count", 0, 40, 3),  # None and NaN are not counted
        ("count", 10, 30, 2),  # (10, 30]: the lower bound is exclusive, the upper inclusive
        ("sum", 0, 40, 9),
        ("mean", 0, 40, 3.0),
        ("min", 0, 40, 1),
        ("max", 0, 40, 4),
        ("distinct_count", 0, 40, 2),
        ("last", 0, 40, 4),  # the NaN at 40 is ignored
        ("last", 0, 29, 1),
        ("last", 0, 20, 1),
    ],
)
def test_values(fn: str, start: int, end: int, expected: object) -> None:
    assert aggregate(fn, EVENTS, start, end) == expected


@pytest.mark.parametrize(("fn", "expected"), [("count", 0), ("distinct_count", 0), ("sum", 0), ("mean", None),
                                              ("min", None), ("max", None), ("last", None)])  # fmt: skip
def test_empty_window(fn: str, expected: object) -> None:
    assert aggregate(fn, EVENTS, 40, 50) == expected
    assert aggregate(fn, [], 0, 100) == expected
    assert aggregate(fn, [(5, 5, None)], 0, 100) == expected


def test_sums_of_integers_stay_integers() -> None:
    assert isinstance(aggregate("sum", [(1, 1, 2), (2, 2, 3)], 0, 2), int)
    assert isinstance(aggregate("mean", [(1, 1, 2), (2, 2, 3)], 0, 2), float)


def test_last_breaks_ties_on_created_then_value() -> None:
    assert aggregate("last", [(5, 2, "late"), (5, 1, "early")], 0, 5) == "late"
    assert aggregate("last", [(5, 1, "x"), (5, None, "z")], 0, 5) == "x"  # no created time sorts first
    assert aggregate("last", [(5, 1, "b"), (5, 1, "c"), (5, 1, "a")], 0, 5) == "c"  # complete tie: largest


def test_unknown_function() -> None:
    with pytest.raises(SchemaError, match="Unknown aggregation 'median'; use one of count"):
        aggregate("median", EVENTS, 0, 10)


@given(
    st.lists(st.tuples(st.integers(0, 20), st.one_of(st.none(), st.integers(0, 3)),
                       st.one_of(st.none(), st.integers(-5, 5))), max_size=20),
    st.integers(0, 20), st.integers(0, 10), st.randoms(),
)  # fmt: skip
def test_order_of_events_does_not_matter(events, end, width, random) -> None:
    shuffled = list(events)
    random.shuffle(shuffled)
    for fn in ("count", "sum", "mean", "min", "max", "last", "distinct_count"):
        assert aggregate(fn, events, end - width, end) == aggregate(fn, shuffled, end - width, end)
    inside = sorted(
        (ts, -1 if c is None else c, v) for ts, c, v in events if end - width < ts <= end and v is not None
    )
    assert aggregate("last", events, end - width, end) == (inside[-1][2] if inside else None)


def test_to_micros() -> None:
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    assert to_micros(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0
    assert to_micros(pd.Timestamp("1970-01-01 00:00:00.000001999", tz="UTC")) == 1  # truncated
    assert to_micros(pd.Timestamp("1969-12-31 23:59:59.9999995", tz="UTC")) == -1  # down, before 1970
    assert to_micros(pd.Timestamp("2026-01-01", tz="Europe/Berlin")) == to_micros(
        datetime(2025, 12, 31, 23, tzinfo=UTC)
    )
    assert to_micros(123) == 123
    with pytest.raises(SchemaError, match=r"naive.*tz_localize\(\"UTC\"\)"):
        to_micros(datetime(2026, 1, 1))
    with pytest.raises(SchemaError, match="Cannot read '2026-01-01' as a time"):
        to_micros("2026-01-01")

"""The towers' inputs: the pandas reference (what feature views compute) and the training's NumPy
snapshots agree, so a model trained on one serves on the other."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.examples.recsys.features import (
    USER_COLUMNS,
    category_codes,
    click_events,
    daily_user_features,
    feature_frame,
    item_inputs,
    user_features,
)  # fmt: skip
from mloop.examples.recsys.generate import CATEGORIES, World


@settings(max_examples=8, deadline=None)
@given(day=st.integers(min_value=0, max_value=12))
def test_the_daily_snapshots_equal_the_window_sums_at_each_midnight(
    world: World, stream: pd.DataFrame, day: int
) -> None:
    snapshots = daily_user_features(stream, world.items, len(world.users), world.days, world.start)
    ids = world.users["user_id"].to_numpy()
    expected = user_features(stream, world.items, world.start + timedelta(days=day), users=ids)
    got = feature_frame(snapshots[day], ids)
    assert list(got.columns) == list(expected.columns) == USER_COLUMNS
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    if day == 12:  # the last midnight counts every click in 7 and 12 days
        clicks = stream[stream["event"] == "click"]
        assert expected["clicks_30d"].sum() == len(clicks)
        assert (
            expected["clicks_7d"].sum()
            == (clicks["ts"] > clicks["ts"].max().floor("D") - timedelta(days=6)).sum()
        )


def test_click_events_mark_the_category_of_each_click(world: World, stream: pd.DataFrame) -> None:
    events = click_events(stream, world.items)
    marks = events[[f"cat_{c}" for c in CATEGORIES]].to_numpy()
    assert (marks.sum(axis=1) == 1).all()
    first = stream[stream["event"] == "click"].iloc[0]
    category = world.items.set_index("item_id").loc[first["item_id"], "category"]
    assert events.iloc[0][f"cat_{category}"] == 1 and events.iloc[0]["user_id"] == first["user_id"]


def test_item_inputs_are_numeric_and_unknown_categories_are_named(world: World) -> None:
    inputs = item_inputs(world.items)
    assert list(inputs.columns) == ["item_id", "category_code", "price"]
    assert inputs["category_code"].between(0, len(CATEGORIES) - 1).all()
    with pytest.raises(ValueError, match=r"Unknown categories \['pets'\]"):
        category_codes(pd.Series(["books", "pets"]))
    assert np.array_equal(category_codes(pd.Series(["music", "books"])), [1, 0])

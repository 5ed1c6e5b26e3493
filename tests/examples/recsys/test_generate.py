"""The recsys world: seeded, causal where the story needs it (tastes, popularity, the shift, position)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.examples.recsys.generate import CATEGORIES, EVENTS, World


def test_the_same_seed_gives_the_same_world_and_stream() -> None:
    a, b = World.make(users=60, items=100, days=4, seed=2), World.make(users=60, items=100, days=4, seed=2)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.interactions(), b.interactions())
    other = World.make(users=60, items=100, days=4, seed=3).interactions()
    assert not other["item_id"].head(50).equals(a.interactions()["item_id"].head(50))


def test_the_stream_is_time_ordered_and_each_click_follows_its_impression(
    world: World, stream: pd.DataFrame
) -> None:
    assert list(stream.columns) == ["user_id", "item_id", "ts", "event", "request_id"]
    assert set(stream["event"]) == set(EVENTS)
    assert stream["ts"].is_monotonic_increasing
    shown = set(
        zip(*(stream.loc[stream["event"] == "impression", c] for c in ("request_id", "item_id")), strict=True)
    )
    for event in ("click", "purchase"):
        rows = stream[stream["event"] == event]
        assert set(zip(rows["request_id"], rows["item_id"], strict=True)) <= shown
    # Items appear only once they are in the catalogue.
    day = (stream["ts"] - pd.Timestamp(world.start)) // pd.Timedelta(days=1)
    added = world.items.set_index("item_id")["day_added"].reindex(stream["item_id"]).to_numpy()
    assert (added <= day.to_numpy()).all()
    assert (world.items["day_added"] > 0).any() and (world.items["day_added"] == 0).any()
    assert set(world.items["category"]) <= set(CATEGORIES) and world.items["price"].gt(0).all()


def test_popular_items_take_a_large_share_of_the_clicks(stream: pd.DataFrame) -> None:
    counts = stream.loc[stream["event"] == "click", "item_id"].value_counts()
    top = counts.head(max(1, len(counts) // 20)).sum() / counts.sum()
    assert top > 0.15  # the top 5 % of clicked items, versus 5 % were clicks spread evenly


def test_the_taste_shift_moves_clicks_to_other_categories(world: World, stream: pd.DataFrame) -> None:
    clicks = stream[stream["event"] == "click"]
    category = world.items.set_index("item_id")["category"].reindex(clicks["item_id"]).to_numpy()
    after = ((clicks["ts"] - pd.Timestamp(world.start)) // pd.Timedelta(days=1)).to_numpy() >= world.shift_day
    favourite = (
        pd.Series(category[~after])
        .groupby(clicks["user_id"].to_numpy()[~after])
        .agg(lambda s: s.value_counts().index[0])
    )

    def share(mask: np.ndarray) -> float:
        users = clicks["user_id"].to_numpy()[mask]
        known = np.isin(users, favourite.index)
        return float(np.mean(category[mask][known] == favourite.reindex(users[known]).to_numpy()))

    assert share(~after) > 0.5 and share(after) < 0.25  # the old favourite shelf loses its fans
    assert not np.allclose(world.taste(1, world.shift_day - 1), world.taste(1, world.shift_day))


def test_the_simulated_user_clicks_what_it_likes_high_in_the_list(world: World) -> None:
    user, day = 11, 3
    taste = world.taste(user, day)[0]
    catalogue = world.available(day)
    ranked = catalogue[np.argsort(-(world.latents[catalogue - 1] @ taste))]
    liked, disliked = ranked[:20], ranked[-20:]
    assert world.click_probability(np.array([user]), liked[None], day).mean() > 10 * (
        world.click_probability(np.array([user]), disliked[None], day).mean()
    )
    same = np.full((1, 10), liked[0])
    assert np.all(np.diff(world.click_probability(np.array([user]), same, day)[0]) < 0)  # position bias
    rng = np.random.default_rng(0)
    answers = [world.respond(user, liked, day, rng) for _ in range(200)]
    assert all(set(a.clicks) <= set(liked) for a in answers)
    assert all(a.purchase is None or a.purchase in a.clicks for a in answers)
    assert 0.2 < np.mean([a.clicks.size > 0 for a in answers]) < 1.0
    assert any(a.purchase is not None for a in answers)
    assert world.respond(user, np.array([], dtype="int64"), day, rng).clicks.size == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"days": 10, "shift_day": 10}, "shift_day must be in 1..9"),
    ({"dim": 8}, "dim must exceed the 8 categories"),
])  # fmt: skip
def test_impossible_sizes_are_refused_with_the_range(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        World.make(users=10, items=10, **kwargs)


def test_days_generated_alone_are_the_days_of_the_whole_stream(world: World, stream: pd.DataFrame) -> None:
    day = (stream["ts"] - pd.Timestamp(world.start)) // pd.Timedelta(days=1)
    alone = world.interactions([7, 8])
    pd.testing.assert_frame_equal(alone, stream[day.isin([7, 8]).to_numpy()].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"days \[12\] are outside the world's days 0..11"):
        world.interactions([3, 12])


def test_unknown_ids_are_named_not_read_as_other_rows(world: World) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"Unknown item ids \[0, 601\]: this world's items are 1..600"):
        world.respond(1, np.array([5, 0, 601]), day=2, rng=rng)
    with pytest.raises(ValueError, match=r"Unknown user ids \[301\]"):
        world.respond(301, np.array([5]), day=2, rng=rng)


def test_a_visit_buys_one_item_at_most(stream: pd.DataFrame) -> None:
    purchases = stream[stream["event"] == "purchase"]
    assert len(purchases) > 0 and purchases["request_id"].is_unique

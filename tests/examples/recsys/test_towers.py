"""The two-tower model: unit embeddings, seeded training, and a user tower that registers through the torch
flavour and serves one embedding per row of feature columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop import Project
from mloop.examples.recsys.features import ITEM_COLUMNS, USER_COLUMNS, item_inputs
from mloop.examples.recsys.generate import World
from mloop.examples.recsys.towers import Towers, train_towers


@pytest.fixture(scope="module")
def towers(world: World, stream: pd.DataFrame) -> Towers:
    # With hashed user ids: the export path with an embedding lookup on a remainder, served from raw ids.
    return train_towers(
        stream, world.items, users=len(world.users), start=world.start, days=(0, 6), dim=16, user_buckets=64
    )


def test_embeddings_are_unit_vectors_of_the_chosen_size(towers: Towers, world: World) -> None:
    ids, matrix = towers.item_embeddings(world.items)
    assert np.array_equal(ids, world.items["item_id"].to_numpy()) and matrix.shape == (len(world.items), 16)
    users = towers.user_embeddings(towers.example)
    assert users.shape == (len(towers.example), 16) and towers.dim == 16
    np.testing.assert_allclose(np.linalg.norm(np.vstack([matrix, users]), axis=1), 1.0, rtol=1e-5)
    assert towers.trained_on == (0, 6) and np.isfinite(towers.loss)


def test_training_is_seeded(towers: Towers, world: World, stream: pd.DataFrame) -> None:
    again = train_towers(
        stream, world.items, users=len(world.users), start=world.start, days=(0, 6), dim=16, user_buckets=64
    )
    np.testing.assert_array_equal(
        again.item_embeddings(world.items)[1], towers.item_embeddings(world.items)[1]
    )
    other = train_towers(stream, world.items, users=len(world.users), start=world.start, days=(0, 6), dim=16,
                         seed=1)  # fmt: skip
    assert not np.allclose(other.item_embeddings(world.items)[1], towers.item_embeddings(world.items)[1])


def test_the_user_tower_registers_and_serves_an_embedding_per_row(
    towers: Towers, sqlite_project: Project
) -> None:
    version = sqlite_project.models.register("user_tower", towers.user_model(), input_example=towers.example)
    assert version.signature is not None
    assert [c.name for c in version.signature.inputs] == USER_COLUMNS
    loaded = sqlite_project.models.load("user_tower", version=version.version)
    shuffled = towers.example[USER_COLUMNS[::-1]]  # columns are taken by name, not position
    got = loaded.predict(shuffled)
    np.testing.assert_allclose(got, towers.user_embeddings(towers.example), rtol=1e-5, atol=1e-6)
    one = loaded.predict({c: float(towers.example[c].iloc[0]) for c in USER_COLUMNS})  # one JSON-like row
    np.testing.assert_allclose(one[0], got[0], rtol=1e-5, atol=1e-6)


def test_days_without_clicks_are_refused(world: World, stream: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="days must be"):
        train_towers(stream, world.items, users=len(world.users), start=world.start, days=(5, 5))
    with pytest.raises(ValueError, match="No clicks in days 40..49"):
        train_towers(stream, world.items, users=len(world.users), start=world.start, days=(40, 50))


def test_the_item_tower_registers_to_embed_new_items(
    towers: Towers, world: World, sqlite_project: Project
) -> None:
    arriving = world.new_items(world.days - 1)
    assert len(arriving) > 0 and (arriving["day_added"] == world.days - 1).all() and world.new_items(0).empty
    example = item_inputs(world.items.head(8))
    version = sqlite_project.models.register("item_tower", towers.item_model(), input_example=example)
    assert version.signature is not None and [c.name for c in version.signature.inputs] == ITEM_COLUMNS
    got = sqlite_project.models.load("item_tower").predict(item_inputs(arriving))
    np.testing.assert_allclose(got, towers.item_embeddings(arriving)[1], rtol=1e-5, atol=1e-6)

"""The agriculture generator: seeded, causal where the case's models need it, and broken where sensors
break."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.examples.agriculture.generate import SEASON_DAYS, World


@pytest.fixture(scope="module")
def world() -> World:
    return World.make(fields=12, seed=5)


def test_the_same_seed_draws_the_same_world(world: World) -> None:
    again = World.make(fields=12, seed=5)
    pd.testing.assert_frame_equal(world.fields, again.fields)
    pd.testing.assert_frame_equal(world.weather(2025), again.weather(2025))
    assert not world.weather(2025).equals(World.make(fields=12, seed=6).weather(2025))


def test_a_drought_season_is_drier_and_warmer_and_yields_less(world: World) -> None:
    normal, drought = world.weather(2025), world.weather(2025, drought=True)
    assert len(normal) == len(drought) == 12 * SEASON_DAYS
    assert drought["rain_mm"].sum() < 0.7 * normal["rain_mm"].sum()
    assert drought["tmax"].mean() > normal["tmax"].mean() + 1
    none = world.disease(2025, share=0.0)
    good = world.yields(2025, normal, world.ndvi(2025, normal, none), none)
    bad = world.yields(2025, drought, world.ndvi(2025, drought, none), none)
    assert bad["yield_t_ha"].mean() < 0.9 * good["yield_t_ha"].mean()


def test_sensors_report_hourly_and_some_break(world: World) -> None:
    weather = world.weather(2025)
    clean = world.sensors(2025, weather, faults=False)
    assert len(clean) == 12 * SEASON_DAYS * 24 and clean["ts"].dt.tz is not None
    assert clean["moisture"].between(0, 100).all()
    broken = World.make(fields=40, seed=5).sensors(2025, World.make(fields=40, seed=5).weather(2025))
    runs = broken.groupby("sensor_id")["moisture"].apply(
        lambda s: (s.diff() == 0).astype(int).groupby((s.diff() != 0).cumsum()).sum().max()
    )
    assert runs.max() >= 40  # a stuck sensor repeats itself for two days
    assert (~broken["moisture"].between(0, 100)).any() or (
        broken["moisture"].diff().abs() > 30
    ).any()  # spikes
    assert broken.groupby("sensor_id").size().min() < SEASON_DAYS * 24  # a silent one


def test_diseased_tiles_differ_in_the_red_and_near_infrared(world: World) -> None:
    tiles, labels = world.tiles(200, seed=1)
    assert tiles.shape == (200, 4, 16, 16) and tiles.dtype == np.float32 and set(labels) == {0, 1}
    ratio = tiles[:, 3].min(axis=(1, 2)) / (tiles[:, 2].max(axis=(1, 2)) + 1e-3)
    assert ratio[labels == 1].mean() < 0.7 * ratio[labels == 0].mean()

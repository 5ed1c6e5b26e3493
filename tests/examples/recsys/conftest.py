"""One small seeded world and its stream for the module's tests (generated once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from mloop.examples.recsys.generate import World


@pytest.fixture(scope="session")
def world() -> World:
    return World.make(users=300, items=600, days=12, shift_day=6, seed=5)


@pytest.fixture(scope="session")
def stream(world: World) -> pd.DataFrame:
    return world.interactions()

"""The endpoint table's heap: what start-up loaded is frozen out of the garbage collector's full passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mloop.serving.endpoints import settle_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_heap_moves_every_live_object_out_of_the_collected_generations(unfrozen: None) -> None:
    held = [{"model": [i]} for i in range(10_000)]  # a loaded model's objects, say (tracked by the GC)
    settle_heap()
    assert gc.get_freeze_count() >= len(held)
    # Nothing of it is left for a full collection to walk (asked of the objects, not of gc.get_count(),
    # which another thread's allocations in this process move at any time).
    collected = {id(o) for generation in (1, 2) for o in gc.get_objects(generation=generation)}
    assert not any(id(item) in collected for item in held)

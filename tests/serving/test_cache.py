"""The response cache's key: equal inputs share it, different ones never do."""

from __future__ import annotations

import numpy as np

from mloop.serving.cache import cache_key


def test_the_answers_cache_tells_apart_arrays_that_differ_in_the_middle() -> None:
    a = np.zeros((1, 64, 64), np.float32)
    b = a.copy()
    b[0, 32, 32] = 1.0
    assert str(a) == str(b)  # what the cache keyed on before: NumPy elides the middle
    assert cache_key([{"image": a}], None) != cache_key([{"image": b}], None)
    assert cache_key([{"image": a}], None) == cache_key([{"image": a.copy()}], None)
    assert cache_key([{"image": a}], None) != cache_key([{"image": a.astype(np.float64)}], None)

"""The one value encoding every online backend stores: what is written reads back the same, whichever
parser reads it (orjson for strict JSON, the standard library for NaN, ±inf and integers over 64 bits)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mloop.features.online.base import decode, encode

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),  # past 64 bits: orjson refuses, json reads them
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.floats(allow_nan=False, width=32), max_size=4),
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=8))
def test_values_read_back_as_written(row: dict[str, Any]) -> None:
    text = encode(row)
    back = decode(text)
    assert back.keys() == row.keys()
    assert all(_same(back[k], json.loads(text)[k]) for k in row)  # as the standard library reads it
    assert all(_same(back[k], v) for k, v in row.items() if not isinstance(v, list))


def test_non_finite_floats_and_big_integers_read_back() -> None:
    row = {"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": 2**70 + 1, "e": -(2**63) - 1}
    back = decode(encode(row))
    assert math.isnan(back["a"]) and back["b"] == math.inf and back["c"] == -math.inf
    assert back["d"] == 2**70 + 1 and back["e"] == -(2**63) - 1 and isinstance(back["e"], int)
    assert decode(b'{"x": 1.5}') == {"x": 1.5}  # bytes, as Redis answers

"""The request fields an on-demand view reads reach its function as the view declares them, whether the
values arrive already of their type (taken as they are) or not (converted or refused by the signature)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mloop as ml
from mloop.features.lookup import _request_signature, request_columns
from mloop.models.signature import SignatureError

_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


def _view(dtype: str) -> ml.OnDemandView:
    return ml.OnDemandView("v", inputs=[], request=[ml.Field("x", dtype)], fn=lambda f: f,
                           outputs=[ml.Field("y", "float64")])  # fmt: skip


def _frame(odv: ml.OnDemandView, values: list[Any]) -> pd.DataFrame | type[Exception]:
    rows = pd.RangeIndex(len(values))
    try:
        return pd.DataFrame(request_columns(odv, {"x": values}, rows), index=rows)
    except SignatureError:
        return SignatureError


def _checked(odv: ml.OnDemandView, values: list[Any]) -> pd.DataFrame | type[Exception]:
    """What the signature alone makes of the values: the frame the function must get, or its refusal."""
    rows = pd.RangeIndex(len(values))
    try:
        return _request_signature(odv).validate(pd.DataFrame({"x": values}, index=rows))
    except SignatureError:
        return SignatureError


@given(dtype=st.sampled_from(["float64", "int64", "bool", "string"]),
       values=st.lists(_VALUES, min_size=1, max_size=4) | st.sampled_from([[1.5], [7], [True], ["a"]]))  # fmt: skip
def test_request_fields_reach_the_function_as_the_signature_would_type_them(
    dtype: str, values: list[Any]
) -> None:
    odv = _view(dtype)
    got, expected = _frame(odv, values), _checked(odv, values)
    if expected is SignatureError or got is SignatureError:
        assert got is expected, (got, expected)
        return
    assert isinstance(got, pd.DataFrame) and isinstance(expected, pd.DataFrame)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("values", [[float("inf")], ["12.5"], [2**64]])
def test_a_request_field_of_the_wrong_type_is_refused_with_the_field_named(values: list[Any]) -> None:
    with pytest.raises(SignatureError, match="x"):
        request_columns(_view("float64" if values != [2**64] else "int64"), {"x": values}, pd.RangeIndex(1))

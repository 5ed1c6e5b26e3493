"""The serving fast path (plain JSON columns, no DataFrame) gives the general path's answers exactly."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.models.lightgbm import LightGBMFlavour
from mloop.models.row_check import columns_conform, conforms
from mloop.models.signature import ColumnSpec, Signature, SignatureError, infer

DEVICES = ["ios", "android", "web"]


@pytest.fixture(scope="module")
def model() -> tuple[lightgbm.LGBMClassifier, Signature]:
    rng = np.random.default_rng(0)
    n = 2_000
    frame = pd.DataFrame({
        "amount": rng.gamma(2.0, 30.0, n),
        "count": rng.integers(0, 50, n),
        "ratio": rng.random(n).astype("float32"),
        "foreign": rng.random(n) < 0.2,
        "device": pd.Categorical(rng.choice(DEVICES, n)),
        "shop": pd.Categorical(rng.integers(0, 5, n)),
    })  # fmt: skip
    frame.loc[::17, "amount"] = np.nan
    label = ((frame.amount.fillna(0) > 80) ^ (frame.device == "web") ^ frame.foreign).astype(int)
    fitted = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1).fit(frame, label)
    return fitted, infer(frame, fitted.predict_proba(frame)[:, 1], nullable=True)


def _value(kind: str) -> st.SearchStrategy[object]:
    number = st.one_of(st.integers(-1000, 1000), st.floats(-1e3, 1e3, allow_nan=False), st.none())
    return {
        "amount": number,
        "count": st.one_of(st.integers(0, 60), st.none()),
        "ratio": st.one_of(st.floats(0, 1, width=32), st.none()),
        "foreign": st.one_of(st.booleans(), st.none()),
        "device": st.one_of(st.sampled_from([*DEVICES, "tv"]), st.none()),
        "shop": st.one_of(st.integers(0, 7), st.none()),
    }[kind]


@st.composite
def columns(draw: st.DrawFn) -> dict[str, list[object]]:
    rows = draw(st.integers(1, 5))
    names = ["amount", "count", "ratio", "foreign", "device", "shop"]
    return {name: [draw(_value(name)) for _ in range(rows)] for name in names}


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns())
def test_the_row_predictor_answers_what_the_dataframe_path_answers(
    model: tuple[lightgbm.LGBMClassifier, Signature], columns: dict[str, list[object]]
) -> None:
    fitted, signature = model
    flavour = LightGBMFlavour()
    fast = flavour.row_predictor(fitted, signature)
    assert fast is not None
    assert columns_conform(signature.inputs, columns)
    slow = flavour.predict(fitted, signature.validate(pd.DataFrame(columns)))
    np.testing.assert_allclose(fast(columns), slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        (ColumnSpec("x", "float64"), [1, 2.5, 2**53]),
        (ColumnSpec("x", "float64", nullable=True), [None, float("nan")]),
        (ColumnSpec("x", "float64", allow_non_finite=True), [float("inf")]),
        (ColumnSpec("x", "int64"), [0, -(2**63)]),
        (ColumnSpec("x", "int32", nullable=True), [None, 2**31 - 1]),
        (ColumnSpec("x", "bool"), [True, False]),
        (ColumnSpec("x", "string", categories=("a",)), ["a", "unseen"]),
    ],
)
def test_values_the_signature_takes_as_they_are_conform(spec: ColumnSpec, values: list[object]) -> None:
    assert conforms(spec, values)
    Signature([spec]).validate(pd.DataFrame({"x": pd.Series(values, dtype=object)}))


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        (ColumnSpec("x", "float64"), ["1.5"]),
        (ColumnSpec("x", "float64"), [True]),
        (ColumnSpec("x", "float64"), [None]),
        (ColumnSpec("x", "float64"), [float("inf")]),
        (ColumnSpec("x", "float64"), [2**53 + 1]),
        (ColumnSpec("x", "float32"), [1e39]),
        (ColumnSpec("x", "int32"), [2**31]),
        (ColumnSpec("x", "int64"), [1.0]),  # whole floats are the general path's judgement
        (ColumnSpec("x", "bool"), [1]),
        (ColumnSpec("x", "string"), [3]),
        (ColumnSpec("x", "timestamp"), ["2026-12-03T10:00:00Z"]),
    ],
)
def test_anything_else_takes_the_general_path(spec: ColumnSpec, values: list[object]) -> None:
    assert not conforms(spec, values)


def test_a_missing_required_column_does_not_conform_and_the_general_path_names_it() -> None:
    signature = Signature([ColumnSpec("a", "float64"), ColumnSpec("b", "float64", required=False)])
    assert columns_conform(signature.inputs, {"a": [1.0]})
    assert not columns_conform(signature.inputs, {"b": [1.0]})
    with pytest.raises(SignatureError, match="a: expected float64"):
        signature.validate(pd.DataFrame({"b": [1.0]}))

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.errors import SchemaError
from mloop.models.signature import ColumnSpec, Signature, SignatureError, infer


def problems(exc: pytest.ExceptionInfo[SignatureError]) -> dict[str, str]:
    return {p.name: p.got for p in exc.value.problems}


# ---- inference ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (pd.Series([1, 2], dtype="int8"), "int32"),
        (pd.Series([1, 2], dtype="int32"), "int32"),
        (pd.Series([1, 2], dtype="uint32"), "int64"),
        (pd.Series([1, 2], dtype="int64"), "int64"),
        (pd.Series([1, None], dtype="Int64"), "int64"),
        (pd.Series([1.5, 2], dtype="float32"), "float32"),
        (pd.Series([1.5, 2]), "float64"),
        (pd.Series([True, False]), "bool"),
        (pd.Series(["a", "b"]), "string"),
        (pd.Series(["a", None], dtype=object), "string"),
        (pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)), "timestamp"),
        (pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"])), "timestamp"),
        (pd.Series([date(2024, 1, 1), date(2024, 1, 2)]), "date"),
        (pd.Series(pd.Categorical(["x", "y"])), "string"),
    ],
)
def test_infer_maps_pandas_dtypes_to_the_dataset_vocabulary(values: pd.Series, dtype: str) -> None:
    spec = infer(pd.DataFrame({"c": values})).inputs[0]
    assert spec.dtype == dtype
    assert spec.required
    assert spec.nullable == bool(values.isna().any())


def test_infer_records_nulls_infinities_categories_and_outputs() -> None:
    frame = pd.DataFrame(
        {"a": [1.0, np.nan, 2.0], "b": [1.0, np.inf, 0.0], "k": pd.Categorical(["u", "v", "u"])}
    )
    sig = infer(frame, np.array([[0.1, 0.9], [0.5, 0.5], [0.2, 0.8]]), output_names=["no", "yes"])
    a, b, k = sig.inputs
    assert (a.nullable, a.allow_non_finite) == (True, False)
    assert (b.nullable, b.allow_non_finite) == (False, True)
    assert k.categories == ("u", "v")
    assert [(o.name, o.dtype) for o in sig.outputs] == [("no", "float64"), ("yes", "float64")]
    assert [o.name for o in infer(frame, np.zeros(3)).outputs] == ["prediction"]


def test_infer_refuses_types_it_cannot_check_one_line_per_column() -> None:
    frame = pd.DataFrame({"ok": [1.0, 2.0], "wait": pd.to_timedelta([1, 2], unit="s"), "empty": [None, None]})
    with pytest.raises(SignatureError) as exc:
        infer(frame)
    assert set(problems(exc)) == {"wait", "empty"}
    assert "pass signature= explicitly" in str(exc.value)


# ---- validation --------------------------------------------------------------------------------------------

SIG = Signature(
    [
        ColumnSpec("amount", "float64"),
        ColumnSpec("count", "int32"),
        ColumnSpec("country", "string"),
        ColumnSpec("flag", "bool"),
        ColumnSpec("ts", "timestamp"),
    ]
)


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [1.5, 2.0],
            "count": np.array([3, 4], dtype="int32"),
            "country": ["DE", "FR"],
            "flag": [True, False],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
        }
    )


def test_validate_reorders_to_the_signature_and_drops_extra_columns() -> None:
    frame = good()[["ts", "flag", "country", "count", "amount"]].assign(request_id=["r1", "r2"])
    out = SIG.validate(frame)
    assert list(out.columns) == SIG.names
    pd.testing.assert_frame_equal(out, good())


def test_extra_columns_can_be_refused() -> None:
    with pytest.raises(SignatureError) as exc:
        SIG.validate(good().assign(surprise=1), extra="error")
    assert problems(exc) == {"surprise": "an extra column"}


def test_every_bad_field_gets_its_own_line_with_name_expected_and_got() -> None:
    frame = good().drop(columns=["country"])
    frame["amount"] = ["abc", "2"]
    frame["count"] = [1.5, 2.0]
    frame["flag"] = [1, 0]
    frame["ts"] = ["2024-01-01", "not a time"]
    with pytest.raises(SignatureError) as exc:
        SIG.validate(frame)
    lines = str(exc.value).splitlines()
    assert lines[0] == "The input does not match the model's signature (5 fields):"
    assert lines[1:6] == [
        "  amount: expected float64, got string",
        "  count: expected int32, got float64 with values that are not whole numbers (1.5 in row 0)",
        "  country: expected string, got nothing: the column is missing",
        "  flag: expected bool, got int64",
        "  ts: expected timestamp, got text that is not an ISO 8601 time ('not a time' in row 1)",
    ]
    assert exc.value.to_dict()[0] == {"field": "amount", "expected": "float64", "got": "string"}
    assert isinstance(exc.value, SchemaError)


def test_numbers_are_cast_only_where_no_value_changes() -> None:
    sig = Signature([ColumnSpec("f", "float64"), ColumnSpec("f32", "float32"), ColumnSpec("i", "int32")])
    out = sig.validate(pd.DataFrame({"f": [1, 2], "f32": [3, 4], "i": [5.0, 6.0]}))
    assert out.dtypes.astype(str).tolist() == ["float64", "float32", "int32"]
    assert out.to_dict("list") == {"f": [1.0, 2.0], "f32": [3.0, 4.0], "i": [5, 6]}

    with pytest.raises(SignatureError) as exc:
        sig.validate(pd.DataFrame({"f": [2**60], "f32": [2**25], "i": [2**40]}))
    got = problems(exc)
    assert "too large for float64" in got["f"] and "too large for float32" in got["f32"]
    assert got["i"] == "int64 outside the int32 range"


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1])
@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_integers_past_int64_are_refused_not_wrapped_around(value: int, dtype: str) -> None:
    with pytest.raises(SignatureError) as exc:
        Signature([ColumnSpec("x", dtype)]).validate(pd.DataFrame({"x": [value]}))
    assert "outside the int64 range" in problems(exc)["x"] or "too large for float64" in problems(exc)["x"]


def test_nulls_pass_only_where_nullable() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 3.0]})
    with pytest.raises(SignatureError) as exc:
        Signature([ColumnSpec("x", "float64")]).validate(frame)
    assert problems(exc) == {"x": "null values (rows 1)"}
    out = Signature([ColumnSpec("x", "float64", nullable=True)]).validate(frame)
    assert out["x"].isna().tolist() == [False, True, False]


def test_infinity_passes_only_where_allowed() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf]})
    with pytest.raises(SignatureError) as exc:
        Signature([ColumnSpec("x", "float64")]).validate(frame)
    assert problems(exc) == {"x": "infinite values (inf in row 1, -inf in row 2)"}
    Signature([ColumnSpec("x", "float64", allow_non_finite=True)]).validate(frame)


def test_timestamps_arrive_as_text_and_leave_as_utc() -> None:
    sig = Signature([ColumnSpec("ts", "timestamp"), ColumnSpec("d", "date")])
    out = sig.validate(pd.DataFrame({"ts": ["2024-05-01T10:00:00+02:00"], "d": ["2024-05-01"]}))
    assert out["ts"].iloc[0] == pd.Timestamp(datetime(2024, 5, 1, 8, tzinfo=UTC))
    assert out["d"].iloc[0] == date(2024, 5, 1)


def test_optional_columns_may_be_left_out() -> None:
    sig = Signature([ColumnSpec("a", "float64"), ColumnSpec("b", "float64", required=False)])
    out = sig.validate(pd.DataFrame({"a": [1.0]}))
    assert list(out.columns) == ["a", "b"] and out["b"].isna().all()


def test_categories_of_training_are_kept_and_unseen_ones_become_null() -> None:
    sig = Signature([ColumnSpec("k", "string", categories=("u", "v"))])
    out = sig.validate(pd.DataFrame({"k": ["v", "new"]}))
    assert list(out["k"].cat.categories) == ["u", "v"]
    assert out["k"].iloc[0] == "v" and pd.isna(out["k"].iloc[1])


def test_a_signature_names_each_column_once() -> None:
    with pytest.raises(SchemaError, match="repeated: a"):
        Signature([ColumnSpec("a", "float64"), ColumnSpec("a", "int64")])
    with pytest.raises(SchemaError, match="dtype 'decimal' is not one of"):
        ColumnSpec("a", "decimal")


# ---- properties over generated frames ---------------------------------------------------------------------

_FINITE = st.floats(-1e12, 1e12, allow_nan=False)
_COLUMN = st.sampled_from(["int64", "float64", "bool", "string", "timestamp"])


def _values(dtype: str, rows: int, draw: st.DrawFn) -> pd.Series:
    if dtype == "int64":
        return pd.Series(
            draw(st.lists(st.integers(-(2**40), 2**40), min_size=rows, max_size=rows)), dtype="int64"
        )
    if dtype == "float64":
        return pd.Series(draw(st.lists(_FINITE, min_size=rows, max_size=rows)), dtype="float64")
    if dtype == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype="bool")
    if dtype == "string":
        return pd.Series(draw(st.lists(st.text(max_size=5), min_size=rows, max_size=rows)), dtype="str")
    seconds = draw(st.lists(st.integers(0, 2**31), min_size=rows, max_size=rows))
    return pd.Series(pd.to_datetime(seconds, unit="s", utc=True))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(1, 6))
    kinds = draw(st.lists(_COLUMN, min_size=1, max_size=6))
    return pd.DataFrame({f"c{i}_{kind}": _values(kind, rows, draw) for i, kind in enumerate(kinds)})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.randoms())
def test_what_a_signature_was_inferred_from_passes_it_in_any_column_order(frame: pd.DataFrame, rnd) -> None:
    sig = infer(frame)
    assert [c.dtype for c in sig.inputs] == [str(c).split("_", 1)[1] for c in frame.columns]
    assert Signature.from_dict(sig.to_dict()) == sig
    columns = list(frame.columns)
    rnd.shuffle(columns)
    pd.testing.assert_frame_equal(sig.validate(frame[columns]), frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(), st.data())
def test_each_broken_field_is_named_and_only_those(frame: pd.DataFrame, data: st.DataObject) -> None:
    sig = infer(frame)
    broken = frame.copy()
    expected: dict[str, str] = {}
    for column in frame.columns:
        how = data.draw(st.sampled_from(["keep", "drop", "wrong-type", "null"]), label=str(column))
        kind = str(column).split("_", 1)[1]
        if how == "drop":
            broken = broken.drop(columns=[column])
            expected[str(column)] = "missing"
        elif how == "wrong-type":
            # strings are never read as numbers or times, and numbers never as strings
            broken[column] = 1.5 if kind == "string" else "text"
            expected[str(column)] = {"string": "float64", "timestamp": "ISO 8601"}.get(kind, "string")
        elif how == "null":
            broken[column] = broken[column].astype(object)
            broken.loc[broken.index[0], column] = None
            expected[str(column)] = "null values"
    if kind_has_float := [c for c in broken.columns if str(c).endswith("_float64") and c not in expected]:
        broken.loc[broken.index[-1], kind_has_float[0]] = np.inf
        expected[str(kind_has_float[0])] = "infinite values"
    if not expected:
        sig.validate(broken)
        return
    with pytest.raises(SignatureError) as exc:
        sig.validate(broken)
    got = problems(exc)
    assert set(got) == set(expected)
    for name, fragment in expected.items():
        assert fragment in got[name]
    assert len(str(exc.value).splitlines()) == len(expected) + 2


_NUMBER_SPECS = st.sampled_from(["int64", "float64", "float32", "bool", "int32"])
_CELLS = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(st.tuples(_NUMBER_SPECS, st.booleans(), st.booleans()), min_size=1, max_size=4),
    sent=st.lists(st.sampled_from(["int64", "float64", "float32", "bool", "int32"]), min_size=4, max_size=4),
    cells=st.lists(_CELLS, min_size=8, max_size=8),
)
def test_a_frame_already_in_shape_validates_as_the_general_path_does(
    specs: list[tuple[str, bool, bool]], sent: list[str], cells: list[float]
) -> None:
    """The hot path that hands a ready frame back unchanged answers exactly as the column-by-column path
    (forced here by an extra column, which validation ignores): same values, dtypes, or same refusal."""
    signature = Signature(
        [ColumnSpec(f"c{i}", d, nullable=n, allow_non_finite=f) for i, (d, n, f) in enumerate(specs)]
    )
    columns = {}
    for i in range(len(specs)):
        raw = pd.Series(cells[2 * i : 2 * i + 2])
        try:
            columns[f"c{i}"] = raw.astype(sent[i])
        except (ValueError, OverflowError):
            columns[f"c{i}"] = raw
    frame = pd.DataFrame(columns)
    general: pd.DataFrame | str
    try:
        general = signature.validate(frame.assign(extra_column=0))
    except SignatureError as exc:
        general = str(exc)
    try:
        fast: pd.DataFrame | str = signature.validate(frame)
    except SignatureError as exc:
        fast = str(exc)
    if isinstance(general, str) or isinstance(fast, str):
        assert fast == general
    else:
        pd.testing.assert_frame_equal(fast, general)

"""The rules of a schema, evaluated by DuckDB exactly as the engine does: typed view, then failures."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Column, Dataset
from mloop.data import checks


def evaluate(dataset: Dataset, table: pa.Table) -> list[tuple[Any, ...]]:
    """(typed values..., first reason, all reasons) of each row of ``table``, in order."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("src", table.append_column("_row", pa.array(range(table.num_rows), pa.int64())))
        types = {name: str(kind) for name, kind, *_ in con.execute("DESCRIBE src").fetchall()}
        con.execute(f"CREATE VIEW typed AS {checks.typed_view(dataset, 'src', types)}")
        failures = checks.failures_query(dataset, "typed", types, ("_row",), [])
        con.execute(f"CREATE TABLE bad AS {failures}")
        typed = ", ".join(checks.typed_name(i) for i in range(len(dataset.columns)))
        rows = con.sql(
            f"SELECT {typed}, b._reason, b._reasons FROM typed LEFT JOIN bad b USING (_row) ORDER BY _row"
        ).to_arrow_table()
    return [tuple(r.values()) for r in rows.to_pylist()]


def one(column: Column, values: list[Any], type: pa.DataType | None = None, **dataset: Any) -> list[Any]:
    """For each value of a one-column source: the typed value if the row passes, else its reason."""
    ds = Dataset("t", columns=[column], **dataset)
    out = evaluate(ds, pa.table({column.name: pa.array(values, type)}))
    return [value if reason is None else reason for value, reason, _ in out]


INVALID_INT = "n: not a valid int64"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("+12", 12),
        ("-7", -7),
        ("\t13", 13),
        ("007", 7),
        ("1.5", INVALID_INT),
        ("1e3", INVALID_INT),
        ("12abc", INVALID_INT),
        ("1 2", INVALID_INT),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", INVALID_INT),
    ],
)
def test_int_column_from_text_takes_whole_numbers_only(text: str, expected: Any) -> None:
    assert one(Column("n", "int64"), [text]) == [expected]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (12.0, 12),
        (-0.0, 0),
        (1.5, INVALID_INT),
        (-2.25, INVALID_INT),
        (math.nan, INVALID_INT),
        (math.inf, INVALID_INT),
        (1e19, INVALID_INT),
    ],
)
def test_int_column_from_floats_takes_whole_values_only(number: float, expected: Any) -> None:
    assert one(Column("n", "int64"), [number], pa.float64()) == [expected]


def test_int32_column_rejects_what_does_not_fit() -> None:
    assert one(Column("n", "int32"), [2**31 - 1, 2**31], pa.int64()) == [2**31 - 1, "n: not a valid int32"]


_padded_ints = st.tuples(
    st.integers(-(2**63), 2**63 - 1), st.sampled_from(["", " ", "  ", "\t"]), st.booleans()
).map(lambda t: (t[0], f"{t[1]}{'+' if t[2] and t[0] >= 0 else ''}{t[0]}{t[1]}"))


# One DuckDB query per example, many values per query: the properties cost little time.
@settings(max_examples=20)
@given(st.lists(_padded_ints, min_size=1, max_size=40))
def test_any_int64_written_as_text_reads_back_exactly(cases: list[tuple[int, str]]) -> None:
    assert one(Column("n", "int64"), [text for _, text in cases]) == [value for value, _ in cases]


@settings(max_examples=20)
@given(st.lists(st.decimals(-1e9, 1e9, places=3).filter(lambda d: d != d.to_integral_value()), min_size=1))
def test_fractions_are_never_integers(values: list[Any]) -> None:
    assert one(Column("n", "int64"), [str(v) for v in values]) == [INVALID_INT] * len(values)
    assert one(Column("n", "int64"), [float(v) for v in values], pa.float64()) == [INVALID_INT] * len(values)


@settings(max_examples=20)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_finite_floats_written_as_text_read_back_exactly(values: list[float]) -> None:
    assert one(Column("x", "float64"), [repr(v) for v in values]) == values


@pytest.mark.parametrize("allow", [False, True])
def test_nan_and_infinity_fail_unless_allowed(allow: bool) -> None:
    column = Column("x", "float64", allow_non_finite=allow)
    from_text = one(column, ["nan", "inf", "-inf", "1.5"])
    from_floats = one(column, [math.nan, math.inf, -math.inf, 1.5], pa.float64())
    for got in (from_text, from_floats):
        assert got[3] == 1.5
        if allow:
            assert math.isnan(got[0]) and got[1:3] == [math.inf, -math.inf]
        else:
            assert got[:3] == ["x: not a finite number"] * 3


@pytest.mark.parametrize(
    ("column", "values", "type", "expected"),
    [
        (
            Column("n", "int64", min=0, max=10),
            [-1, 0, 10, 11],
            pa.int64(),
            ["n: below min 0", 0, 10, "n: above max 10"],
        ),
        # A fractional bound is not rounded to the column's type: 2 is above 1.5.
        (Column("n", "int64", max=1.5), [1, 2], pa.int64(), [1, "n: above max 1.5"]),
        (Column("n", "int64", min=-0.5), [-1, 0], pa.int64(), ["n: below min -0.5", 0]),
        (Column("x", "float64", min=0.1), [0.1, 0.09], pa.float64(), [0.1, "x: below min 0.1"]),
        # A float32 value equal to the bound as written passes (compared as float32, not float64).
        (Column("x", "float32", max=0.1), ["0.1"], None, [pytest.approx(0.1)]),
        (
            Column("d", "date", min=date(2024, 1, 1), max=date(2024, 12, 31)),
            ["2023-12-31", "2024-01-01", "2025-01-01"],
            None,
            ["d: below min 2024-01-01", date(2024, 1, 1), "d: above max 2024-12-31"],
        ),
    ],
)
def test_min_and_max_are_inclusive(column: Column, values: list[Any], type: Any, expected: list[Any]) -> None:
    assert one(column, values, type) == expected


def test_timestamp_bounds_compare_instants_in_utc() -> None:
    column = Column("t", "timestamp", min=datetime(2024, 1, 1), max="2024-01-31T23:00:00-01:00")
    got = one(
        column,
        ["2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00+01:00", "2024-02-01 00:00", "2024-02-01 00:01"],
    )
    assert got == [
        datetime(2024, 1, 1, 0, 30, tzinfo=UTC),
        "t: below min 2024-01-01 00:00:00+00:00",
        datetime(2024, 2, 1, tzinfo=UTC),
        "t: above max 2024-02-01 00:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-03-01T23:30:00-02:00", datetime(2024, 3, 2, 1, 30, tzinfo=UTC)),
        ("2024-03-01 10:00:00+05:30", datetime(2024, 3, 1, 4, 30, tzinfo=UTC)),
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01 10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        (" 2024-03-01 ", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-02-30", "t: not a valid timestamp"),
        ("yesterday", "t: not a valid timestamp"),
    ],
)
def test_timestamps_with_offsets_become_utc_and_naive_ones_are_utc(text: str, utc: Any) -> None:
    assert one(Column("t", "timestamp"), [text]) == [utc]


def test_naive_arrow_timestamps_are_taken_as_utc() -> None:
    naive = datetime(2024, 3, 1, 10, 0)
    for unit in ("s", "ms", "us", "ns"):
        assert one(Column("t", "timestamp"), [naive], pa.timestamp(unit)) == [naive.replace(tzinfo=UTC)]
    assert one(Column("t", "timestamp"), [date(2024, 3, 1)], pa.date32()) == [
        datetime(2024, 3, 1, tzinfo=UTC)
    ]


def test_allowed_values_match_exactly_and_null_passes_a_nullable_column() -> None:
    got = one(Column("c", allowed=["DE", "FR"]), ["DE", "de", " DE", None, "FR"])
    reason = "c: not one of the allowed values (DE, FR)"
    assert got == ["DE", reason, reason, None, "FR"]


def test_allowed_fractions_are_not_rounded_on_an_int_column() -> None:
    got = one(Column("n", "int64", allowed=[1.5, 3]), [1, 2, 3], pa.int64())
    assert got == ["n: not one of the allowed values (1.5, 3)"] * 2 + [3]


def test_regex_must_match_the_whole_value() -> None:
    got = one(Column("code", regex="[A-Z]{2}[0-9]"), ["AB1", "AB12", "xAB1", "ab1", None])
    miss = "code: does not match '[A-Z]{2}[0-9]'"
    assert got == ["AB1", miss, miss, miss, None]


@pytest.mark.slow
@settings(max_examples=20)
@given(st.lists(st.text(alphabet="AB1z \n", max_size=5), min_size=1, max_size=30))
def test_regex_agrees_with_a_python_full_match(values: list[str]) -> None:
    import re

    miss = "code: does not match '[A-Z]{2}[0-9]'"
    expected = [v if re.fullmatch("[A-Z]{2}[0-9]", v) else miss for v in values]
    assert one(Column("code", regex="[A-Z]{2}[0-9]"), values) == expected


def test_non_nullable_key_and_timestamp_columns_reject_nulls() -> None:
    ds = Dataset(
        "t",
        columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("a", nullable=False), Column("b")],
        key="id",
        timestamp="ts",
    )
    table = pa.table(
        {
            "id": [None, 1, 2, 3],
            "ts": [date(2024, 1, 1), None, date(2024, 1, 1), date(2024, 1, 1)],
            "a": ["x", "x", None, "x"],
            "b": [None] * 4,
        },
        schema=pa.schema([("id", pa.int64()), ("ts", pa.date32()), ("a", pa.string()), ("b", pa.string())]),
    )
    reasons = [row[-2] for row in evaluate(ds, table)]
    assert reasons == [
        "id: missing value (key may not be null)",
        "ts: missing value (timestamp may not be null)",
        "a: missing value (column may not be null)",
        None,
    ]


def test_reason_is_the_first_failing_rule_and_reasons_lists_all() -> None:
    ds = Dataset(
        "t", columns=[Column("n", "int64", min=0), Column("c", allowed=["x"]), Column("s", regex="[a-z]")]
    )
    (row,) = evaluate(ds, pa.table({"n": [-1], "c": ["y"], "s": ["1"]}))
    assert row[-2] == "n: below min 0"
    assert row[-1] == "n: below min 0; c: not one of the allowed values (x); s: does not match '[a-z]'"


def test_a_value_that_does_not_convert_is_not_also_out_of_range() -> None:
    (row,) = evaluate(
        Dataset("t", columns=[Column("n", "int64", min=0, allowed=[1])]), pa.table({"n": ["x"]})
    )
    assert row[-1] == "n: not a valid int64"

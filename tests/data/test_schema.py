from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mloop import Column, Dataset, SchemaError
from mloop.data.schema import DTYPES, RESERVED, pick_timestamp


def columns(*extra: Column) -> list[Column]:
    return [Column("id", "int64"), Column("ts", "timestamp"), *extra]


# ---- invalid schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Column("a", "decimal128"), ["unknown dtype", "decimal128", "int64", "timestamp"]),
        (lambda: Column("a", "int64", min=5, max=1), ["min 5", "greater than max 1"]),
        (
            lambda: Column("a", "timestamp", min=datetime(2024, 2, 1), max=datetime(2024, 1, 1, tzinfo=UTC)),
            ["greater than max"],
        ),
        (
            lambda: Column("a", "date", min=date(2024, 1, 2), max=datetime(2024, 1, 1, 5)),
            ["greater than max"],
        ),
        (lambda: Column("a", "string", min=0), ["min/max apply to numbers", "string"]),
        (lambda: Column("a", "timestamp", min=0), ["does not fit dtype timestamp", "date or time"]),
        (lambda: Column("a", "float64", max=date(2024, 1, 1)), ["does not fit dtype float64", "number"]),
        (lambda: Column("a", "int64", regex="[0-9]+"), ["regex applies to string columns", "int64"]),
        (lambda: Column("a", regex="[a-"), ["does not compile", "[a-"]),
        (lambda: Column("a", regex="(?=x)x"), ["does not compile as RE2", "lookarounds"]),
        (lambda: Column("a", allowed=[]), ["allowed is empty", "omit it"]),
        (lambda: Column("a", "int64", allowed=["1", 2]), ["not numbers", "int64"]),
        (lambda: Column(" a"), ["no surrounding spaces"]),
        (lambda: Column(""), ["non-empty"]),
        (lambda: Column("a", colour="red"), ["colour", "Extra inputs"]),
        (lambda: Dataset("t", columns=columns(), key=["nope"]), ["key column 'nope'", "not a column"]),
        (
            lambda: Dataset("t", columns=columns(), timestamp="when"),
            ["timestamp column 'when'", "not a column"],
        ),
        (
            lambda: Dataset("t", columns=columns(), timestamp="id"),
            ["timestamp column 'id'", "timestamp or date"],
        ),
        (lambda: Dataset("t", columns=[Column("a"), Column("a", "int64")]), ["'a'", "more than once"]),
        (lambda: Dataset("t", columns=[]), ["no columns"]),
        (lambda: Dataset("t", columns=columns(), extra_columns="keep"), ["extra_columns", "error", "ignore"]),
    ],
)
def test_an_invalid_schema_says_what_is_wrong(make: Any, words: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        make()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("name", sorted(RESERVED))
def test_reserved_column_names_are_refused_with_the_list(name: str) -> None:
    with pytest.raises(ValidationError, match="reserved by mloop") as info:
        Column(name, "int64")
    assert "_reason" in str(info.value)


@given(st.text(max_size=12) | st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
def test_a_dataset_name_must_name_a_plain_folder(name: str) -> None:
    valid = re.fullmatch(r"[a-z][a-z0-9_]{0,99}", name) is not None
    if valid:
        assert Dataset(name, columns=[Column("a")]).name == name
    else:
        with pytest.raises(ValidationError, match="must start with a lowercase letter"):
            Dataset(name, columns=[Column("a")])


@pytest.mark.parametrize("name", ["../up", "a/b", "Upper", "1st", "a" * 101, "a-b", "a b", ""])
def test_dataset_names_that_are_not_folder_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="it names a folder"):
        Dataset(name, columns=[Column("a")])


def test_from_dict_raises_schema_error_naming_the_origin_and_each_problem() -> None:
    spec = {"name": "t", "columns": [{"name": "a", "dtype": "nope"}, {"name": "b", "min": 1}], "key": "a"}
    with pytest.raises(SchemaError) as info:
        Dataset.from_dict(spec, origin="txns.yaml")
    message = str(info.value)
    assert message.startswith("Invalid dataset schema (txns.yaml)")
    assert "columns.0.dtype: unknown dtype 'nope'" in message
    assert "min/max apply to numbers" in message


# ---- valid schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "dtype"),
    [
        ("int", "int64"),
        ("INTEGER", "int64"),
        ("double", "float64"),
        ("str", "string"),
        ("datetime", "timestamp"),
    ],
)
def test_dtype_aliases_name_the_canonical_type(alias: str, dtype: str) -> None:
    assert Column("a", alias).dtype == dtype


def test_key_may_be_one_name() -> None:
    assert Dataset("t", columns=columns(), key="id").key == ("id",)


def test_key_and_timestamp_columns_are_required_whatever_they_declare() -> None:
    ds = Dataset(
        "t",
        columns=columns(Column("x", nullable=True), Column("y", nullable=False)),
        key="id",
        timestamp="ts",
    )
    assert [ds.required(c) for c in ds.columns] == [True, True, False, True]


def test_datetime_bounds_are_utc_and_naive_means_utc() -> None:
    col = Column("t", "timestamp", min=datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert col.min == datetime(2024, 1, 1, tzinfo=UTC)
    assert Column("t", "timestamp", max=datetime(2024, 1, 1)).max == datetime(2024, 1, 1, tzinfo=UTC)


def test_bounds_written_as_text_keep_their_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\ncolumns:\n"
        "  - {name: d, dtype: date, min: '2024-01-01', max: 2024-12-31}\n"
        "  - {name: t, dtype: timestamp, min: '2024-01-01 02:00:00+02:00'}\n"
        "  - {name: n, dtype: int64, min: '20240101'}\n",
        encoding="utf-8",
    )
    d, t, n = Dataset.from_yaml(path).columns
    assert (d.min, d.max) == (date(2024, 1, 1), date(2024, 12, 31))
    assert t.min == datetime(2024, 1, 1, tzinfo=UTC)
    assert n.min == 20240101


def test_column_lookup_names_the_columns_it_has() -> None:
    ds = Dataset("t", columns=columns())
    assert ds.column("ts").dtype == "timestamp"
    with pytest.raises(SchemaError, match=r"no column 'x'; columns: \['id', 'ts'\]"):
        ds.column("x")


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({"a": "int64", "created_at": "timestamp", "ts": "timestamp"}, "ts"),
        ({"a": "int64", "when": "date"}, "when"),
        ({"a": "timestamp", "b": "timestamp"}, None),
        ({"a": "int64"}, None),
    ],
)
def test_pick_timestamp_prefers_well_known_names_then_the_only_one(
    found: dict[str, str], expected: str | None
) -> None:
    assert pick_timestamp(found) == expected


# ---- YAML round trip --------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in RESERVED)
_moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([None, UTC])
).map(lambda d: d.replace(microsecond=0))


@st.composite
def _columns(draw: st.DrawFn, name: str) -> Column:
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    rules: dict[str, Any] = {"nullable": draw(st.booleans()), "description": draw(st.text(max_size=10))}
    if dtype in ("int32", "int64", "float32", "float64"):
        bound = st.integers(-1000, 1000) if dtype.startswith("int") else st.floats(-1e6, 1e6)
        low, high = sorted(draw(st.lists(bound, min_size=2, max_size=2)))
        rules |= draw(st.sampled_from([{}, {"min": low}, {"max": high}, {"min": low, "max": high}]))
        rules["allowed"] = draw(st.none() | st.lists(st.integers(-5, 5), min_size=1, max_size=3))
        if dtype.startswith("float"):
            rules["allow_non_finite"] = draw(st.booleans())
    elif dtype == "timestamp":
        low, high = sorted(
            draw(st.lists(_moments, min_size=2, max_size=2)), key=lambda d: d.replace(tzinfo=UTC)
        )
        rules |= {"min": low, "max": high}
    elif dtype == "date":
        low, high = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2)))
        rules |= {"min": low, "max": high}
    elif dtype == "string":
        rules["allowed"] = draw(st.none() | st.lists(st.text(max_size=5), min_size=1, max_size=3))
        rules["regex"] = draw(st.sampled_from([None, "[A-Z]{2}[0-9]", r"\d+(\.\d+)?", "é|ü"]))
    return Column(name, dtype, **rules)


@st.composite
def _datasets(draw: st.DrawFn) -> Dataset:
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    cols = [draw(_columns(n)) for n in names]
    stamps = [c.name for c in cols if c.dtype in ("timestamp", "date")]
    return Dataset(
        draw(_names),
        columns=cols,
        key=draw(st.lists(st.sampled_from(names), max_size=2, unique=True)),
        timestamp=draw(st.none() | st.sampled_from(stamps)) if stamps else None,
        extra_columns=draw(st.sampled_from(["error", "ignore"])),
        description=draw(st.text(max_size=20)),
    )


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(_datasets())
def test_to_yaml_then_from_yaml_gives_back_the_same_dataset(
    tmp_path_factory: pytest.TempPathFactory, ds: Dataset
) -> None:
    path = tmp_path_factory.mktemp("yaml") / "schema.yaml"
    path.write_text(ds.to_yaml(), encoding="utf-8")
    assert Dataset.from_yaml(path) == ds
    assert Dataset.from_dict(ds.to_dict()) == ds


def test_from_yaml_name_overrides_the_declared_one(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: old\ncolumns:\n  - {name: a, dtype: int}\n", encoding="utf-8")
    assert Dataset.from_yaml(path, name="new").name == "new"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, ["does not exist"]),
        ("columns: [a, b", ["not valid YAML"]),
        ("- a\n- b\n", ["must hold a mapping", "list"]),
        (
            "name: t\ncolumns:\n  - {name: a, dtype: money}\n",
            ["Invalid dataset schema", "s.yaml", "unknown dtype"],
        ),
    ],
)
def test_from_yaml_errors_name_the_file(tmp_path: Path, text: str | None, words: list[str]) -> None:
    path = tmp_path / "s.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        Dataset.from_yaml(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)

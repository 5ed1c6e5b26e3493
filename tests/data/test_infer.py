from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Column, CsvSource, DataFrameSource, Dataset, ParquetSource, Project, SchemaError
from mloop.data.infer import infer_dataset
from mloop.data.sources import Source
from tests.data.helpers import write_csv


def infer(source: Source, tmp_path: Path) -> tuple[Dataset, list[str]]:
    with duckdb.connect() as con:
        return infer_dataset("t", con, source.open(con, tmp_path), text_source=isinstance(source, CsvSource))


def dtypes(ds: Dataset) -> dict[str, str]:
    return {c.name: c.dtype for c in ds.columns}


def test_parquet_types_are_kept(tmp_path: Path) -> None:
    table = pa.table(
        {
            "i8": pa.array([1], pa.int8()),
            "i32": pa.array([1], pa.int32()),
            "i64": pa.array([1], pa.int64()),
            "f32": pa.array([1.5], pa.float32()),
            "f64": [1.5],
            "dec": pa.array([Decimal("1.25")], pa.decimal128(5, 2)),
            "b": [True],
            "s": ["x"],
            "at": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "naive": pa.array([datetime(2024, 1, 1)], pa.timestamp("ns")),
            "day": pa.array([date(2024, 1, 1)], pa.date32()),
        }
    )
    pq.write_table(table, tmp_path / "a.parquet")
    ds, notes = infer(ParquetSource(path=tmp_path / "a.parquet"), tmp_path)
    assert dtypes(ds) == {
        "i8": "int32",
        "i32": "int32",
        "i64": "int64",
        "f32": "float32",
        "f64": "float64",
        "dec": "float64",
        "b": "bool",
        "s": "string",
        "at": "timestamp",
        "naive": "timestamp",
        "day": "date",
    }
    assert ds.timestamp is None  # three candidates, none with a well-known name
    assert len(notes) == 1 and "inferred its schema" in notes[0]


def test_dataframe_types_are_kept_and_text_is_not_parsed(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "x": [0.5, None],
            "ok": [True, False],
            "code": ["1", "2"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
        }
    )
    ds, _ = infer(DataFrameSource(frame=frame), tmp_path)
    assert dtypes(ds) == {"n": "int64", "x": "float64", "ok": "bool", "code": "string", "ts": "timestamp"}


def test_the_timestamp_column_is_required_and_the_others_nullable(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2024-01-01"], utc=True),
            "ts": pd.to_datetime(["2024-01-01"], utc=True),
            "n": [1],
        }
    )
    ds, notes = infer(DataFrameSource(frame=frame), tmp_path)
    assert ds.timestamp == "ts"
    assert [(c.name, c.nullable) for c in ds.columns] == [("created_at", True), ("ts", False), ("n", True)]
    assert "timestamp: ts" in notes[0]


def test_a_type_mloop_does_not_store_is_an_error_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        SchemaError, match=r"Column 'tags' has type STRUCT\(a BIGINT\).*Convert it.*extra_columns: ignore"
    ):
        infer(DataFrameSource(frame=pa.table({"tags": [{"a": 1}]})), tmp_path)


def test_a_list_column_is_inferred_as_a_tensor_and_a_ragged_one_is_an_error(tmp_path: Path) -> None:
    dataset, _ = infer(DataFrameSource(frame=pa.table({"tags": [[1, 2], [3, 4]]})), tmp_path)
    assert dataset.column("tags") == Column("tags", "tensor", shape=(2,), dtype="int64")
    with pytest.raises(SchemaError, match=r"Column 'm' holds lists.*Declare it: Column\('m', 'tensor'"):
        infer(DataFrameSource(frame=pa.table({"m": [[[1], [2, 3]]]})), tmp_path)


def test_a_column_name_no_schema_can_hold_is_an_error_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(
        SchemaError, match=r"column name ' a' must be non-empty.*Rename the column\(s\) in the source"
    ):
        infer(DataFrameSource(frame=pd.DataFrame({" a": [1]})), tmp_path)


def test_csv_text_columns_get_the_type_their_values_have(tmp_path: Path) -> None:
    header = ["n", "x", "when", "flag", "word", "empty", "padded"]
    lines = [
        ["1", "1.5", "2024-01-01T10:00:00+02:00", "true", "a", "", " 7 "],
        ["-2", "2", "2024-01-02", "FALSE", "1", "NA", "8"],
        ["", "nan", "", "", "", "", ""],
    ]
    ds, notes = infer(CsvSource(path=write_csv(tmp_path / "a.csv", header, lines)), tmp_path)
    assert dtypes(ds) == {
        "n": "int64",
        "x": "float64",
        "when": "timestamp",
        "flag": "bool",
        "word": "string",
        "empty": "string",
        "padded": "int64",
    }
    assert ds.timestamp == "when"
    assert len(notes) == 1  # every value parses: nothing to warn about


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(good=st.integers(0, 150), bad=st.integers(0, 6))
def test_a_csv_column_is_numeric_when_at_least_98_percent_of_its_values_are(
    tmp_path_factory: pytest.TempPathFactory, good: int, bad: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("infer")
    values = [str(i) for i in range(good)] + ["n/a?"] * bad
    ds, notes = infer(CsvSource(path=write_csv(tmp_path / "a.csv", ["v"], [[v] for v in values])), tmp_path)
    numeric = good > 0 and good / (good + bad) >= 0.98
    assert dtypes(ds) == {"v": "int64" if numeric else "string"}
    warned = [n for n in notes if "do not parse" in n]
    if numeric and bad:
        assert warned == [
            f"inferred 'v' as int64: {bad} of {good + bad} sampled values do not parse and their rows will be quarantined"
        ]
    else:
        assert warned == []


def test_the_first_ingestion_infers_records_and_applies_the_schema(
    sqlite_project: Project, tmp_path: Path
) -> None:
    lines = [[str(i), f"2024-01-{i % 28 + 1:02d}", f"{i}.5"] for i in range(60)] + [
        ["oops", "2024-01-01", "1"]
    ]
    report = sqlite_project.data.ingest(write_csv(tmp_path / "a.csv", ["id", "ts", "amount"], lines), "txns")
    assert report.notes[0].startswith(
        "dataset 'txns' did not exist: inferred its schema from the source (3 columns, timestamp: ts)"
    )
    assert "inferred 'id' as int64: 1 of 61 sampled values do not parse" in report.notes[1]
    assert (report.rows_accepted, report.by_reason, report.schema_version) == (
        60,
        {"id: not a valid int64": 1},
        1,
    )
    expected = Dataset(
        "txns",
        columns=[
            Column("id", "int64"),
            Column("ts", "timestamp", nullable=False),
            Column("amount", "float64"),
        ],
        timestamp="ts",
    )
    assert sqlite_project.data.schema("txns") == expected
    assert str(sqlite_project.data.read("txns")["ts"].dtype) == "datetime64[us, UTC]"

    later = sqlite_project.data.ingest(
        write_csv(tmp_path / "b.csv", ["id", "ts", "amount"], [["x", "2024-02-01", "1"]]), "txns"
    )
    assert (later.schema_version, later.notes, later.by_reason) == (1, [], {"id: not a valid int64": 1})

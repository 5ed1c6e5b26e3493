from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop import CsvSource, DataFrameSource, MalformedInput, NotFound, ParquetSource, SqlSource
from mloop.data.sources import Opened, Source, as_source


def opened(source: Source, tmp_path: Path) -> tuple[Opened, list[tuple[object, ...]]]:
    """The source opened on a fresh connection, and its rows (raw columns then _row) in order."""
    con = duckdb.connect()
    result = source.open(con, tmp_path)
    rows = con.execute(f"SELECT * FROM {result.view} ORDER BY {', '.join(result.row_key)}").fetchall()
    con.close()
    return result, rows


# ---- as_source ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "delimiter"),
    [
        ("a.csv", CsvSource, ","),
        ("a.CSV", CsvSource, ","),
        ("a.txt", CsvSource, ","),
        ("a.csv.gz", CsvSource, ","),
        ("a.tsv", CsvSource, "\t"),
        ("a.parquet", ParquetSource, None),
        ("a.pq", ParquetSource, None),
        ("parts/*.parquet", ParquetSource, None),
    ],
)
def test_as_source_picks_the_format_from_the_extension(name: str, kind: type, delimiter: str | None) -> None:
    source = as_source(name)
    assert type(source) is kind
    if delimiter is not None:
        assert source.delimiter == delimiter  # type: ignore[attr-defined]


def test_as_source_passes_options_and_keeps_sources_and_wraps_tables() -> None:
    assert as_source("a.csv", delimiter=";").delimiter == ";"  # type: ignore[attr-defined]
    source = SqlSource(query="SELECT 1")
    assert as_source(source) is source
    assert isinstance(as_source(pd.DataFrame({"a": [1]})), DataFrameSource)
    assert isinstance(as_source(pa.table({"a": [1]})), DataFrameSource)


def test_an_unknown_extension_names_the_file_and_the_formats_expected() -> None:
    with pytest.raises(MalformedInput) as info:
        as_source("events.json")
    for words in ("events.json", "expected .csv, .tsv or .parquet", "CsvSource"):
        assert words in str(info.value)


def test_an_object_that_is_no_source_says_what_to_pass() -> None:
    with pytest.raises(
        MalformedInput, match="Cannot ingest a int: pass a file path, a DataFrame or a Source"
    ):
        as_source(42)


# ---- fingerprints -------------------------------------------------------------------------------------


def test_a_fingerprint_is_of_the_content_not_the_name(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("x\n1\n", encoding="utf-8")
    (tmp_path / "c.csv").write_text("x\n2\n", encoding="utf-8")
    a, b, c = (CsvSource(path=tmp_path / f"{n}.csv").fingerprint() for n in "abc")
    assert a == b != c


def test_a_dataframe_fingerprint_follows_its_values() -> None:
    def fingerprint(values: list[int]) -> str:
        return DataFrameSource(frame=pd.DataFrame({"a": values})).fingerprint()

    assert fingerprint([1, 2]) == fingerprint([1, 2]) != fingerprint([2, 1])


def test_fingerprint_reports_progress_up_to_one(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    seen: list[tuple[str, float]] = []
    CsvSource(path=tmp_path / "a.csv").fingerprint(lambda phase, done: seen.append((phase, done)))
    assert seen[-1] == ("fingerprint", 1.0)


# ---- CSV ----------------------------------------------------------------------------------------------


def test_csv_columns_are_text_and_rows_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('\ufeff id , name\n1,"x, y"\n2,NA\n3, padded \n', encoding="utf-8")
    result, rows = opened(CsvSource(path=path), tmp_path)
    assert result.columns == ["id", "name"]
    assert result.types == {"id": "VARCHAR", "name": "VARCHAR"}
    assert rows == [("1", "x, y", 0), ("2", None, 1), ("3", " padded ", 2)]


def test_a_csv_in_another_encoding_is_read_when_told(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("name\ncafé\nœuvre\n".encode("cp1252"))  # cp1252 is no DuckDB encoding: transcoded
    _, rows = opened(CsvSource(path=path, encoding="cp1252"), tmp_path)
    assert [r[0] for r in rows] == ["café", "œuvre"]
    path.write_bytes("name\ncafé\n".encode("latin-1"))
    _, rows = opened(CsvSource(path=path, encoding="latin-1"), tmp_path)
    assert [r[0] for r in rows] == ["café"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_a_csv_in_utf16_or_with_a_bom_is_read_when_told(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("id,name\n1,café\n2,ü\n".encode(encoding))
    result, rows = opened(CsvSource(path=path, encoding=encoding), tmp_path)
    assert result.columns == ["id", "name"]
    assert rows == [("1", "café", 0), ("2", "ü", 1)]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_gzipped_csv_is_read_like_the_plain_one(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress("id,name\n1,café\n".encode(encoding)))
    source = as_source(path, encoding=encoding)
    result, rows = opened(source, tmp_path)
    assert (result.columns, rows) == (["id", "name"], [("1", "café", 0)])


def test_a_gz_file_that_is_not_gzip_says_so(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_text("id\n1\n", encoding="utf-8")
    with pytest.raises(
        MalformedInput, match=r"a\.csv\.gz could not be read: Not a gzipped file.*gzip-compressed"
    ):
        opened(as_source(path), tmp_path)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"id,v\xe9\n1,x\n", "byte 0xe9 at offset 4 of the header line"),
        (b"id,v\xe9", "byte 0xe9 at offset 4"),
    ],
)
def test_a_header_in_the_wrong_encoding_points_at_the_bad_byte(
    tmp_path: Path, content: bytes, where: str
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(MalformedInput, match=rf"not valid utf-8: {where}.*--encoding latin-1"):
        opened(CsvSource(path=path), tmp_path)


def test_an_unknown_encoding_says_which_to_use(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(MalformedInput, match=r"Unknown encoding 'klingon'.*use e.g. utf-8 or latin-1"):
        opened(CsvSource(path=path, encoding="klingon"), tmp_path)


def test_a_tab_separated_file_read_with_commas_suggests_the_tab(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(MalformedInput, match=r"looks delimited by '\\\\t'"):
        opened(CsvSource(path=path), tmp_path)
    _, rows = opened(CsvSource(path=path, delimiter="\t"), tmp_path)
    assert rows == [("1", "2", 0)]


def test_a_header_line_without_names_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("\n1\n", encoding="utf-8")
    with pytest.raises(MalformedInput, match="empty header line: expected the column names"):
        opened(CsvSource(path=path), tmp_path)


@pytest.mark.parametrize("column", ["_row", "_reason", "_date"])
def test_source_columns_named_like_mloop_columns_are_refused(tmp_path: Path, column: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"a,{column}\n1,2\n", encoding="utf-8")
    pq.write_table(pa.table({"a": [1], column: [2]}), tmp_path / "a.parquet")
    sources = [
        CsvSource(path=path),
        ParquetSource(path=tmp_path / "a.parquet"),
        DataFrameSource(frame=pd.DataFrame({"a": [1], column: [2]})),
        SqlSource(query=f"SELECT 1 AS a, 2 AS {column}"),
    ]
    for source in sources:
        with pytest.raises(MalformedInput, match=rf"\['{column}'\] whose names mloop reserves.*Rename them"):
            opened(source, tmp_path)


# ---- Parquet, frames, SQL -----------------------------------------------------------------------------


def test_a_parquet_glob_lists_files_sorted_and_tags_rows_with_their_file(tmp_path: Path) -> None:
    for name, values in (("b", [3]), ("a", [1, 2])):
        pq.write_table(pa.table({"v": values}), tmp_path / f"{name}.parquet")
    source = ParquetSource(path=str(tmp_path / "*.parquet"))
    assert [p.name for p in source.files()] == ["a.parquet", "b.parquet"]
    assert source.describe().startswith("2 Parquet files")
    result, rows = opened(source, tmp_path)
    assert result.row_key == ("_file", "_row")
    assert [(v, Path(f).name, r) for v, r, f in rows] == [
        (1, "a.parquet", 0),
        (2, "a.parquet", 1),
        (3, "b.parquet", 0),
    ]


def test_a_list_of_parquet_files_is_one_source(tmp_path: Path) -> None:
    paths = []
    for name in ("x", "y"):
        pq.write_table(pa.table({"v": [1]}), tmp_path / f"{name}.parquet")
        paths.append(tmp_path / f"{name}.parquet")
    assert ParquetSource(path=paths).files() == paths


@pytest.mark.parametrize("pattern", ["nothing/*.parquet", "missing.parquet"])
def test_missing_parquet_files_are_named(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(NotFound, match="check the path"):
        ParquetSource(path=str(tmp_path / pattern)).files()


def test_parquet_types_are_kept(tmp_path: Path) -> None:
    table = pa.table({"i": pa.array([1], pa.int32()), "f": [1.5], "s": ["x"], "b": [True]})
    pq.write_table(table, tmp_path / "a.parquet")
    result, _ = opened(ParquetSource(path=tmp_path / "a.parquet"), tmp_path)
    assert result.types == {"i": "INTEGER", "f": "DOUBLE", "s": "VARCHAR", "b": "BOOLEAN"}


def test_a_frame_that_arrow_cannot_hold_is_an_error_naming_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [object()]})
    with pytest.raises(
        MalformedInput, match=r"<dataframe>: cannot convert to an Arrow table.*one plain type"
    ):
        opened(DataFrameSource(frame=frame), tmp_path)


def test_an_arrow_record_batch_is_a_source(tmp_path: Path) -> None:
    batch = pa.RecordBatch.from_pydict({"a": [1, 2]})
    _, rows = opened(DataFrameSource(frame=batch), tmp_path)
    assert rows == [(1, 0), (2, 1)]


def test_a_sql_source_numbers_its_rows_and_explains_a_failing_query(tmp_path: Path) -> None:
    _, rows = opened(SqlSource(query="SELECT * FROM range(3) t(n)"), tmp_path)
    assert rows == [(0, 0), (1, 1), (2, 2)]
    assert SqlSource(query="SELECT 1").fingerprint() == SqlSource(query="SELECT 1").fingerprint()
    with pytest.raises(
        MalformedInput, match=r"The SQL source failed.*Check the query: sql: SELECT \* FROM nowhere"
    ):
        opened(SqlSource(query="SELECT * FROM nowhere"), tmp_path)
    with pytest.raises(MalformedInput, match="The SQL source failed"):
        SqlSource(query="SELECT * FROM nowhere").fingerprint()

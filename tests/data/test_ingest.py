"""The ingestion engine: every row read is accepted or quarantined, never lost, and written where it belongs.

The property tests compare what mloop accepts, reads back and quarantines against a pure-Python oracle of
the same rules, for generated CSV text and DataFrames.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop import Column, CsvSource, DataFrameSource, Dataset, MalformedInput, ParquetSource, Project
from mloop.data import ingest as engine
from mloop.data.sources import Source
from tests.data.helpers import csv_line, fresh_name, ingesting, state, write_csv

# ---- the oracle ---------------------------------------------------------------------------------------

NULLS = {"", "NA", "N/A", "NULL", "null", "None"}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
COLUMNS = ["id", "ts", "amount", "qty", "country", "code", "note"]


def schema(name: str) -> Dataset:
    return Dataset(
        name,
        columns=[
            Column("id", "int64"),
            Column("ts", "timestamp"),
            Column("amount", "float64", min=0, max=1000),
            Column("qty", "int32", nullable=False, min=-5, max=100),
            Column("country", allowed=["DE", "FR", "NL"]),
            Column("code", regex="[A-Z]{2}[0-9]"),
            Column("note"),
        ],
        key="id",
        timestamp="ts",
    )


class Invalid(Exception):
    """A value that does not convert to its column's type."""


def _whole(value: float | int, bounds: tuple[int, int]) -> int:
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise Invalid
    if not bounds[0] <= int(value) <= bounds[1]:
        raise Invalid
    return int(value)


def _from_text(dtype: str, text: str) -> Any:
    """What a CSV field means in a column of ``dtype``: the rules a user reads in the docs."""
    if dtype in ("int32", "int64"):
        if not re.fullmatch(r"[ \t]*[+-]?[0-9]+[ \t]*", text):
            raise Invalid
        return _whole(int(text), INT32 if dtype == "int32" else INT64)
    if dtype == "float64":
        try:
            return float(text.strip())
        except ValueError:
            raise Invalid from None
    if dtype == "timestamp":
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise Invalid from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return text


def passes(ds: Dataset, row: dict[str, Any]) -> bool:
    """Whether a row of typed values (``Invalid`` where one did not convert) passes every column rule."""
    for column in ds.columns:
        value = row[column.name]
        if value is Invalid:
            return False
        if value is None:
            if ds.required(column):
                return False
            continue
        if isinstance(value, float) and not math.isfinite(value) and not column.allow_non_finite:
            return False
        if column.min is not None and value < column.min:
            return False
        if column.max is not None and value > column.max:
            return False
        if column.allowed is not None and value not in column.allowed:
            return False
        if column.regex is not None and not re.fullmatch(column.regex, value):
            return False
    return True


@dataclass
class Expected:
    """What one ingestion must do, by the oracle."""

    accepted: dict[int, tuple[Any, ...]] = field(default_factory=dict)  # id -> the other typed values
    rejected_rows: set[int] = field(default_factory=set)  # _row of rows that parsed but fail a rule
    rejected_lines: set[int] = field(default_factory=set)  # file line of CSV rows that do not parse
    rows: int = 0


def expect(ds: Dataset, typed: list[dict[str, Any]], seen: set[int]) -> Expected:
    """Column rules first; then of the rows passing them, the first of each key not ingested before."""
    out = Expected(rows=len(typed))
    for index, row in enumerate(typed):
        if passes(ds, row) and row["id"] not in seen:
            seen.add(row["id"])
            out.accepted[row["id"]] = tuple(row[c] for c in COLUMNS[1:])
        else:
            out.rejected_rows.add(index)
    return out


# ---- generated CSV ------------------------------------------------------------------------------------

_moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)
_offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)


@st.composite
def _ts_text(draw: st.DrawFn) -> str:
    moment = draw(_moments).replace(tzinfo=draw(_offsets))
    style = draw(st.sampled_from(["T", " ", "date", "Z"]))
    if style == "date":
        return moment.date().isoformat()
    if style == "Z" and moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return moment.isoformat(sep="T" if style == "T" else " ")


_BAD_COMMON = ["", "NA", "null", "abc"]
_TOKENS = {
    "id": st.integers(0, 6).map(str)
    | st.sampled_from([*_BAD_COMMON, "1.5", " 3 ", "+2", "9223372036854775808"]),
    "ts": _ts_text() | st.sampled_from([*_BAD_COMMON, "2024-02-30", "2024-13-01", " 2024-05-05 "]),
    "amount": st.floats(-10, 1100).map(repr)
    | st.integers(-5, 1005).map(str)
    | st.sampled_from(
        [*_BAD_COMMON, "nan", "inf", "-inf", "1e400", "-0.0", "0", "1000", "1000.0001", " 5.5 ", "1.5.2"]
    ),
    "qty": st.integers(-10, 110).map(str)
    | st.sampled_from([*_BAD_COMMON, "1.5", "12.0", " 12 ", "+3", "2147483648", "-2147483649"]),
    "country": st.sampled_from(["DE", "FR", "NL", "XX", "de", " DE", *_BAD_COMMON]),
    "code": st.text(alphabet="AB1z", max_size=4) | st.sampled_from(["AB1", "ZZ9", "AB1 ", *_BAD_COMMON]),
    "note": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
    | st.sampled_from(["a,b", 'say "hi"', "two\nlines", "cr\r\nlf", "  padded  ", *_BAD_COMMON]),
}


@st.composite
def csv_batches(draw: st.DrawFn) -> list[list[tuple[str, list[str]]]]:
    """Batches of CSV lines, each ("ok", fields) or ("bad", fields) with too many or too few fields."""
    batches = []
    for _ in range(draw(st.integers(1, 2))):
        lines: list[tuple[str, list[str]]] = []
        for _ in range(draw(st.integers(0, 12))):
            fields = [draw(_TOKENS[c]) for c in COLUMNS]
            shape = draw(st.sampled_from(["ok"] * 6 + ["long", "short"]))
            if shape == "long":
                fields = [f.replace("\n", " ").replace("\r", " ") for f in fields] + ["extra"]
            elif shape == "short":
                fields = [f.replace("\n", " ").replace("\r", " ") for f in fields[: draw(st.integers(1, 6))]]
                if fields == [""]:
                    fields = ["x"]  # an empty line is no row at all
            lines.append(("ok" if shape == "ok" else "bad", fields))
        batches.append(lines)
    return batches


def csv_expectation(ds: Dataset, lines: list[tuple[str, list[str]]], seen: set[int]) -> Expected:
    # DuckDB's line of a row that does not parse counts CSV records (the header is 1), not physical lines:
    # a quoted value spanning two lines before it does not move it.
    typed, bad_lines = [], set()
    for line, (shape, fields) in enumerate(lines, start=2):
        if shape == "bad":
            bad_lines.add(line)
        else:
            row = {}
            for column, text in zip(ds.columns, fields, strict=True):
                try:
                    row[column.name] = None if text in NULLS else _from_text(column.dtype, text)
                except Invalid:
                    row[column.name] = Invalid
            typed.append(row)
    out = expect(ds, typed, seen)
    out.rejected_lines = bad_lines
    out.rows += len(bad_lines)
    return out


# ---- comparing what mloop did with the oracle ---------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_back(project: Project, name: str) -> dict[int, tuple[Any, ...]]:
    frame = project.data.read(name)
    assert list(frame.columns) == COLUMNS
    rows = [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False)]
    assert len({r[0] for r in rows}) == len(rows), "the key is unique across ingestions"
    return {r[0]: r[1:] for r in rows}


def check_report(
    project: Project, source: Any, ds: Dataset, expected: Expected, seen_before: dict[int, Any]
) -> None:
    before = state(project)
    dry = project.data.validate(source, ds)
    assert state(project) == before, "validate() writes nothing"
    report = project.data.ingest(source, ds)

    assert report.rows_read == expected.rows
    assert report.rows_accepted + report.rows_quarantined == report.rows_read
    assert report.rows_accepted == len(expected.accepted)
    assert sum(report.by_reason.values()) == report.rows_quarantined
    assert (dry.rows_read, dry.rows_accepted, dry.rows_quarantined, dry.by_reason) == (
        report.rows_read,
        report.rows_accepted,
        report.rows_quarantined,
        report.by_reason,
    )
    assert dry.dry_run and not report.dry_run

    assert read_back(project, ds.name) == seen_before | expected.accepted

    if report.rows_quarantined == 0:
        assert report.quarantine is None
        return
    quarantined = pd.read_parquet(report.quarantine)
    assert len(quarantined) == report.rows_quarantined
    assert all(isinstance(r, str) and r for r in quarantined["_reason"])
    assert set(quarantined["_row"].dropna().astype(int)) == expected.rejected_rows
    lines = quarantined["_line"].dropna().astype(int) if "_line" in quarantined else []
    assert set(lines) == expected.rejected_lines
    assert (
        project.data.quarantine(ds.name, report.ingest_id)["_reason"].tolist()
        == quarantined["_reason"].tolist()
    )


@pytest.mark.slow
@ingesting
@given(batches=csv_batches())
def test_csv_rows_are_accepted_or_quarantined_exactly_as_the_rules_say(
    sqlite_project: Project, tmp_path: Path, batches: list[list[tuple[str, list[str]]]]
) -> None:
    ds = schema(fresh_name("csv"))
    seen: set[int] = set()
    accepted: dict[int, Any] = {}
    for number, lines in enumerate(batches):
        path = tmp_path / f"{ds.name}_{number}.csv"
        path.write_text(csv_line(COLUMNS) + "".join(csv_line(f) for _, f in lines), encoding="utf-8")
        if number and path.read_bytes() == (tmp_path / f"{ds.name}_0.csv").read_bytes():
            assert project_skips(sqlite_project, path, ds)
            continue
        expected = csv_expectation(ds, lines, seen)
        check_report(sqlite_project, path, ds, expected, accepted)
        accepted |= expected.accepted


def project_skips(project: Project, source: Any, ds: Dataset) -> bool:
    return project.data.ingest(source, ds).skipped


# ---- generated DataFrames -----------------------------------------------------------------------------

_aware = st.builds(lambda m, tz: m.replace(tzinfo=tz), _moments, _offsets.filter(lambda tz: tz is not None))


@st.composite
def frames(draw: st.DrawFn) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A DataFrame and, for each row, the typed values the rules see (pandas' NaN and NaT are missing)."""
    n = draw(st.integers(0, 12))
    naive = draw(st.booleans())

    def col(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    ids = col(st.none() | st.integers(0, 6))
    stamps = col(st.none() | (_moments if naive else _aware))
    amounts = col(st.floats(-10, 1100) | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1000.0]))
    qtys = col(st.integers(-10, 110).map(float) | st.sampled_from([1.5, 12.0, math.nan, -math.inf, 1e12]))
    countries = col(st.none() | st.sampled_from(["DE", "FR", "NL", "XX", "de"]))
    codes = col(st.none() | st.text(alphabet="AB1z", max_size=4))
    notes = col(st.none() | st.text(st.characters(codec="utf-8"), max_size=6))
    frame = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="Int64"),
            "ts": pd.Series(stamps, dtype="datetime64[us]")
            if naive
            else pd.to_datetime(pd.Series(stamps, dtype=object), utc=True),
            "amount": pd.Series(amounts, dtype="float64"),
            "qty": pd.Series(qtys, dtype="float64"),
            "country": pd.Series(countries, dtype=object),
            "code": pd.Series(codes, dtype=object),
            "note": pd.Series(notes, dtype=object),
        }
    )

    def qty(value: float) -> Any:
        if math.isnan(value):
            return None
        try:
            return _whole(value, INT32)
        except Invalid:
            return Invalid

    typed = [
        {
            "id": i,
            "ts": None if t is None else (t.replace(tzinfo=UTC) if naive else t.astimezone(UTC)),
            "amount": None if math.isnan(a) else a,
            "qty": qty(q),
            "country": c,
            "code": k,
            "note": o,
        }
        for i, t, a, q, c, k, o in zip(ids, stamps, amounts, qtys, countries, codes, notes, strict=True)
    ]
    return frame, typed


@pytest.mark.slow
@ingesting
@given(batches=st.lists(frames(), min_size=1, max_size=2))
def test_dataframe_rows_are_accepted_or_quarantined_exactly_as_the_rules_say(
    sqlite_project: Project, batches: list[tuple[pd.DataFrame, list[dict[str, Any]]]]
) -> None:
    ds = schema(fresh_name("frame"))
    seen: set[int] = set()
    accepted: dict[int, Any] = {}
    for number, (frame, typed) in enumerate(batches):
        if number and frame.equals(batches[0][0]) and frame.dtypes.equals(batches[0][0].dtypes):
            assert project_skips(sqlite_project, frame, ds)
            continue
        expected = expect(ds, typed, seen)
        check_report(sqlite_project, frame, ds, expected, accepted)
        accepted |= expected.accepted


# ---- the engine on its own ----------------------------------------------------------------------------


def run(
    ds: Dataset, source: Source, tmp_path: Path, *, existing: list[Path] | None = None, write: bool = True
) -> engine.Outcome:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return engine.run(ds, source, workdir=workdir, ingest_id="i1", existing=existing or [], write=write)


def events(ds_name: str = "t", **extra: Any) -> Dataset:
    return Dataset(
        ds_name,
        columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("v", "int64", min=0)],
        key="id",
        timestamp="ts",
        **extra,
    )


def frame(**columns: list[Any]) -> DataFrameSource:
    return DataFrameSource(frame=pa.table(columns))


def test_missing_declared_columns_are_an_error_naming_them_and_the_fix(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["id", "v"], [["1", "2"]])
    with pytest.raises(MalformedInput) as info:
        run(events(), CsvSource(path=path), tmp_path)
    message = str(info.value)
    for words in (str(path), "missing column(s) ['ts']", "found: ['id', 'v']", "change the schema"):
        assert words in message


def test_extra_columns_are_an_error_unless_the_dataset_ignores_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["id", "ts", "v", "colour"], [["1", "2024-01-01", "2", "red"]])
    with pytest.raises(MalformedInput, match=r"has column\(s\) \['colour'\].*extra_columns: ignore"):
        run(events(), CsvSource(path=path), tmp_path)
    outcome = run(events(extra_columns="ignore"), CsvSource(path=path), tmp_path)
    assert outcome.rows_accepted == 1
    assert outcome.notes == ["ignored column(s) ['colour'] that the schema does not declare"]
    (written,) = outcome.files
    assert pq.read_schema(tmp_path / "work" / "out" / str(written["path"])).names == ["id", "ts", "v"]


def test_accepted_rows_are_partitioned_by_their_utc_date(tmp_path: Path) -> None:
    stamps = ["2024-01-01T23:30:00-02:00", "2024-01-02T00:30:00+02:00", "2024-01-02 12:00:00", "2024-01-03"]
    path = write_csv(tmp_path / "e.csv", ["id", "ts", "v"], [[str(i), t, "1"] for i, t in enumerate(stamps)])
    outcome = run(events(), CsvSource(path=path), tmp_path)
    out = tmp_path / "work" / "out"
    by_folder = {}
    for written in outcome.files:
        parent = Path(str(written["path"])).parent
        by_folder[parent.name] = sorted(pq.read_table(out / str(written["path"])).column("id").to_pylist())
        assert parent.parent.name == "data"
    assert by_folder == {"_date=2024-01-01": [1], "_date=2024-01-02": [0, 2], "_date=2024-01-03": [3]}
    assert outcome.min_ts == datetime(2024, 1, 1, 22, 30, tzinfo=UTC)
    assert outcome.max_ts == datetime(2024, 1, 3, tzinfo=UTC)
    assert sum(int(w["rows"]) for w in outcome.files) == 4


def test_date_timestamps_partition_by_the_date(tmp_path: Path) -> None:
    ds = Dataset("t", columns=[Column("day", "date"), Column("v", "int64")], timestamp="day")
    outcome = run(ds, frame(day=[date(2024, 5, 1), date(2024, 5, 2)], v=[1, 2]), tmp_path)
    assert sorted(Path(str(w["path"])).parent.name for w in outcome.files) == [
        "_date=2024-05-01",
        "_date=2024-05-02",
    ]
    assert (outcome.min_ts, outcome.max_ts) == (
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 2, tzinfo=UTC),
    )


def test_without_a_timestamp_everything_goes_to_one_file(tmp_path: Path) -> None:
    ds = Dataset("t", columns=[Column("a", "int64")])
    outcome = run(ds, frame(a=[1, 2, 3]), tmp_path)
    assert [w["path"] for w in outcome.files] == ["data/part-i1-0.parquet"]
    assert outcome.min_ts is None


def test_nothing_accepted_writes_only_the_quarantine(tmp_path: Path) -> None:
    outcome = run(events(), frame(id=[1, 2], ts=[date(2024, 1, 1)] * 2, v=[-1, -2]), tmp_path)
    assert (outcome.rows_accepted, outcome.files, outcome.quarantine) == (0, [], "quarantine/i1.parquet")
    assert not (tmp_path / "work" / "out" / "data").exists()


def test_an_empty_source_writes_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["id", "ts", "v"], [])
    outcome = run(events(), CsvSource(path=path), tmp_path)
    assert (outcome.rows_read, outcome.files, outcome.quarantine, outcome.by_reason) == (0, [], None, {})


def test_without_write_the_counts_are_the_same_and_nothing_is_staged(tmp_path: Path) -> None:
    source = frame(id=[1, 1, 2], ts=[date(2024, 1, 1)] * 3, v=[1, 2, -3])
    dry = run(events(), source, tmp_path, write=False)
    assert not (tmp_path / "work" / "out").exists()
    wet = run(events(), source, tmp_path)
    assert (dry.rows_read, dry.rows_accepted, dry.by_reason) == (
        wet.rows_read,
        wet.rows_accepted,
        wet.by_reason,
    )
    assert (dry.files, dry.quarantine) == ([], None)


def test_the_first_valid_row_of_a_key_wins_and_later_ones_are_quarantined(tmp_path: Path) -> None:
    # Row 0 fails a rule, so row 1 is the first valid row of key 7; row 2 repeats it.
    outcome = run(events(), frame(id=[7, 7, 7, 8], ts=[date(2024, 1, 1)] * 4, v=[-1, 10, 20, 1]), tmp_path)
    assert outcome.by_reason == {"v: below min 0": 1, "key (id): duplicate within the source": 1}
    out = tmp_path / "work" / "out"
    accepted = pd.concat(pd.read_parquet(out / str(w["path"])) for w in outcome.files)
    assert sorted(zip(accepted["id"], accepted["v"], strict=True)) == [(7, 10), (8, 1)]
    quarantine = pd.read_parquet(out / str(outcome.quarantine))
    assert quarantine[["_row", "_reason"]].values.tolist() == [
        [0, "v: below min 0"],
        [2, "key (id): duplicate within the source"],
    ]


def test_keys_already_ingested_are_quarantined(tmp_path: Path) -> None:
    old = tmp_path / "old.parquet"
    pq.write_table(
        pa.table({"id": [1, 2], "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 2), "v": [0, 0]}), old
    )
    outcome = run(
        events(), frame(id=[2, 3, 3], ts=[date(2024, 1, 2)] * 3, v=[5, 5, 5]), tmp_path, existing=[old]
    )
    assert outcome.by_reason == {"key (id): already ingested": 1, "key (id): duplicate within the source": 1}
    assert outcome.rows_accepted == 1


def test_composite_keys_compare_all_their_columns(tmp_path: Path) -> None:
    ds = Dataset("t", columns=[Column("a", "int64"), Column("b"), Column("v", "int64")], key=["a", "b"])
    outcome = run(ds, frame(a=[1, 1, 1, 2], b=["x", "y", "x", "x"], v=[1, 2, 3, 4]), tmp_path)
    assert outcome.by_reason == {"key (a, b): duplicate within the source": 1}


def test_csv_rows_that_do_not_parse_are_quarantined_with_their_line_and_text(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("id,ts,v\n1,2024-01-01,5\n2,2024-01-01,5,extra\n3\n4,2024-01-01,6\n", encoding="utf-8")
    outcome = run(events(), CsvSource(path=path), tmp_path)
    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined) == (4, 2, 2)
    quarantine = pd.read_parquet(tmp_path / "work" / "out" / str(outcome.quarantine))
    assert quarantine["_line"].tolist() == [3, 4]
    assert [raw.rstrip("\r\n") for raw in quarantine["_raw"]] == ["2,2024-01-01,5,extra", "3"]
    assert quarantine["_reason"].tolist() == [
        "csv: row does not parse (too many columns)",
        "csv: row does not parse (missing columns)",
    ]


def test_a_parquet_file_corrupt_inside_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    pq.write_table(
        pa.table({"id": np.arange(200_000) * 7919 % 100_003, "s": [str(i) for i in range(200_000)]}), path
    )
    data = bytearray(path.read_bytes())
    data[len(data) // 4 : len(data) // 2] = b"\xab" * (len(data) // 2 - len(data) // 4)
    path.write_bytes(bytes(data))
    ds = Dataset("t", columns=[Column("id", "int64"), Column("s")])
    with pytest.raises(MalformedInput, match=rf"{re.escape(str(path))} could not be read to the end"):
        run(ds, ParquetSource(path=path), tmp_path)


def test_several_parquet_files_keep_their_rows_apart_and_quarantine_names_the_file(tmp_path: Path) -> None:
    for part, ids in (("a", [1, 2, 3]), ("b", [3, 4, -5])):
        pq.write_table(
            pa.table({"id": ids, "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * 3, "v": [i for i in ids]}),
            tmp_path / f"{part}.parquet",
        )
    outcome = run(events(), ParquetSource(path=str(tmp_path / "*.parquet")), tmp_path)
    assert (outcome.rows_read, outcome.rows_accepted) == (6, 4)
    quarantine = pd.read_parquet(tmp_path / "work" / "out" / str(outcome.quarantine))
    assert sorted(
        zip(
            quarantine["_file"].map(lambda f: Path(f).name),
            quarantine["_row"],
            quarantine["_reason"],
            strict=True,
        )
    ) == [
        ("b.parquet", 0, "key (id): duplicate within the source"),
        ("b.parquet", 2, "v: below min 0"),
    ]

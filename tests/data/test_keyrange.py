"""Per-file key ranges: the duplicate-key check of an append reads fewer files and finds the same keys."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from mloop import Project
from mloop.data import ingest as engine
from mloop.data import keyrange
from mloop.data.schema import Column, Dataset
from mloop.data.sources import DataFrameSource
from mloop.store.schema import IngestionRow
from tests.data.helpers import fresh_name, ingesting

_ints = st.integers(-50, 50)


def _dataset(dtype: str) -> Dataset:
    return Dataset(
        "t", columns=[Column("a", dtype), Column("b", "int64"), Column("v", "int64")], key=["a", "b"]
    )


def _duplicates(dataset: Dataset, new: pa.Table, files: list[Path], ranges: dict[Path, keyrange.KeyRanges],
                workdir: Path) -> dict[str, int]:  # fmt: skip
    workdir.mkdir(parents=True)
    outcome = engine.run(
        dataset, DataFrameSource(frame=new), workdir=workdir, ingest_id="i", existing=files, write=False,
        key_ranges=ranges,
    )  # fmt: skip
    return outcome.by_reason


@pytest.mark.slow
@ingesting
@given(
    dtype=st.sampled_from(["int64", "string"]),
    stored=st.lists(st.lists(st.tuples(_ints, _ints), min_size=1, max_size=6), min_size=1, max_size=5),
    new=st.lists(st.tuples(_ints, _ints), max_size=8),
    recorded=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_pruned_files_give_the_duplicates_a_full_scan_gives(
    tmp_path: Path,
    dtype: str,
    stored: list[list[tuple[int, int]]],
    new: list[tuple[int, int]],
    recorded: list[bool],
) -> None:
    dataset, run = _dataset(dtype), tmp_path / fresh_name("run")
    cast = (lambda a: a) if dtype == "int64" else (lambda a: f"k{a:+04d}"[: 1 + abs(a) % 5])

    def table(pairs: list[tuple[int, int]]) -> pa.Table:
        return pa.table(
            {"a": pa.array([cast(a) for a, _ in pairs]), "b": [b for _, b in pairs], "v": [0] * len(pairs)}
        )

    files, ranges = [], {}
    for i, pairs in enumerate(stored):
        path = run / "data" / f"part-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table(pairs), path)
        files.append(path)
        found = keyrange.from_table(dataset, table(pairs))
        if recorded[i] and found:  # some files as an old dataset left them: no ranges
            ranges[path] = found
    batch = table(new)
    pruned = _duplicates(dataset, batch, files, ranges, run / "pruned")
    full = _duplicates(dataset, batch, files, {}, run / "full")
    assert pruned == full


def test_ranges_of_strings_longer_than_the_statistics_keep_are_still_bounds(tmp_path: Path) -> None:
    dataset = _dataset("string")
    long = "x" * 400
    stored = pa.table({"a": [long + "b", long + "d"], "b": [1, 1], "v": [0, 0]})
    workdir = tmp_path / "first"
    workdir.mkdir()
    outcome = engine.run(dataset, DataFrameSource(frame=stored), workdir=workdir, ingest_id="i", existing=[],
                         write=True)  # fmt: skip
    entry = outcome.files[0]
    path = workdir / "out" / str(entry["path"])
    ranges = {path: entry["keys"]}  # DuckDB's statistics: a truncated least and a raised greatest
    new = pa.table({"a": [long + "d", long + "c", long + "e"], "b": [1, 1, 1], "v": [0, 0, 0]})
    found = _duplicates(dataset, new, [path], ranges, tmp_path / "second")  # type: ignore[arg-type]
    assert found == {"key (a, b): already ingested": 1}


def test_a_dataset_ingested_before_ranges_were_recorded_still_finds_its_duplicates(
    sqlite_project: Project, tmp_path: Path
) -> None:
    project, name = sqlite_project, fresh_name("events")
    dataset = Dataset(name, columns=[Column("id", "int64"), Column("v", "int64")], key="id")
    first = project.data.ingest(pa.table({"id": [1, 2, 3], "v": [0, 0, 0]}), dataset)
    with project.store.write() as session:
        row = session.get(IngestionRow, first.ingest_id)
        assert row is not None and all(entry["keys"]["id"]["min"] == "1" for entry in row.files)
        row.files = [{k: v for k, v in entry.items() if k != "keys"} for entry in row.files]
    with project.store.read() as session:
        assert not any("keys" in e for files in session.scalars(select(IngestionRow.files)) for e in files)
    again = project.data.ingest(pa.table({"id": [3, 4], "v": [1, 1]}), name)
    assert (again.rows_accepted, again.by_reason) == (1, {"key (id): already ingested": 1})
    later = project.data.ingest(pa.table({"id": [4, 9], "v": [2, 2]}), name)  # pruned by the recorded range
    assert (later.rows_accepted, later.by_reason) == (1, {"key (id): already ingested": 1})

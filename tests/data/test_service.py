"""``project.data``: what a user sees across ingestions, failures, crashes and schema changes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from mloop import (
    Actor,
    Column,
    Dataset,
    Grant,
    MalformedInput,
    NotFound,
    PermissionDenied,
    Project,
    SchemaError,
)
from tests.data.helpers import state, stored_files, write_csv

HEADER = ["id", "ts", "v"]


def events(name: str = "events", **extra: Any) -> Dataset:
    return Dataset(
        name,
        columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("v", "int64", min=0)],
        key="id",
        timestamp="ts",
        **extra,
    )


def rows(*ids: int, day: str = "2024-01-01", v: str = "1") -> list[list[str]]:
    return [[str(i), day, v] for i in ids]


def ids(project: Project, name: str = "events") -> list[int]:
    return sorted(project.data.read(name)["id"].tolist())


# ---- malformed files: a clear error, and nothing written ----------------------------------------------


def _parquet(path: Path) -> None:
    pq.write_table(
        pa.table({"id": list(range(500)), "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * 500, "v": [1] * 500}),
        path,
    )


def _truncated(path: Path) -> None:
    _parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


MALFORMED: dict[str, tuple[str, Callable[[Path], Any], dict[str, Any], type[Exception], list[str]]] = {
    "truncated parquet": (
        "t.parquet",
        _truncated,
        {},
        MalformedInput,
        ["not a readable Parquet file", "truncated"],
    ),
    "not parquet": (
        "t.parquet",
        lambda p: p.write_text("id,ts,v\n1,2024-01-01,1\n"),
        {},
        MalformedInput,
        ["not a readable Parquet file", "another format with a .parquet name"],
    ),
    "wrong delimiter": (
        "t.csv",
        lambda p: p.write_text("id;ts;v\n1;2024-01-01;1\n"),
        {},
        MalformedInput,
        ["one column 'id;ts;v'", "looks delimited by ';'", "Pass delimiter=';'"],
    ),
    "latin-1 header": (
        "t.csv",
        lambda p: p.write_bytes(b"id,ts,v\xe9\n1,2024-01-01,1\n"),
        {},
        MalformedInput,
        ["not valid utf-8", "header line", "encoding latin-1"],
    ),
    "latin-1 later row": (
        "t.csv",
        lambda p: p.write_bytes(b"id,ts,v\n1,2024-01-01,1\n2,2024-01-01,caf\xe9\n"),
        {},
        MalformedInput,
        ["not valid utf-8", "line 3", "encoding latin-1"],
    ),
    "empty": (
        "t.csv",
        lambda p: p.write_bytes(b""),
        {},
        MalformedInput,
        ["is empty", "expected a CSV file with a header"],
    ),
    "missing columns": (
        "t.csv",
        lambda p: write_csv(p, ["id", "v"], [["1", "1"]]),
        {},
        MalformedInput,
        ["missing column(s) ['ts']", "found: ['id', 'v']", "change the schema"],
    ),
    "extra columns": (
        "t.csv",
        lambda p: write_csv(p, [*HEADER, "colour"], [["1", "2024-01-01", "1", "red"]]),
        {},
        MalformedInput,
        ["['colour']", "does not declare", "extra_columns: ignore"],
    ),
    "duplicate header": (
        "t.csv",
        lambda p: write_csv(p, ["id", "ts", "v", "v"], [["1", "2024-01-01", "1", "1"]]),
        {},
        MalformedInput,
        ["duplicate", "['v']", "distinct name"],
    ),
    "unknown extension": (
        "t.xlsx",
        lambda p: p.write_bytes(b"PK\x03\x04"),
        {},
        MalformedInput,
        ["Cannot tell the format", "expected .csv, .tsv or .parquet"],
    ),
    "csv not found": ("t.csv", lambda p: None, {}, NotFound, ["does not exist", "check the path"]),
    "parquet not found": ("t.parquet", lambda p: None, {}, NotFound, ["does not exist", "check the path"]),
    "unknown encoding": (
        "t.csv",
        lambda p: write_csv(p, HEADER, rows(1)),
        {"encoding": "klingon"},
        MalformedInput,
        ["Unknown encoding 'klingon'", "utf-8 or latin-1"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("existing", [False, True], ids=["new dataset", "existing dataset"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_a_clear_error_and_writes_nothing(
    sqlite_project: Project, tmp_path: Path, case: str, existing: bool
) -> None:
    filename, make, options, error, words = MALFORMED[case]
    if existing:
        sqlite_project.data.ingest(write_csv(tmp_path / "good.csv", HEADER, rows(1, 2)), events())
    path = tmp_path / "in" / filename
    path.parent.mkdir()
    make(path)
    before = state(sqlite_project)

    with pytest.raises(error) as info:
        sqlite_project.data.ingest(path, events(), **options)

    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert state(sqlite_project) == before
    assert (
        Path(sqlite_project.data.folder("events")).exists() == existing
    )  # a failed first ingestion leaves no folder
    if existing:
        assert ids(sqlite_project) == [1, 2]


def test_a_header_only_file_is_no_error_but_zero_rows(sqlite_project: Project, tmp_path: Path) -> None:
    report = sqlite_project.data.ingest(write_csv(tmp_path / "h.csv", HEADER, []), events())
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined, report.files) == (0, 0, 0, [])
    assert report.ingest_id is not None
    assert sqlite_project.data.read("events").columns.tolist() == HEADER
    assert sqlite_project.data.info("events").ingestions == 1


def test_extra_columns_are_left_out_with_a_note_when_the_dataset_ignores_them(
    sqlite_project: Project, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "x.csv", [*HEADER, "colour"], [["1", "2024-01-01", "1", "red"]])
    report = sqlite_project.data.ingest(path, events(extra_columns="ignore"))
    assert report.rows_accepted == 1
    assert "ignored column(s) ['colour'] that the schema does not declare" in report.notes
    assert sqlite_project.data.read("events").columns.tolist() == HEADER


def test_an_invalid_dataset_name_is_refused_before_any_folder_is_made(
    sqlite_project: Project, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", HEADER, rows(1))
    before = state(sqlite_project)
    for name in ("../escape", "Events"):
        with pytest.raises(SchemaError, match=r"Invalid dataset name.*lowercase letter"):
            sqlite_project.data.ingest(path, name)
    assert state(sqlite_project) == before
    assert not (Path(sqlite_project.data.root).parent / "escape").exists()


def test_the_schema_is_given_once(sqlite_project: Project, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="Pass the schema once"):
        sqlite_project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1)), events(), schema=events())


def test_a_schema_file_names_the_dataset_it_is_given_for(sqlite_project: Project, tmp_path: Path) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text(events("whatever").to_yaml(), encoding="utf-8")
    report = sqlite_project.data.ingest(
        write_csv(tmp_path / "a.csv", HEADER, rows(1)), "clicks", schema=schema
    )
    assert report.dataset == "clicks"
    assert sqlite_project.data.schema("clicks") == events("clicks")


def test_a_reader_may_validate_but_not_ingest(sqlite_project: Project, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", HEADER, rows(1))
    reader = sqlite_project.as_actor(Actor("ann", grants=(Grant("data_scientist"),)))
    before = state(sqlite_project)
    assert reader.data.validate(path, events()).rows_accepted == 1
    with pytest.raises(PermissionDenied, match=r"may not data.write on dataset:events.*data_engineer"):
        reader.data.ingest(path, events())
    assert state(sqlite_project) == before


# ---- idempotency --------------------------------------------------------------------------------------


def test_the_same_content_is_ingested_once(project: Project, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", HEADER, rows(1, 2))
    first = project.data.ingest(path, events())
    after_first = state(project)

    again = project.data.ingest(path, events())
    assert again.skipped and again.ingest_id == first.ingest_id
    assert (again.rows_read, again.rows_accepted, again.files) == (2, 2, first.files)
    assert f"already ingested as {first.ingest_id}" in again.notes[0]
    copy = tmp_path / "renamed.csv"
    shutil.copy(path, copy)
    assert project.data.ingest(copy, "events").skipped
    assert project.data.validate(copy, "events").skipped
    assert state(project) == after_first
    assert len(project.data.ingestions("events")) == 1

    changed = project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(2, 3)), "events")
    assert not changed.skipped and changed.ingest_id != first.ingest_id
    assert (changed.rows_accepted, changed.by_reason) == (1, {"key (id): already ingested": 1})
    assert ids(project) == [1, 2, 3]


def test_ingestions_are_listed_in_order_with_their_counts(project: Project, tmp_path: Path) -> None:
    first = project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1, 2)), events())
    second = project.data.ingest(write_csv(tmp_path / "b.csv", HEADER, rows(2, 5)), "events")
    listed = project.data.ingestions("events")
    assert [r.ingest_id for r in listed] == [first.ingest_id, second.ingest_id]
    assert [(r.rows_read, r.rows_accepted, r.rows_quarantined) for r in listed] == [(2, 2, 0), (2, 1, 1)]
    assert listed[1].by_reason == {"key (id): already ingested": 1}
    assert listed[1].quarantine == second.quarantine and Path(str(second.quarantine)).is_file()
    info = project.data.info("events")
    assert (info.rows, info.quarantined, info.ingestions, info.files) == (3, 1, 2, 2)
    assert info.min_ts == info.max_ts == datetime(2024, 1, 1, tzinfo=UTC)
    assert [d.name for d in project.data.list()] == ["events"]
    events_seen = [e.action for e in project.audit.events(action="data.*")]
    assert events_seen == ["data.ingest", "data.ingest"]


# ---- crashes ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def crash_before_commit(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make the next ingestion fail inside its metadata transaction, after its files were moved into place.
    Yields the files that were in the dataset at that moment."""
    real = project.data._mutate
    seen: list[str] = []

    @contextlib.contextmanager
    def crashing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real(*args, **kwargs) as change:
            yield change
            seen.extend(stored_files(project, suffix=".parquet"))
            raise RuntimeError("power cut")

    monkeypatch.setattr(project.data, "_mutate", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        yield seen
    monkeypatch.undo()


def test_a_crash_before_the_commit_leaves_the_dataset_as_it_was(
    data_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1, 2)), events())
    before = state(data_project)
    with crash_before_commit(data_project, monkeypatch) as moved:
        data_project.data.ingest(
            write_csv(tmp_path / "b.csv", HEADER, rows(3, 1, day="2024-02-02")), "events"
        )
    assert len(moved) == len(before.files) + 2  # a new partition file and a quarantine file were in place
    assert state(data_project) == before
    assert ids(data_project) == [1, 2]
    assert data_project.data.ingest(tmp_path / "b.csv", "events").rows_accepted == 1  # not taken as done


def test_a_crash_in_the_first_ingestion_leaves_no_dataset(
    data_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(data_project)
    with crash_before_commit(data_project, monkeypatch) as moved:
        data_project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1, 1)), events())
    assert moved
    assert state(data_project) == before
    assert not stored_files(data_project, data_project.data.folder("events"))
    with pytest.raises(NotFound, match=r"No dataset named 'events'.*mloop data ingest FILE --dataset NAME"):
        data_project.data.read("events")


def test_orphan_files_are_never_read_and_the_next_ingestion_removes_them(
    data_project: Project, tmp_path: Path
) -> None:
    first = data_project.data.ingest(
        write_csv(tmp_path / "a.csv", HEADER, rows(1, 2, v="-1")[:1] + rows(2)), events()
    )
    folder = data_project.data.folder("events")
    storage = data_project._ctx.data
    committed = stored_files(data_project, folder)
    orphans = [
        storage.join(folder, "_date=2024-01-01", "part-crashed-0.parquet"),
        storage.join(folder, "_date=2030-01-01", "part-crashed-0.parquet"),
        storage.join(folder, "_quarantine", "crashed.parquet"),
    ]
    for orphan in orphans:  # a crash left a full copy of committed rows
        storage.filesystem.create_dir(storage.path(orphan).rsplit("/", 1)[0])
        pafs.copy_files(storage.path(first.files[0]), storage.path(orphan), source_filesystem=storage.filesystem,
                        destination_filesystem=storage.filesystem)  # fmt: skip
    crashed_work = storage.staging(folder) / "crashed"
    (crashed_work / "spill").mkdir(parents=True)
    (crashed_work / "spill" / "big.tmp").write_bytes(b"0" * 1000)

    assert ids(data_project) == [2]
    assert sorted(data_project.data.files("events")) == sorted(first.files)
    assert len(data_project.data.quarantine("events")) == 1

    data_project.data.ingest(write_csv(tmp_path / "b.csv", HEADER, rows(3)), "events")
    assert not any(storage.exists(orphan) for orphan in orphans)
    assert not crashed_work.exists()  # a crashed ingestion's working folder is gone too
    assert set(committed) <= set(stored_files(data_project, folder))
    assert ids(data_project) == [2, 3]


def test_validate_writes_nothing_even_for_a_new_dataset(sqlite_project: Project, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", HEADER, rows(1, 1, 2, v="-3"))
    before = state(sqlite_project)
    dry = sqlite_project.data.validate(path, events())
    assert state(sqlite_project) == before
    assert not Path(sqlite_project.data.folder("events")).exists()
    assert (dry.dry_run, dry.ingest_id, dry.files, dry.quarantine) == (True, None, [], None)
    wet = sqlite_project.data.ingest(path, events())
    assert (dry.rows_read, dry.rows_accepted, dry.rows_quarantined, dry.by_reason) == (
        wet.rows_read,
        wet.rows_accepted,
        wet.rows_quarantined,
        wet.by_reason,
    )


# ---- schemas ------------------------------------------------------------------------------------------


def test_schema_versions_change_only_when_the_schema_does(sqlite_project: Project, tmp_path: Path) -> None:
    strict = Dataset(
        "events",
        columns=[
            Column("id", "int64"),
            Column("ts", "timestamp", min=datetime(2000, 1, 1), max="2100-01-01T00:00:00+01:00"),
            Column("day", "date", min=date(2000, 1, 1)),
            Column("v", "float64", min=0, allowed=[1, 2.5]),
        ],
        key="id",
        timestamp="ts",
    )
    data = sqlite_project.data

    def ingest(number: int, schema: Dataset | None = None) -> int | None:
        path = write_csv(
            tmp_path / f"{number}.csv",
            ["id", "ts", "day", "v"],
            [[str(number), "2024-01-01", "2024-01-01", "1"]],
        )
        return data.ingest(path, schema or "events").schema_version

    assert ingest(1, strict) == 1
    assert ingest(2, strict) == 1  # the same schema, read back from the store, is no new version
    assert ingest(3) == 1
    looser = strict.model_copy(update={"description": "looser"})
    report = data.ingest(
        write_csv(tmp_path / "4.csv", ["id", "ts", "day", "v"], [["4", "2024-01-01", "2024-01-01", "1"]]),
        looser,
    )
    assert report.schema_version == 2
    assert "schema changed: recorded as version 2" in report.notes
    assert data.set_schema(strict) == 3
    assert data.schema("events") == strict
    assert data.info("events").schema_version == 3
    assert ingest(5) == 3
    assert [r.schema_version for r in data.ingestions("events")] == [1, 1, 1, 2, 3]


def test_set_schema_creates_the_dataset_and_records_an_event(sqlite_project: Project) -> None:
    assert sqlite_project.data.set_schema(events()) == 1
    assert sqlite_project.data.schema("events") == events()
    assert sqlite_project.data.read("events").columns.tolist() == HEADER
    assert [e.action for e in sqlite_project.audit.events(action="data.*")] == ["data.schema"]


def test_an_unknown_dataset_names_those_that_exist(sqlite_project: Project) -> None:
    sqlite_project.data.set_schema(events())
    with pytest.raises(NotFound, match=r"No dataset named 'clicks' \(datasets: events\)\. Create it"):
        sqlite_project.data.schema("clicks")


# ---- reading ------------------------------------------------------------------------------------------


def test_read_selects_columns_a_time_range_and_a_limit(data_project: Project, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        HEADER,
        [["1", "2024-01-01T23:00:00-02:00", "1"], ["2", "2024-01-02", "2"], ["3", "2024-01-03", "3"]],
    )
    data_project.data.ingest(path, events())
    data = data_project.data
    window = data.read("events", start=datetime(2024, 1, 2), end=datetime(2024, 1, 3, tzinfo=UTC))
    assert sorted(window["id"]) == [1, 2]  # 2024-01-02T01:00Z is inside; naive bounds are UTC
    assert data.read("events", columns=["v"]).columns.tolist() == ["v"]
    assert len(data.read("events", limit=2)) == 2
    with pytest.raises(SchemaError, match="no column 'nope'"):
        data.read("events", columns=["nope"])


def test_read_refuses_what_it_cannot_honour_even_before_any_row(sqlite_project: Project) -> None:
    data = sqlite_project.data
    data.set_schema(Dataset("plain", columns=[Column("a", "int64")]))
    with pytest.raises(SchemaError, match="no column 'nope'"):
        data.read("plain", columns=["nope"])
    with pytest.raises(SchemaError, match="has no timestamp column, so start/end cannot select its rows"):
        data.read("plain", start=datetime(2024, 1, 1))
    data.ingest(pd.DataFrame({"a": [1]}), "plain")
    with pytest.raises(SchemaError, match="has no timestamp column"):
        data.read("plain", end=datetime(2024, 1, 1))


def test_quarantine_lists_rejected_rows_by_ingestion(data_project: Project, tmp_path: Path) -> None:
    data = data_project.data
    for unknown in (data.quarantine, data.ingestions, data.files):
        with pytest.raises(NotFound, match="No dataset named 'events'"):
            unknown("events")
    first = data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1, v="-1")), events())
    second = data.ingest(write_csv(tmp_path / "b.csv", HEADER, rows(2, v="x")), "events")
    assert sorted(data.quarantine("events")["_reason"]) == ["v: below min 0", "v: not a valid int64"]
    assert data.quarantine("events", first.ingest_id)["_reason"].tolist() == ["v: below min 0"]
    assert data.quarantine("events", second.ingest_id)["id"].tolist() == ["2"]
    third = data.ingest(write_csv(tmp_path / "c.csv", HEADER, rows(3)), "events")
    assert data.quarantine("events", third.ingest_id).columns.tolist() == ["_reason"]


def test_several_parquet_files_are_one_ingestion_and_quarantine_names_each_file(
    sqlite_project: Project, tmp_path: Path
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    for name, values in (("a", [1, 2]), ("b", [2, 3, -4])):
        pq.write_table(
            pa.table(
                {
                    "id": [abs(v) for v in values],
                    "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * len(values),
                    "v": values,
                }
            ),
            parts / f"{name}.parquet",
        )
    report = sqlite_project.data.ingest(str(parts / "*.parquet"), events())
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (5, 3, 2)
    assert report.source.startswith("2 Parquet files")
    quarantine = sqlite_project.data.quarantine("events")
    assert sorted(
        zip(quarantine["_file"].map(lambda f: Path(f).name), quarantine["_reason"], strict=True)
    ) == [
        ("b.parquet", "key (id): duplicate within the source"),
        ("b.parquet", "v: below min 0"),
    ]
    assert ids(sqlite_project) == [1, 2, 3]


def test_progress_is_reported_up_to_the_end(sqlite_project: Project, tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    sqlite_project.data.ingest(
        write_csv(tmp_path / "a.csv", HEADER, rows(1)), events(), progress=lambda p, f: seen.append((p, f))
    )
    assert {phase for phase, _ in seen} >= {"fingerprint", "read", "validate", "write"}
    assert seen[-1] == ("write", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in seen)


def test_a_dataframe_is_ingested_like_a_file(sqlite_project: Project) -> None:
    frame = pd.DataFrame(
        {"id": [1, 2], "ts": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True), "v": [1, -1]}
    )
    report = sqlite_project.data.ingest(frame, events())
    assert (report.source, report.rows_accepted, report.rows_quarantined) == ("<dataframe>", 1, 1)
    assert sqlite_project.data.ingest(frame.copy(), "events").skipped


def test_an_append_quarantines_the_keys_already_ingested_and_reads_every_row_once(
    data_project: Project, tmp_path: Path
) -> None:
    data = data_project.data
    data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1, 2) + rows(3, day="2024-01-02")), events())
    second = data.ingest(write_csv(tmp_path / "b.csv", HEADER, rows(2, 4, day="2024-01-02")), "events")
    assert (second.rows_accepted, second.by_reason) == (1, {"key (id): already ingested": 1})
    assert ids(data_project) == [1, 2, 3, 4]
    assert data.quarantine("events", second.ingest_id)["id"].tolist() == ["2"]
    assert sorted(stored_files(data_project, data.folder("events"), ".parquet")) == sorted(
        f[len(data.folder("events")) + 1 :] for f in [*data.files("events"), str(second.quarantine)]
    )


def test_a_failing_upload_leaves_nothing_visible(
    data_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1)), events())
    before = state(data_project)
    storage = data_project._ctx.data
    real, calls = storage.publish, []

    def failing(local: Path, location: str) -> None:
        calls.append(location)
        if len(calls) == 2:  # the first file is in place, the second breaks off
            raise OSError("connection reset by peer")
        real(local, location)

    monkeypatch.setattr(storage, "publish", failing)
    with pytest.raises(OSError, match="connection reset"):
        data_project.data.ingest(
            write_csv(tmp_path / "b.csv", HEADER, rows(2, 2, day="2024-03-01")), "events"
        )
    assert len(calls) == 2
    assert state(data_project) == before  # the published file was deleted, nothing committed
    assert ids(data_project) == [1]


KILLED = """
import os, sys
from mloop import Project
project = Project.open(sys.argv[1], env={}, data_url=sys.argv[2])
real = project.data._mutate
def killed(*args, **kwargs):
    os._exit(9)  # the files are published; the process dies before its metadata transaction
project.data._mutate = killed
project.data.ingest(sys.argv[3], "events")
"""


def test_a_process_killed_between_publishing_and_committing_leaves_only_orphans_the_next_ingestion_removes(
    data_project: Project, data_url: str, tmp_path: Path
) -> None:
    data_project.data.ingest(write_csv(tmp_path / "a.csv", HEADER, rows(1)), events())
    before = data_project.data.files("events")
    path = write_csv(tmp_path / "b.csv", HEADER, rows(2, day="2024-04-01"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, str(data_project.root), data_url, str(path)], env=env
    )
    assert killed.returncode == 9
    folder = data_project.data.folder("events")
    assert any("2024-04-01" in f for f in stored_files(data_project, folder))  # published, never committed
    assert data_project.data.files("events") == before and ids(data_project) == [1]
    data_project.data.ingest(write_csv(tmp_path / "c.csv", HEADER, rows(3)), "events")
    assert not any("2024-04-01" in f for f in stored_files(data_project, folder))
    assert ids(data_project) == [1, 3]

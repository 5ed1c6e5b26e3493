"""Pages of datasets, ingestions and quarantined rows, cut in the database (on each metadata backend),
and the quarantine streamed batch by batch; each behind ``data.read`` on the dataset."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mloop import Actor, Column, Dataset, Grant, NotFound, PermissionDenied, Project
from tests.data.helpers import write_csv

EVENTS = Dataset("events", columns=[Column("id", "int64"), Column("ts", "timestamp"),
                                    Column("v", "int64", min=0)], key="id", timestamp="ts")  # fmt: skip


def _fill(project: Project, folder: Path) -> list[str]:
    """Three ingestions of ``events`` (5 refused rows in the second, 3 in the third), one of ``zeta``;
    the ingestion ids in the order they were made."""
    made = [
        project.data.ingest(
            write_csv(folder / "a.csv", ["id", "ts", "v"], [["1", "2026-11-01", "1"]]), EVENTS
        )
    ]
    bad = [[str(i), "2026-11-02", "-1"] for i in range(10, 15)]
    made.append(
        project.data.ingest(
            write_csv(folder / "b.csv", ["id", "ts", "v"], [*bad, ["2", "2026-11-02", "2"]]), "events"
        )
    )
    worse = [[str(i), "2026-11-03", "x"] for i in range(20, 23)]
    made.append(project.data.ingest(write_csv(folder / "c.csv", ["id", "ts", "v"], worse), "events"))
    project.data.ingest(write_csv(folder / "z.csv", ["k", "ts"], [["1", "2026-11-01"]]), "zeta")
    return [str(r.ingest_id) for r in made]


def test_pages_are_cut_in_the_database_and_counted(project: Project, tmp_path: Path) -> None:
    made = _fill(project, tmp_path)
    first, total = project.data.dataset_page(limit=1)
    second, _ = project.data.dataset_page(offset=1, limit=1)
    assert total == 2 and [d.name for d in first + second] == ["events", "zeta"]
    events = first[0]
    assert (events.rows, events.quarantined, events.ingestions, events.schema_version) == (2, 8, 3, 1)
    assert events.last_ingestion is not None and events.last_ingestion >= events.created_at.replace(
        microsecond=0
    )
    newest, count = project.data.ingestion_page("events", limit=2)
    oldest, _ = project.data.ingestion_page("events", offset=2, limit=2)
    assert count == 3 and [r.ingest_id for r in newest + oldest] == made[::-1]
    rows, held = project.data.quarantine_page("events", offset=3, limit=4)
    everything = project.data.quarantine("events")
    assert held == 8 and rows["id"].tolist() == everything["id"].tolist()[3:7] == ["13", "14", "20", "21"]
    assert rows["_reason"].tolist() == everything["_reason"].tolist()[3:7]
    assert project.data.quarantine_page("zeta")[1] == 0
    with pytest.raises(NotFound, match="No dataset named 'nope'"):
        project.data.ingestion_page("nope")


def test_the_quarantine_streams_in_batches_and_only_to_readers(project: Project, tmp_path: Path) -> None:
    _fill(project, tmp_path)
    batches = list(project.data.quarantine_batches("events", size=3))
    assert all(b.num_rows <= 3 for b in batches)
    streamed = pa.Table.from_batches(batches).to_pandas()
    assert streamed["id"].tolist() == project.data.quarantine("events")["id"].tolist()
    assert list(project.data.quarantine_batches("zeta")) == []
    outsider = project.as_actor(Actor("olga", grants=(Grant("data_engineer", "dataset:zeta"),)))
    with pytest.raises(PermissionDenied, match="data.read on dataset:events"):
        outsider.data.quarantine_batches("events")  # refused at the call, before any batch is read
    with pytest.raises(PermissionDenied):
        outsider.data.dataset_page()
    assert outsider.data.quarantine_page("zeta")[1] == 0

"""The per-dataset writer lock on an object store: a lease in the metadata store that hosts share."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mloop import Project
from mloop._time import utcnow
from mloop.data.lock import dataset_lock
from mloop.store.schema import LeaseRow

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_project(tmp_path: Path, s3_url: str, metadata_url: str) -> Iterator[Project]:
    """Data on S3, the lease in each metadata backend (SQLite, and PostgreSQL as several hosts share)."""
    root = tmp_path / "project"
    root.mkdir()
    opened = Project.open(root, env={}, data_url=s3_url, metadata_url=metadata_url)
    try:
        yield opened
    finally:
        opened.close()


def hold(project: Project, holder: str, seconds: float) -> None:
    with project.store.write() as session:
        session.merge(
            LeaseRow(name="dataset:t", holder=holder, expires_at=utcnow() + timedelta(seconds=seconds))
        )


def locking(project: Project) -> tuple[threading.Thread, threading.Event]:
    """A writer that takes the lock in a thread; the event is set once it holds it."""
    held = threading.Event()

    def write() -> None:
        with dataset_lock(project._ctx.data, project.store, "dataset:t", "unused", exclusive=True):
            held.set()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread, held


def test_a_writer_waits_while_another_host_holds_the_lease_and_goes_on_when_it_is_given_up(
    s3_project: Project,
) -> None:
    hold(s3_project, "other-host-4242-abcdef", 60)
    thread, held = locking(s3_project)
    assert not held.wait(1.0)  # the other host's live lease keeps it out
    with s3_project.store.write() as session:
        session.delete(session.get(LeaseRow, "dataset:t"))
    thread.join(10)
    assert held.is_set()
    with s3_project.store.read() as session:
        assert session.get(LeaseRow, "dataset:t") is None  # given up at the end


def test_the_lease_of_a_writer_that_died_is_taken_once_expired_or_at_once_on_the_same_host(
    s3_project: Project,
) -> None:
    hold(s3_project, "other-host-4242-abcdef", -1)  # expired
    thread, held = locking(s3_project)
    thread.join(10)
    assert held.is_set()
    dead = 2**22 + 17  # above Linux's default pid_max: no such process
    hold(s3_project, f"{socket.gethostname()}-{dead}-abcdef", 60)
    thread, held = locking(s3_project)
    thread.join(10)
    assert held.is_set()


def test_two_hosts_ingesting_the_same_keys_at_once_store_each_key_once(
    s3_project: Project, s3_url: str, metadata_url: str
) -> None:
    import pandas as pd

    other = Project.open(s3_project.root, env={}, data_url=s3_url, metadata_url=metadata_url)  # a second host
    frame = pd.DataFrame({"id": range(200), "ts": pd.Timestamp("2024-01-01", tz="UTC"), "v": 1})
    from mloop import Column, Dataset

    schema = Dataset("events", columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("v", "int64")],
                     key="id", timestamp="ts")  # fmt: skip
    s3_project.data.set_schema(schema)
    reports = []
    threads = [
        threading.Thread(target=lambda p=p, part=part: reports.append(p.data.ingest(part, "events")))
        for p, part in ((s3_project, frame.iloc[:150]), (other, frame.iloc[50:]))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()
    assert len(reports) == 2
    assert sorted(r.rows_quarantined for r in reports) == [0, 100]  # the second saw the first's keys
    assert sorted(s3_project.data.read("events")["id"]) == list(range(200))

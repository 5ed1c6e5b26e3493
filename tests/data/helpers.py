"""Helpers for the data tests: what a project holds on disk and in its metadata, and exact CSV text."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from sqlalchemy import func, select

from mloop import Project
from mloop.store.schema import DatasetRow, DatasetSchemaRow, IngestionRow

# Each example of a property test that ingests runs DuckDB and a metadata transaction: slow next to a
# pure function. The project is set up once per test, not per example; examples use fresh dataset names.
ingesting = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_names = itertools.count()


def fresh_name(prefix: str = "ds") -> str:
    return f"{prefix}_{next(_names)}"


@dataclass(frozen=True)
class State:
    """Everything an ingestion could write: files under the data folder and rows in the metadata store."""

    files: tuple[str, ...]
    datasets: int
    schemas: int
    ingestions: int
    events: int


def stored_files(project: Project, location: str | None = None, suffix: str = "") -> list[str]:
    """Every file under ``location`` (data_url by default) in the project's data store, relative to it:
    a folder's or an S3 bucket's alike."""
    storage = project._ctx.data
    root = location or storage.root
    found = storage.list(root, suffix)
    return sorted(f[len(root) :].lstrip("/") for f in found if not f.endswith("/.lock"))


def state(project: Project) -> State:
    files = tuple(stored_files(project))
    with project.store.read() as session:
        counts = [
            session.scalar(select(func.count()).select_from(table))
            for table in (DatasetRow, DatasetSchemaRow, IngestionRow)
        ]
    return State(files, *counts, events=len(project.audit.events()))


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


def csv_field(value: str | None) -> str:
    """``value`` as one CSV field, quoted only where it must be (as most writers do)."""
    if value is None:
        return ""
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(values: Sequence[str | None]) -> str:
    return ",".join(csv_field(v) for v in values) + "\n"


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> Path:
    path.write_text(csv_line(header) + "".join(csv_line(r) for r in rows), encoding="utf-8")
    return path

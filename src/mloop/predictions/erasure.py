"""Erasure and retention in the prediction log and feedback.

Erasure removes the logged rows whose input ``column`` holds the subject's value, plain or as its keyed
hash (``pii:...``), and the labels of exactly those rows (request id and row). Segments of stopped writers
are compacted first (the usual recovery), so that every row is in Parquet; the segment a running server
is still writing cannot be rewritten under it: its matching rows are counted as ``pending``, and a rerun
once the server has compacted it (within a minute: ``segment_seconds``) removes them.

Retention deletes whole date partitions (``endpoint=*/date=<day>``) and feedback days older than a
number of days: a folder is removed only when its whole day is past the cut-off.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from mloop.crypto import ParquetFiles
from mloop.data.erasure import filter_file
from mloop.predictions import files
from mloop.predictions.feedback import FOLDER as FEEDBACK
from mloop.predictions.place import LogFolder
from mloop.security.pii import Pseudonymizer


@dataclass
class PredictionErasure:
    rows: int = 0  # logged rows removed
    labels: int = 0  # feedback labels removed
    files: int = 0  # Parquet files rewritten
    pending: int = 0  # matching rows in a running server's open segment: rerun to remove them
    requests: set[tuple[str, int]] = field(default_factory=set)  # (request id, row) removed

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "labels": self.labels, "files": self.files, "pending": self.pending}


def erase(
    folder: Path | LogFolder,
    column: str,
    value: Any,
    keys: Pseudonymizer,
    *,
    dry_run: bool,
    parquet: ParquetFiles,
) -> PredictionErasure:
    """Remove from the log under ``folder`` the rows whose input or request key ``column`` is ``value``, and
    their labels."""
    found = PredictionErasure()
    place = LogFolder.of(folder)
    if not place.exists():
        return found
    if not dry_run:
        # stopped writers' segments into Parquet, where they can be rewritten
        files.recover(folder, parquet=parquet)
    for record in files.live_records(folder):
        for i in range(len(record["predictions"])):
            cells = record["inputs"].get(column) or (record.get("keys") or {}).get(column) or []
            if i < len(cells) and keys.matches(cells[i], value):
                found.pending += 1
                found.requests.add((str(record["request_id"]), i))
    if dry_run:  # nothing is compacted: what segments hold is found, not pending
        found.rows, found.pending = found.pending, 0
    for part in files.parquet_parts(folder):
        matched: list[tuple[str, int]] = []

        def remove(table: pa.Table, out: list[tuple[str, int]] = matched) -> Any:
            logged = table["keys"].to_pylist() if "keys" in table.column_names else [None] * table.num_rows
            hits = [_holds(text, column, value, keys) or _holds(more, column, value, keys)
                    for text, more in zip(table["inputs"].to_pylist(), logged, strict=True)]  # fmt: skip
            ids, rows = table["request_id"].to_pylist(), table["row"].to_pylist()
            out += [(ids[i], rows[i]) for i, hit in enumerate(hits) if hit]
            return pa.array(hits, pa.bool_())

        removed = filter_file(part, remove, dry_run=dry_run, parquet=parquet)[0]
        found.rows, found.files = found.rows + removed, found.files + bool(removed)
        found.requests.update(matched)
    wanted = found.requests
    with place.storage.reaching():
        labels_files = sorted(place.storage.list(place.join(FEEDBACK)))
    for part in labels_files:

        def labels(table: pa.Table) -> Any:
            pairs = zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True)
            return pa.array([pair in wanted for pair in pairs], pa.bool_())

        removed = filter_file(part, labels, dry_run=dry_run, parquet=parquet)[0]
        found.labels, found.files = found.labels + removed, found.files + bool(removed)
    return found


def _holds(text: str | None, column: str, value: Any, keys: Pseudonymizer) -> bool:
    if not text or column not in text:  # most rows: no JSON parse
        return False
    try:
        inputs = json.loads(text)
    except ValueError:
        return False
    return isinstance(inputs, dict) and keys.matches(inputs.get(column), value)


@dataclass(frozen=True)
class Expired:
    """A folder of the log (a day of one endpoint, or a day of feedback) past the retention cut-off."""

    path: Path | str  # a local folder, or the day's prefix on S3
    day: date
    files: int
    objects: tuple[str, ...] = ()  # on S3 (where a "folder" is only a prefix): the day's files


def expired(folder: Path | LogFolder, days: int, now: datetime) -> list[Expired]:
    """Day folders whose whole day is older than ``days`` days before ``now``."""
    cutoff = (now - timedelta(days=days)).date()
    place = LogFolder.of(folder)
    if place.storage.remote:
        return _expired_objects(place, cutoff)
    root = Path(place.parts)
    out = []
    for day_dir in [*root.glob("endpoint=*/date=*"), *(root / FEEDBACK).glob("date=*")]:
        try:
            day = date.fromisoformat(day_dir.name.partition("=")[2])
        except ValueError:
            continue
        if day < cutoff:
            out.append(Expired(day_dir, day, sum(1 for _ in day_dir.glob("*.parquet"))))
    return sorted(out, key=lambda e: (e.day, str(e.path)))


def _expired_objects(place: LogFolder, cutoff: date) -> list[Expired]:
    by_day: dict[str, list[str]] = {}
    with place.storage.reaching():
        found = place.storage.list(place.parts)
    for location in found:
        prefix, _, _name = location.rpartition("/")
        parent, _, day_dir = prefix.rpartition("/")
        if day_dir.startswith("date=") and parent.rsplit("/", 1)[-1].startswith(("endpoint=", FEEDBACK)):
            by_day.setdefault(prefix, []).append(location)
    out = []
    for prefix, objects in by_day.items():
        try:
            day = date.fromisoformat(prefix.rsplit("=", 1)[1])
        except ValueError:
            continue
        if day < cutoff:
            out.append(Expired(prefix, day, len(objects), tuple(objects)))
    return sorted(out, key=lambda e: (e.day, str(e.path)))


def purge(found: list[Expired], folder: Path | LogFolder | None = None) -> None:
    """Delete the folders: each file goes whole, and a rerun finishes what a killed run left. ``folder``
    (the log's) is needed for days on S3."""
    for item in found:
        if item.objects:
            assert folder is not None, "days on S3 are deleted through the log's storage"
            storage = LogFolder.of(folder).storage
            with storage.reaching():
                for location in item.objects:
                    storage.delete(location)
            continue
        path = Path(item.path)
        shutil.rmtree(path, ignore_errors=True)
        parent = path.parent
        if parent.name.startswith("endpoint=") and not any(parent.iterdir()):
            parent.rmdir()

"""Retention: prediction-log days and quarantine files older than the settings go, and nothing newer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop as ml
from mloop import Project
from mloop.predictions import predictions_folder
from mloop.predictions.place import LogFolder


def _part(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"x": [1]}), folder / "part-a.parquet")


def test_purge_deletes_only_what_is_older_than_retention(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mloop.yaml").write_text("retention:\n  prediction_log_days: 30\n  quarantine_days: 7\n")
    with Project.open(root, env={}) as project:
        schema = ml.Dataset("txns", columns=[ml.Column("id", "int64"), ml.Column("amount", "float64", min=0)])
        project.data.ingest(pd.DataFrame({"id": [1, 2], "amount": [1.0, -1.0]}), schema)
        quarantine = Path(project.data.ingestions("txns")[0].quarantine or "")
        assert quarantine.exists()
        log = predictions_folder(project.settings)
        today = datetime.now(UTC).date()
        old, edge, new = today - timedelta(days=40), today - timedelta(days=30), today - timedelta(days=1)
        for day in (old, edge, new):
            _part(log / "endpoint=fraud" / f"date={day.isoformat()}")
        _part(log / "feedback" / f"date={old.isoformat()}")

        dry = project.privacy.purge(dry_run=True)
        assert dry.partitions == 2 and dry.quarantine_files == 0  # the quarantine is fresh
        assert (log / "endpoint=fraud" / f"date={old.isoformat()}").exists()

        later = datetime.now(UTC) + timedelta(days=8)
        report = project.privacy.purge(now=later)  # eight days on: the quarantine is past its seven
        assert report.quarantine_files == 1 and report.quarantine_rows == 1
        assert not quarantine.exists() and project.data.quarantine("txns").empty
        assert project.data.read("txns")["id"].tolist() == [1]  # accepted rows are not touched
        days = sorted(p.name for p in (log / "endpoint=fraud").iterdir())
        assert days == [
            f"date={d.isoformat()}" for d in sorted([edge, new]) if d >= (later - timedelta(days=30)).date()
        ]
        assert not (log / "feedback" / f"date={old.isoformat()}").exists()
        event = project.audit.events(action="privacy.purge")[-1]
        assert event.payload["quarantine_files"] == 1
        assert project.privacy.purge(now=later).removed == 0  # nothing left: no second event
        assert len(project.audit.events(action="privacy.purge")) == 1


def test_no_retention_setting_keeps_everything(sqlite_project: Project) -> None:
    log = predictions_folder(sqlite_project.settings)
    _part(log / "endpoint=fraud" / "date=2000-01-01")
    report = sqlite_project.privacy.purge()
    assert report.removed == 0 and (log / "endpoint=fraud" / "date=2000-01-01").exists()


@pytest.mark.s3
def test_purge_deletes_old_days_and_quarantine_on_s3(tmp_path: Path, s3_url: str) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "mloop.yaml").write_text("retention:\n  prediction_log_days: 30\n  quarantine_days: 7\n")
    with Project.open(root, env={}, data_url=s3_url) as project:
        schema = ml.Dataset("txns", columns=[ml.Column("id", "int64"), ml.Column("amount", "float64", min=0)])
        project.data.ingest(pd.DataFrame({"id": [1, 2], "amount": [1.0, -1.0]}), schema)
        log = predictions_folder(project.settings)
        assert isinstance(log, LogFolder)
        today = datetime.now(UTC).date()
        old, new = today - timedelta(days=40), today - timedelta(days=1)
        for where in (f"endpoint=fraud/date={old}", f"endpoint=fraud/date={new}", f"feedback/date={old}"):
            local = tmp_path / "part.parquet"
            pq.write_table(pa.table({"x": [1]}), local)
            log.storage.publish(local, log.join(where, "part-a.parquet"))
        report = project.privacy.purge(now=datetime.now(UTC) + timedelta(days=8))
        assert (report.partitions, report.quarantine_files) == (2, 1)
        left = [p[len(log.parts) + 1 :] for p in log.storage.list(log.parts)]
        assert left == [f"endpoint=fraud/date={new}/part-a.parquet"]
        assert project.data.quarantine("txns").empty and project.data.read("txns")["id"].tolist() == [1]

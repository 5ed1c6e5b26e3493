"""What the object-store scenarios share (S3 stopped, S3 hung): an S3 server of the module's own, the chaos
project moved onto it, and the witnesses read from it (the prediction log's Parquet there, the answers
logged)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mloop import Project
from mloop.artifacts import open_artifact_store
from mloop.errors import StorageUnavailable
from mloop.predictions import files, predictions_folder, read_predictions
from mloop.predictions.place import LogFolder
from tests.chaos.conftest_artifact import serve_with
from tests.seaweedfs import SeaweedFSServer


@pytest.fixture(scope="module")
def s3() -> Iterator[SeaweedFSServer]:
    """An S3 server of this module's own: the test stops it, which the session's server must never be."""
    pytest.importorskip("s3fs")
    server = SeaweedFSServer()
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def on_s3(project: Project, env: Mapping[str, str], bucket: str) -> Iterator[Project]:
    """``project`` moved onto S3 (reached with ``env``): its artifacts copied to ``bucket``, ``artifact_url``
    and ``data_url`` there; a segment of the prediction log sealed (and compacted) every second. The
    endpoint and credentials stay in the environment while it is open, as in production."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        url = f"s3://{bucket}/mloop"
        remote = open_artifact_store(url)
        for digest in list(project.artifacts.digests()):
            remote.put_bytes(project.artifacts.get_bytes(digest))
        path = Path(project.root) / "mloop.yaml"
        settings = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
        path.write_text(yaml.safe_dump({**settings, "data_url": url, "artifact_url": url}), encoding="utf-8")
        # No shedding on event-loop lag (the machine is shared; every failure here must be the fault's).
        serve_with(project.root, max_queue_ms=None, log_segment_seconds=1)
        with Project.open(project.root, env={}) as moved:
            assert moved.artifacts.url == url and moved.settings.data_url == url
            yield moved


def log_folder(project: Project) -> LogFolder:
    folder = predictions_folder(project.settings)
    assert isinstance(folder, LogFolder) and folder.storage.remote
    return folder


def compacted(project: Project, endpoint: str) -> set[str]:
    """The request ids in the prediction log's Parquet on S3 (not those still in the local spool)."""
    parts = files.parquet_parts(log_folder(project), endpoint)
    if not parts:
        return set()
    table = project.parquet.dataset(parts, schema=files.SCHEMA).to_table(columns=["request_id"])
    return set(table["request_id"].to_pylist())


def answers(project: Project, endpoint: str) -> pd.DataFrame:
    """The answered predictions of ``endpoint`` in the log (spool and Parquet), one row per request."""
    frame = read_predictions(predictions_folder(project.settings), endpoint, parquet=project.parquet)
    return frame[(frame["row"] == 0) & (frame["status"] == "ok")]


def refused(action: Callable[[], object]) -> tuple[str, float]:
    """The StorageUnavailable message ``action`` fails with, and how long it took to fail."""
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        action()
    return str(info.value), time.monotonic() - started


def event_rows(n: int) -> pd.DataFrame:
    """Three rows to ingest, ids from ``n``."""
    return pd.DataFrame({"id": range(n, n + 3), "ts": pd.Timestamp("2026-01-01", tz="UTC"), "v": 1})

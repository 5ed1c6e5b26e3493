"""Chaos: the disk holding a project's data, artifacts, online store and prediction log fills up while
``mloop serve`` answers under load.

The disk is a real tmpfs mounted for the test and filled to its last byte. What a user relies on: each
write (ingest, materialization, model registration, the prediction log's lines and its compaction) fails
with :class:`~mloop.errors.DiskFull` naming the folder and its setting; nothing is half-written (no
dataset part, no registry version, no Parquet part, staging cleaned, no event for what did not happen); the
server stays up, and a prediction whose log line cannot be written is refused with 503 rather than answered
unlogged (the zero-loss rule, docs/serving.md); once space returns every operation succeeds, predictions
are answered again without a restart, and the segments a full disk kept from compaction are compacted by
the next writer.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop import Project
from mloop.errors import DiskFull
from mloop.predictions import PredictionLog, predictions_folder, read_predictions
from tests.chaos import report
from tests.chaos.disk import fill, settle, tmpfs
from tests.chaos.procs import ReconnectingClients
from tests.serving.conftest import trained_template  # noqa: F401 (fixture)
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

SIZE = "48m"  # the small disk: the served project's stores take ~6 MB of it
VIEW = "chaos_recent"  # a feature view of new events, to materialize on the full disk
KEYS = 3_000  # its entities: ~0.5 MB online, more than a full disk has
RECOVERY_BOUND = 10.0  # seconds from freeing space to the next answer; measured well under 1 s


@pytest.fixture(scope="module")
def small(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Path]]:  # noqa: F811
    """The served fraud project with its data, artifacts and online store on a small tmpfs of its own
    (the metadata database stays on the big disk: what fills is where the bytes go)."""
    base = tmp_path_factory.mktemp("disk-full")
    root = base / trained_template.name
    shutil.copytree(trained_template, root)
    with tmpfs(base / "small", SIZE) as disk:
        state = root / ".mloop"
        shutil.move(state / "data", disk / "data")
        shutil.move(state / "artifacts", disk / "artifacts")
        for online in state.glob("online.db*"):
            shutil.move(online, disk / online.name)
        settle(root / "mloop.yaml", data_url=str(disk / "data"), artifact_url=str(disk / "artifacts"),
               online_url=str(disk / "online.db"), serving={"max_queue_ms": None})  # fmt: skip
        project = Project.open(root, env={})
        try:
            yield project, disk
        finally:
            project.close()


def _events(project: Project, action: str) -> int:
    return len(project.audit.events(action=action))


def _recent_view(project: Project, path: Path, now: datetime) -> None:
    """A feature view of new events (on the big disk): materializing it writes new rows online, which an
    already materialized view would not (its rows are unchanged, so SQLite writes nothing)."""
    rng = np.random.default_rng(5)
    ts = pd.Series(now - pd.to_timedelta(rng.integers(60, 3_600, KEYS), unit="s"))
    frame = pd.DataFrame({"customer_id": np.arange(KEYS), "ts": ts.astype("datetime64[us, UTC]"),
                          "score": rng.normal(size=KEYS), "note": [f"note {i:06d}" * 4 for i in range(KEYS)]})  # fmt: skip
    frame.to_parquet(path, index=False)
    customer = ml.Entity("customer", join_keys=["customer_id"])
    source = ml.ParquetSource(str(path), timestamp="ts")
    project.apply([ml.FeatureView(VIEW, entities=[customer], source=source, ttl="1d",
                                  features=[ml.Field("score", "float64"), ml.Field("note", "string")])])  # fmt: skip


def _online_rows(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        found = conn.execute("SELECT count(*) FROM online_rows WHERE view LIKE ?", (f"{VIEW}.v%",)).fetchone()
    return int(found[0])  # the view's rows, namespaced by its version


def _tiny_model() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return LogisticRegression().fit(x, (x.a + x.b > 0).astype(int)), x.head(5)


def _tmp_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.tmp"))


def test_a_full_disk_fails_each_write_clearly_keeps_serving_and_recovers(small: tuple[Project, Path]) -> None:
    project, disk = small
    project.deploy("full", "fraud", version=1)
    root = Path(project.root)
    folder = Path(predictions_folder(project.settings))
    csv = root.parent / "new.csv"  # on the big disk: the source is not what fills
    pd.DataFrame({"id": range(5_000), "amount": np.linspace(0, 1, 5_000)}).to_csv(csv, index=False)
    model, example = _tiny_model()
    now = datetime.now(UTC)
    _recent_view(project, root.parent / "recent.parquet", now)
    ingests, chunks = _events(project, "data.ingest"), _events(project, "features.materialize*")
    models = project.models.list()

    with (
        mloop_serve(root) as server,
        ReconnectingClients(server.url, "full", fraud_rows(root), clients=2) as load,
    ):
        writer = server.process.pid  # one process: its segments are named after its pid
        load.wait_answers(100)
        filler = fill(disk)
        full = time.monotonic()

        with pytest.raises(DiskFull, match=rf"no space left on {disk / 'data'} \(data_url\)"):
            project.data.ingest(str(csv), "chaos_new")
        assert "chaos_new" not in [d.name for d in project.data.list()]
        assert not (disk / "data" / "chaos_new").exists(), "a failed first ingestion left files (or staging)"
        assert _events(project, "data.ingest") == ingests

        with pytest.raises(DiskFull, match=rf"no space left on {disk / 'online.db'} \(online_url\)"):
            project.features.materialize(now - timedelta(days=1), now, views=[VIEW])
        assert _events(project, "features.materialize*") == chunks, "a chunk was recorded as materialized"
        assert _online_rows(disk / "online.db") == 0, "a chunk's rows are half in the online store"

        with pytest.raises(DiskFull, match=rf"no space left on {disk / 'artifacts'} \(artifact_url\)"):
            project.models.register("chaos_tiny", model, input_example=example)
        assert project.models.list() == models, "the registry changed"
        assert not _tmp_files(disk / "artifacts"), "a half-written artifact is left"

        # Serving: a prediction whose line cannot be written is refused (503, the disk named), not answered.
        deadline = time.monotonic() + 10
        while not load.refused_at:
            assert time.monotonic() < deadline, f"no refusal on a full disk: {load.statuses}"
            time.sleep(0.02)
        assert set(load.statuses) == {200, 503}, load.statuses
        assert all("no space left on" in body and "data_url" in body for body in load.refusals), load.refusals
        assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
        answered_while_full = load.answered_between(full + 0.5, time.monotonic())

        filler.unlink()
        freed = time.monotonic()
        deadline = freed + RECOVERY_BOUND
        while not load.answered_between(freed, time.monotonic()):
            assert time.monotonic() < deadline, "predictions were not answered again once space returned"
            time.sleep(0.01)
        recovered = next(at for at, _ in load.answers if at >= freed) - freed
        refused = len(load.refused_at)

        assert project.data.ingest(str(csv), "chaos_new").rows_accepted == 5_000
        assert project.features.materialize(now - timedelta(days=1), now, views=[VIEW]).values == 2 * KEYS
        assert _online_rows(disk / "online.db") == KEYS
        assert project.models.register("chaos_tiny", model, input_example=example).version == 1
        load.wait_answers(len(load.answers) + 50)

        filler = fill(disk)  # full again as the server stops: its last compaction fails
    assert load.errors == [], load.errors
    segments = sorted((folder / "segments").glob(f"{writer}-*.jsonl"))
    assert segments, "the server compacted on a full disk?"
    assert not _tmp_files(folder), "a half-written Parquet part is left"
    logged = read_predictions(folder, "full")  # the segments are read too: nothing answered is missing
    missing = set(load.ids) - set(logged[logged["status"] == "ok"]["request_id"])
    assert not missing, f"{len(missing)} of {len(load.ids)} answered requests are not in the prediction log"

    filler.unlink()
    compacted = time.monotonic()
    PredictionLog(folder, compact_in_child=False).close()  # the next writer (a server starting) compacts them
    compacted = time.monotonic() - compacted
    assert not list((folder / "segments").glob(f"{writer}-*.jsonl")), "the kept segments were not compacted"
    logged = read_predictions(folder, "full")
    assert not set(load.ids) - set(logged[logged["status"] == "ok"]["request_id"])
    assert not logged.duplicated(["request_id", "row"]).any()
    report.row("the disk under data_url, artifact_url and online_url full while mloop serve answers",
               sees="ingest, materialization and registration refused with DiskFull naming the folder and "
               "setting, nothing half-written; predictions 503 DiskFull rather than answered unlogged",
               recovery_s=round(recovered, 3), failed={"503": refused} if refused else {}, lost=0,
               answered_while_full=answered_while_full, kept_segments_compacted_s=round(compacted, 2))  # fmt: skip

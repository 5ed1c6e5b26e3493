"""Chaos: the object store (S3: a real SeaweedFS of this module's own, holding the project's ``data_url``
and ``artifact_url``) stops under load for a few seconds, then starts again on the same port:

- ``mloop serve`` keeps answering from the models in its memory: no request fails or waits on S3;
- the prediction log's compaction (a segment sealed every second here) keeps the segments in the local
  spool while S3 is down and publishes them once it is back: no answered prediction is lost;
- a version deployed during the outage, whose artifact cannot be fetched, leaves the endpoint on its
  previous revision with the ``<endpoint>/deploy/load-failed`` alert, which resolves once it loads;
- ingest, register and a label posted to ``/v1/feedback`` are refused at once with ``StorageUnavailable``
  (HTTP 503) naming the store and the fix, nothing half-written, and succeed when run again after it.

The outage lasts ``DOWN_SECONDS``: 3 s in the test suite, ``MLOOP_CHAOS_SECONDS`` when set. Figures for
docs/reliability.md are printed with ``-s``: ``pytest -s tests/chaos/test_object_store_down.py``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from mloop import Project
from mloop.artifacts import open_artifact_store
from mloop.errors import StorageUnavailable
from mloop.predictions import files, predictions_folder, read_predictions
from mloop.predictions.place import LogFolder
from tests.chaos import report
from tests.chaos.conftest_artifact import chaos_project, register_like, serve_with, served_env
from tests.chaos.procs import ReconnectingClients
from tests.chaos.waiting import until
from tests.seaweedfs import SeaweedFSServer
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

__all__ = ["chaos_project"]  # the fixture, imported for pytest to find
DOWN_SECONDS = float(os.environ.get("MLOOP_CHAOS_SECONDS", 3))
ENDPOINT = "fraud"
WAIT = 30.0  # seconds any one step may take on a busy shared machine


@pytest.fixture(scope="module")
def s3() -> Iterator[SeaweedFSServer]:
    """An S3 server of this module's own: the test stops it, which the session's server must never be."""
    pytest.importorskip("s3fs")
    server = SeaweedFSServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_project(s3: SeaweedFSServer, chaos_project: Project) -> Iterator[Project]:
    """``chaos_project`` (fraud v1 and v2 trained, features online) moved onto S3: its artifacts copied to a
    fresh bucket, ``artifact_url`` and ``data_url`` there; a segment of the prediction log sealed (and
    compacted) every second. The endpoint and credentials are in the environment, as in production."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in s3.env.items():
            env.setenv(name, value)
        url = f"s3://{s3.bucket()}/mloop"
        remote = open_artifact_store(url)
        for digest in list(chaos_project.artifacts.digests()):
            remote.put_bytes(chaos_project.artifacts.get_bytes(digest))
        path = Path(chaos_project.root) / "mloop.yaml"
        settings = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
        path.write_text(yaml.safe_dump({**settings, "data_url": url, "artifact_url": url}), encoding="utf-8")
        # No shedding on event-loop lag (the machine is shared; every failure here must be the fault's).
        serve_with(chaos_project.root, max_queue_ms=None, log_segment_seconds=1)
        with Project.open(chaos_project.root, env={}) as project:
            assert project.artifacts.url == url and project.settings.data_url == url
            yield project


_until = functools.partial(until, timeout=WAIT)


def _load_alerts(project: Project) -> list[dict[str, Any]]:
    return [a for a in project.monitoring.alerts(ENDPOINT) if a["key"] == f"{ENDPOINT}/deploy/load-failed"]


def _log(project: Project) -> LogFolder:
    folder = predictions_folder(project.settings)
    assert isinstance(folder, LogFolder) and folder.storage.remote
    return folder


def _compacted(project: Project) -> set[str]:
    """The request ids in the prediction log's Parquet on S3 (not those still in the local spool)."""
    parts = files.parquet_parts(_log(project), ENDPOINT)
    if not parts:
        return set()
    table = project.parquet.dataset(parts, schema=files.SCHEMA).to_table(columns=["request_id"])
    return set(table["request_id"].to_pylist())


def _refused(action: Callable[[], object]) -> tuple[str, float]:
    """The StorageUnavailable message ``action`` fails with, and how long it took to fail."""
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        action()
    return str(info.value), time.monotonic() - started


def _timed(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    return action(), time.monotonic() - started


def _events(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n, n + 3), "ts": pd.Timestamp("2026-01-01", tz="UTC"), "v": 1})


@pytest.mark.slow
def test_serving_rides_out_an_object_store_outage_and_writes_are_refused_clearly(
    s3: SeaweedFSServer, s3_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = s3_project
    project.deploy(ENDPOINT, "fraud", version=1)
    project.data.ingest(_events(0), "events")
    model = project.models.load("fraud", 1).model
    versions = len(project.models.list_versions("fraud"))
    served_env(monkeypatch)  # the AWS_* variables are set for the module (s3_project)
    spool = _log(project).segments
    try:
        # A steady load, not a saturating one: the compactor runs at idle priority, on CPU nothing else wants.
        with mloop_serve(Path(project.root)) as server, ReconnectingClients(
            server.url, ENDPOINT, fraud_rows(project.root), clients=3, pause=0.01
        ) as load:  # fmt: skip
            load.wait_answers(100)
            s3.down(kill=True)
            went_down = time.monotonic()
            before = set(load.ids)
            project.deploy(ENDPOINT, "fraud", version=2)  # the metadata store is up: the deploy lands
            labelled = load.ids[0]
            with ThreadPoolExecutor(3) as pool:  # the writes of three users at once, while the server polls
                ingest = pool.submit(_refused, lambda: project.data.ingest(_events(3), "events"))
                register = pool.submit(_refused, lambda: register_like(project, model))
                feedback = pool.submit(_timed, lambda: httpx.post(
                    f"{server.url}/v1/feedback", json={"request_id": labelled, "label": 1}, timeout=30))  # fmt: skip
                (fired,) = _until("the load-failure alert fires", lambda: _load_alerts(project))
                alerted_in = time.monotonic() - went_down
            (ingest_error, ingest_s), (register_error, register_s) = ingest.result(), register.result()
            refused_label, feedback_s = feedback.result()
            time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - went_down)))
            # In the spool: the current segment, the next one (opened ahead), and the sealed ones S3 refused.
            pending = len(list(spool.glob("*.jsonl")))
            during = set(load.ids) - before
            s3.up()
            came_back = time.monotonic()
            _until("version 2 answers", lambda: 2 in set(_answers(project)["version"]))
            switched_in = time.monotonic() - came_back
            (ended,) = _until("the alert resolves",
                              lambda: [a for a in _load_alerts(project) if a["status"] == "resolved"])  # fmt: skip
            _until("the outage's answers compacted to S3", lambda: during <= _compacted(project))
            compacted_in = time.monotonic() - came_back
            # Run again once the store is back, the writes succeed.
            project.data.ingest(_events(3), "events")
            registered = register_like(project, model)
            label = httpx.post(
                f"{server.url}/v1/feedback", json={"request_id": labelled, "label": 1}, timeout=30
            )
            load.wait_answers(len(load.ids) + 50)
    finally:
        if s3.process is None or s3.process.poll() is not None:
            s3.up()

    answers = _answers(project)
    lost = len(set(load.ids) - set(answers["request_id"]))
    failed = {str(status): n for status, n in load.statuses.items() if status != 200}
    for _, cause in load.errors:
        failed[cause] = failed.get(cause, 0) + 1
    outage = answers[answers["request_id"].isin(during)]
    slowest = float(outage["latency_s"].max())
    report.row(f"S3 (data_url and artifact_url) down {came_back - went_down:.0f} s, then started",
               sees="predictions answered from the loaded models; a version deployed meanwhile waits on its "
                    "previous revision with a load-failed alert; ingest, register and feedback refused "
                    "with StorageUnavailable (503) and succeed when run again",
               recovery_s=round(max(switched_in, compacted_in), 2), failed=failed, lost=lost,
               answered_in_outage=len(during), slowest_in_outage_s=round(slowest, 3),
               new_version_served_s=round(switched_in, 2), log_compacted_s=round(compacted_in, 2),
               segments_pending=pending, alert_s=round(alerted_in, 2),
               ingest_refused_s=round(ingest_s, 2), register_refused_s=round(register_s, 2),
               feedback_refused_s=round(feedback_s, 2))  # fmt: skip

    # Serving: nothing failed, nothing waited on S3, and it answered through the outage.
    assert set(load.statuses) == {200} and not load.errors, (load.statuses, load.errors[:3])
    assert len(during) > 0
    assert slowest < 3.0, f"a request took {slowest:.2f} s during the outage"
    # The prediction log: segments waited in the spool during the outage, then every answer reached S3.
    assert pending > 2, f"only {pending} segment files in the spool: was compaction tried during the outage?"
    assert lost == 0, f"{lost} answered predictions are not in the prediction log"
    assert not list(spool.glob("*.jsonl")), "the server left segments uncompacted at its stop"
    assert set(load.ids) <= _compacted(project)
    # The new version: refused while its artifact could not be fetched (v1 answered), served once it could.
    first_v2 = answers.loc[answers["version"] == 2, "ts"].min()
    assert set(answers.loc[answers["ts"] < first_v2, "version"]) == {1}
    assert fired["labels"]["version"] == "2" and "StorageUnavailable" in fired["description"]
    assert "tries again at every poll" in fired["description"]
    assert "loads and serves" in ended["resolution"]
    events = [e.action for e in project.audit.events(action="monitoring.*", resource=f"endpoint:{ENDPOINT}")
              if e.payload["alert"]["key"] == fired["key"]]  # fmt: skip
    assert events == ["monitoring.alert", "monitoring.resolve"], events
    # Writes: refused at once, naming the store and the fix; nothing half-written; done when run again.
    for message in (ingest_error, register_error):
        assert s3.endpoint in message and "Check that the server is up" in message, message
    assert "data store" in ingest_error and "artifact store" in register_error
    assert refused_label.status_code == 503 and refused_label.json()["error"] == "StorageUnavailable", (
        refused_label.text
    )
    assert label.status_code == 200 and label.json()["accepted"] == 1, label.text
    assert max(ingest_s, register_s, feedback_s) < 10, (ingest_s, register_s, feedback_s)
    assert project.data.info("events").ingestions == 2
    assert sorted(project.data.read("events")["id"]) == list(range(6))
    assert len(project.models.list_versions("fraud")) == versions + 1 and registered == versions + 1
    assert not list(open_artifact_store(project.artifacts.url).backend.temps())  # no upload left incomplete


def _answers(project: Project) -> pd.DataFrame:
    frame = read_predictions(predictions_folder(project.settings), ENDPOINT, parquet=project.parquet)
    return frame[(frame["row"] == 0) & (frame["status"] == "ok")]

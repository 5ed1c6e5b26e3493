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
import pytest

from mloop import Project
from mloop.artifacts import open_artifact_store
from tests.chaos import report
from tests.chaos.conftest_artifact import chaos_project, register_like, served_env
from tests.chaos.objectstore import answers, compacted, event_rows, log_folder, on_s3, refused, s3
from tests.chaos.procs import ReconnectingClients
from tests.chaos.waiting import until
from tests.seaweedfs import SeaweedFSServer
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

__all__ = ["chaos_project", "s3"]  # the fixtures, imported for pytest to find
DOWN_SECONDS = float(os.environ.get("MLOOP_CHAOS_SECONDS", 3))
ENDPOINT = "fraud"
WAIT = 30.0  # seconds any one step may take on a busy shared machine


@pytest.fixture(scope="module")
def s3_project(s3: SeaweedFSServer, chaos_project: Project) -> Iterator[Project]:
    """``chaos_project`` (fraud v1 and v2 trained, features online) moved onto a fresh bucket of ``s3``."""
    with on_s3(chaos_project, s3.env, s3.bucket()) as project:
        yield project


_until = functools.partial(until, timeout=WAIT)
_compacted = functools.partial(compacted, endpoint=ENDPOINT)
_answers = functools.partial(answers, endpoint=ENDPOINT)


def _load_alerts(project: Project) -> list[dict[str, Any]]:
    return [a for a in project.monitoring.alerts(ENDPOINT) if a["key"] == f"{ENDPOINT}/deploy/load-failed"]


def _timed(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    return action(), time.monotonic() - started


@pytest.mark.slow
def test_serving_rides_out_an_object_store_outage_and_writes_are_refused_clearly(
    s3: SeaweedFSServer, s3_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = s3_project
    project.deploy(ENDPOINT, "fraud", version=1)
    project.data.ingest(event_rows(0), "events")
    model = project.models.load("fraud", 1).model
    versions = len(project.models.list_versions("fraud"))
    served_env(monkeypatch)  # the AWS_* variables are set for the module (s3_project)
    spool = log_folder(project).segments
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
                ingest = pool.submit(refused, lambda: project.data.ingest(event_rows(3), "events"))
                register = pool.submit(refused, lambda: register_like(project, model))
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
            project.data.ingest(event_rows(3), "events")
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

"""Chaos: the object store hangs under load: it accepts connections and answers nothing, on new ones and
on those open, as a store stuck on a lock or behind a network black hole does (a relay in front of a real
SeaweedFS, :class:`~tests.chaos.hung.HungRelay`). Worse than a store that is down: nothing is refused, so
every call waits for its timeout.

- ``mloop serve`` keeps answering from the models in its memory: no request waits on S3;
- the prediction log's compaction (a segment sealed every second) waits in its child process, off the
  server's path; the segments stay in the local spool and are published once the store answers again:
  no answered prediction is lost;
- an ingest is refused with ``StorageUnavailable`` once the S3 client's timeouts run out, naming the store
  and the fix, with nothing half-written, and succeeds when run again after the store recovers.

The hang lasts ``HUNG_SECONDS``: 5 s in the test suite, ``MLOOP_CHAOS_SECONDS`` when set, or as long as the
refused ingest takes. ``pytest -s`` prints the figures for docs/reliability.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop import Project
from tests.chaos import report
from tests.chaos.conftest_artifact import chaos_project, served_env
from tests.chaos.hung import HungRelay
from tests.chaos.objectstore import answers, compacted, event_rows, log_folder, on_s3, refused, s3
from tests.chaos.procs import ReconnectingClients
from tests.chaos.waiting import until
from tests.seaweedfs import SeaweedFSServer
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

__all__ = ["chaos_project", "s3"]  # the fixtures, imported for pytest to find
HUNG_SECONDS = float(os.environ.get("MLOOP_CHAOS_SECONDS", 5))
ENDPOINT = "fraud"
WAIT = 60.0  # seconds a step may take after recovery on a busy shared machine (an S3 client's back-off)


@pytest.fixture(scope="module")
def relay(s3: SeaweedFSServer) -> Iterator[HungRelay]:
    hung = HungRelay(s3.port).start()
    try:
        yield hung
    finally:
        hung.stop()


@pytest.fixture(scope="module")
def hung_project(s3: SeaweedFSServer, relay: HungRelay, chaos_project: Project) -> Iterator[Project]:
    """``chaos_project`` on a fresh bucket, every S3 client of it going through the relay."""
    with on_s3(chaos_project, {**s3.env, "AWS_ENDPOINT_URL": relay.endpoint}, s3.bucket()) as project:
        yield project


@pytest.mark.slow
def test_a_hung_object_store_holds_no_prediction_and_an_ingest_gives_up_with_a_clear_error(
    relay: HungRelay, hung_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = hung_project
    project.deploy(ENDPOINT, "fraud", version=1)
    project.data.ingest(event_rows(0), "events")
    served_env(monkeypatch)  # the AWS_* variables are set for the module (hung_project)
    spool = log_folder(project).segments
    with mloop_serve(Path(project.root)) as server, ReconnectingClients(
        server.url, ENDPOINT, fraud_rows(project.root), clients=3, pause=0.01
    ) as load:  # fmt: skip
        load.wait_answers(100)
        relay.hang()
        hung_at = time.monotonic()
        before = set(load.ids)
        ingest_error, ingest_s = refused(lambda: project.data.ingest(event_rows(3), "events"))
        time.sleep(max(0.0, HUNG_SECONDS - (time.monotonic() - hung_at)))
        # In the spool: the current segment, the next one (opened ahead), and the sealed ones waiting.
        pending = len(list(spool.glob("*.jsonl")))
        during = set(load.ids) - before
        relay.recover()
        recovered_at = time.monotonic()
        until("the answers compacted to S3", lambda: during <= compacted(project, ENDPOINT), timeout=WAIT)
        compacted_in = time.monotonic() - recovered_at
        project.data.ingest(event_rows(3), "events")  # run again once the store answers: it lands
        load.wait_answers(len(load.ids) + 50)

    logged = answers(project, ENDPOINT)
    lost = len(set(load.ids) - set(logged["request_id"]))
    failed = {str(status): n for status, n in load.statuses.items() if status != 200}
    for _, cause in load.errors:
        failed[cause] = failed.get(cause, 0) + 1
    slowest = float(logged.loc[logged["request_id"].isin(during), "latency_s"].max())
    report.row(f"S3 (data_url and artifact_url) hung {recovered_at - hung_at:.0f} s: connections accepted, "
               "nothing answered",
               sees="predictions answered from the loaded models; an ingest refused with StorageUnavailable "
                    "once the S3 client's timeouts run out, and done when run again",
               recovery_s=round(compacted_in, 2), failed=failed, lost=lost, answered_while_hung=len(during),
               slowest_while_hung_s=round(slowest, 3), segments_pending=pending,
               ingest_refused_s=round(ingest_s, 2), connections_held=relay.held)  # fmt: skip

    # Serving: nothing failed and nothing waited on S3 while it hung.
    assert set(load.statuses) == {200} and not load.errors, (load.statuses, load.errors[:3])
    assert len(during) > 0
    assert slowest < 3.0, f"a request took {slowest:.2f} s while S3 hung"
    # The log: segments waited in the spool, then every answer reached S3.
    assert relay.held > 0, "no S3 call went through the relay while it hung"
    assert pending > 2, f"only {pending} segment files in the spool: was compaction tried while S3 hung?"
    assert lost == 0, f"{lost} answered predictions are not in the prediction log"
    assert set(load.ids) <= compacted(project, ENDPOINT)
    # The ingest: refused naming the store and the fix, nothing half-written, done when run again.
    assert relay.endpoint in ingest_error and "Check that the server is up" in ingest_error, ingest_error
    assert project.data.info("events").ingestions == 2
    assert sorted(project.data.read("events")["id"]) == list(range(6))

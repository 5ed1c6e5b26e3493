"""PostgreSQL (the metadata store) goes down for a few seconds under load and comes back:

- ``mloop serve`` keeps answering from its live snapshot (no failed request);
- a deployment made during the outage waits, retrying with back-off, and lands once the server is back,
  and the serving process switches to it;
- two loop controllers keep ticking through the outage (neither thread dies), a controller holds the
  lease again after it, and at no moment do both hold it.

The outage lasts ``DOWN_SECONDS``: 3 s in the test suite, ``MLOOP_CHAOS_SECONDS`` when set
(``benchmarks/chaos.py`` runs the suite with 30).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mloop import Project
from mloop.errors import MetadataUnavailable
from mloop.loop import lease
from mloop.loop.controller import LoopController
from mloop.predictions import predictions_folder, read_predictions
from mloop.serving.http.auth import Authenticator
from tests.chaos import report
from tests.services import PostgresServer
from tests.serving.http.load import Clients, fraud_rows
from tests.serving.http.running import mloop_serve
from tests.training.fraud import setup

DOWN_SECONDS = float(os.environ.get("MLOOP_CHAOS_SECONDS", 3))
LEASE_TTL = timedelta(seconds=2)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A cluster of this module's own: the test stops it, which the session's server must never be."""
    pytest.importorskip("psycopg")
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def project(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("pg-chaos") / "served"
    root.mkdir()
    with pg.database() as url:
        # mloop.yaml names the database, so `mloop serve` (another process) opens the same one. No shedding
        # on event-loop lag: on a machine busy with other tests it would refuse requests for reasons that
        # are not the fault under test, and every status here is counted as the fault's.
        # A retry window longer than the outage (30 s, the default, unless the benchmark's outage is longer).
        window = max(30.0, 2 * DOWN_SECONDS)
        (root / "mloop.yaml").write_text(
            f"metadata_url: {url}\nmetadata_retry_seconds: {window}\nserving:\n  max_queue_ms: null\n"
        )
        with Project.open(root, env={}) as opened:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
            pipeline, _ = setup(opened, root, rows=3_000, start=start)
            pipeline.run(opened)
            pipeline.run(opened, params={"num_leaves": 7})
            opened.features.materialize(start - timedelta(days=1), datetime.now(UTC))
            opened.deploy("fraud", "fraud", version=1)
            yield opened


@dataclass
class Leases:
    """Every lease a controller got: (holder, held from, held until), times on this host's monotonic clock.
    A holder certainly held it from the moment ``acquire`` returned True until the call's start + ttl."""

    held: list[tuple[str, float, float]] = field(default_factory=list)
    ticks: dict[str, list[float]] = field(default_factory=dict)  # when each holder's acquire returned

    def record(self, original):  # type: ignore[no-untyped-def]
        def acquire(store, name, holder, ttl, now=None):  # type: ignore[no-untyped-def]
            called = time.monotonic()
            got = original(store, name, holder, ttl, now)
            if got:
                self.held.append((holder, time.monotonic(), called + ttl.total_seconds()))
            self.ticks.setdefault(holder, []).append(time.monotonic())
            return got

        return acquire

    def overlaps(self) -> list[tuple[tuple[str, float, float], tuple[str, float, float]]]:
        return [(a, b) for a in self.held for b in self.held
                if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]]  # fmt: skip


def test_serving_and_writes_ride_out_a_postgres_restart(
    pg: PostgresServer, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = Leases()
    monkeypatch.setattr(lease, "acquire", leases.record(lease.acquire))
    stops: list[threading.Event] = []
    controllers = []
    for holder in ("A", "B"):
        own = Project.open(project.root, env={})  # each controller its own process's worth of connections
        controller = LoopController(own, [], holder=holder, lease_ttl=LEASE_TTL)
        controllers.append((own, controller))
    threads = []
    for _, controller in controllers:
        stop = threading.Event()
        thread = threading.Thread(target=controller.run, args=(0.2, stop), daemon=True)
        thread.start()
        stops.append(stop)
        threads.append(thread)

    rows = fraud_rows(project.root)
    # API keys on a request's path: one checked just before the outage, one never seen
    project.users.add("ana", roles=["mlops"])
    known, unknown = project.keys.issue("ana").token, project.keys.issue("ana").token
    authenticator = Authenticator(project, cache_seconds=0.5)
    authenticator.identify(f"Bearer {known}")
    deployed: dict[str, float | str] = {}

    def deploy_during_outage() -> None:
        started = time.monotonic()
        try:
            project.deploy("fraud", "fraud", version=2)
            deployed["waited"] = time.monotonic() - started
        except Exception as exc:  # reported by the assertion below
            deployed["error"] = repr(exc)

    try:
        with mloop_serve(Path(project.root)) as server, Clients(server.url, "fraud", rows, clients=4,
                                                                  requests=1_000_000) as load:  # fmt: skip
            load.wait_answers(200)
            pg.down()
            went_down = time.monotonic()
            writer = threading.Thread(target=deploy_during_outage)
            writer.start()
            answered_before = len(load.ids)
            checked = _keys_during_outage(authenticator, known, unknown)
            time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - went_down)))
            answered_during = len(load.ids) - answered_before
            pg.up()
            came_back = time.monotonic()
            writer.join(40)
            load.wait_answers(len(load.ids) + 300)
            switched = _wait_for_version(project, 2, timeout=20)
            recovered = switched - came_back
        logged = set(read_predictions(predictions_folder(project.settings), "fraud")["request_id"])
        lost = len(set(load.ids) - logged)  # answered, but not in the prediction log
        failed = {str(status): n for status, n in load.statuses.items() if status != 200}
        if load.errors:
            failed["connection"] = len(load.errors)
        report.row(f"PostgreSQL (metadata) down {came_back - went_down:.0f} s, then restarted",
                   sees="predictions answered from the loaded endpoints; a deploy made meanwhile waits and lands",
                   recovery_s=round(recovered, 2), failed=failed, lost=lost, answered_in_outage=answered_during,
                   deploy_waited_s=round(float(deployed.get("waited", -1)), 1),
                   lease_ticks={h: len(t) for h, t in leases.ticks.items()})  # fmt: skip
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(10)
        for own, _ in controllers:
            own.close()
        pg.up() if pg.process is None or pg.process.poll() is not None else None

    # serving: nothing failed, and it kept answering through the outage
    assert set(load.statuses) == {200}, load.statuses
    assert not load.errors, load.errors[:3]
    assert lost == 0, f"{lost} answered predictions are not in the prediction log"
    assert answered_during > 0
    # a key checked before the outage is still admitted; a new one is refused at once, not after a wait
    assert checked["known"] == "admitted", checked
    assert checked["unknown"] == "MetadataUnavailable" and float(checked["unknown_s"]) < 5, checked
    # the write waited for the server and landed
    assert "error" not in deployed, deployed
    assert float(deployed["waited"]) >= DOWN_SECONDS - 0.5
    assert [route.version for route in project.deployments.get("fraud").routes] == [2]
    # the controllers: both ticking again after the outage, never holding the lease together
    assert all(max(times) > came_back for times in leases.ticks.values()), "a controller stopped ticking"
    after = [h for h in leases.held if h[1] > came_back]
    assert after, f"no controller held the lease after the restart: {leases.held[-3:]}"
    assert not leases.overlaps(), leases.overlaps()[:3]


def _wait_for_version(project: Project, version: int, timeout: float) -> float:
    """When the prediction log first shows an answer from ``version`` (its monotonic time here)."""
    deadline = time.monotonic() + timeout
    folder = predictions_folder(project.settings)
    while time.monotonic() < deadline:
        frame = read_predictions(folder, "fraud")
        if (frame["version"] == version).any():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"the server did not answer with v{version} within {timeout} s of the restart")


def _keys_during_outage(authenticator: Authenticator, known: str, unknown: str) -> dict[str, object]:
    """What a serving worker's key check does while the database is down (its cache long expired)."""
    time.sleep(0.6)  # past the cache's 0.5 s: the known key must be checked again
    out: dict[str, object] = {}
    out["known"] = "admitted" if authenticator.identify(f"Bearer {known}") else "?"
    started = time.monotonic()
    try:
        authenticator.identify(f"Bearer {unknown}")
        out["unknown"] = "admitted"
    except MetadataUnavailable:
        out["unknown"] = "MetadataUnavailable"
    out["unknown_s"] = time.monotonic() - started
    return out

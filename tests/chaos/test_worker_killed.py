"""Chaos: one worker of ``mloop serve --workers 2`` killed (``kill -9``) under load.

What a user relies on: the other worker keeps answering; the supervisor starts a new worker, which answers;
the only requests that fail are those in flight on the killed worker's connections (each keep-alive
client has at most one in flight, so failed <= the connections the killed worker held); and every request
a client got an answer for is in the prediction log, the killed worker's segment compacted by its
successor (the zero-loss rule of docs/serving.md holds for a worker too).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from mloop import Project
from mloop.predictions import predictions_folder, read_predictions
from tests.chaos.disk import settle
from tests.chaos.procs import ReconnectingClients, connections, workers
from tests.serving.conftest import trained, trained_template  # noqa: F401 (fixtures)
from tests.serving.http.load import fraud_rows
from tests.serving.http.running import mloop_serve

CLIENTS = 6  # keep-alive connections, spread by the kernel over the two workers
BEFORE = 150  # answers before the kill
AFTER = 50  # answers after the new worker answers
RESTART_BOUND = 60.0  # seconds; measured ~3 s on a busy 2-core machine (a worker imports mloop, loads models)


def _answered(metrics_dir: Path, pid: int) -> bool:
    """Has worker ``pid`` counted a request? Each worker writes its Prometheus samples to its own file."""
    return (metrics_dir / f"counter_{pid}.db").exists()


def test_a_killed_worker_costs_only_its_in_flight_requests_and_is_replaced(trained: Project) -> None:  # noqa: F811
    trained.deploy("workers", "fraud", version=1)
    root = Path(trained.root)
    # No shedding on event-loop lag: the clients run on the server's cores here and the replacement's start
    # takes CPU from the survivor, which the guard would shed as overload; this test counts the kill's cost.
    settle(root / "mloop.yaml", serving={"max_queue_ms": None})
    metrics_dir = root / ".mloop" / "prometheus"
    with (
        mloop_serve(root, "--workers", "2") as server,
        ReconnectingClients(server.url, "workers", fraud_rows(root), clients=CLIENTS) as load,
    ):
        port = int(server.url.rsplit(":", 1)[1])
        supervisor = server.process.pid
        deadline = time.monotonic() + 60
        while not (len(pids := workers(supervisor)) == 2 and all(_answered(metrics_dir, p) for p in pids)):
            assert time.monotonic() < deadline, f"both workers did not answer: {pids}, {load.statuses}"
            time.sleep(0.05)
        load.wait_answers(BEFORE)
        # The worker holding the most client connections: the fault hits clients, which is the point.
        held = {pid: connections(pid, port) for pid in pids}
        victim = max(held, key=lambda pid: held[pid])
        survivor = next(pid for pid in pids if pid != victim)
        on_victim = connections(victim, port)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while True:  # the supervisor notices (it checks every 0.5 s) and spawns a replacement
            fresh = [p for p in workers(supervisor) if p not in pids]
            if fresh and _answered(metrics_dir, fresh[0]):
                break
            assert time.monotonic() < killed + RESTART_BOUND, f"no new worker answered: {workers(supervisor)}"
            time.sleep(0.02)
        restarted = time.monotonic()
        gap_answers = load.answered_between(killed, restarted)
        load.wait_answers(len(load.answers) + AFTER)
        assert server.process.poll() is None, "the supervisor exited"
        assert survivor in workers(supervisor), "the surviving worker died too"
    failed = len(load.errors)
    print(
        f"\nworker killed: restart {restarted - killed:.2f} s (new worker answering); "
        f"{gap_answers} answers by the other worker meanwhile; failed {failed} "
        f"(connection errors; the killed worker held {on_victim} of {CLIENTS} connections: {held}); "
        f"statuses {dict(load.statuses)}"
    )
    assert gap_answers > 0, "the other worker did not answer while its sibling was replaced"
    assert failed <= on_victim, f"{failed} requests failed, more than the killed worker's {on_victim}"
    assert set(load.statuses) == {200}, load.refusals

    folder = predictions_folder(trained.settings)
    logged = read_predictions(folder, "workers")
    missing = set(load.ids) - set(logged[logged["status"] == "ok"]["request_id"])
    assert not missing, f"{len(missing)} of {len(load.ids)} answered requests are not in the prediction log"
    # The killed worker's segments were compacted by the new worker as it started (its lock was free).
    left = sorted(p.name for p in (Path(folder) / "segments").glob(f"{victim}-*.jsonl"))
    assert not left, f"the killed worker's segments were not recovered: {left}"

"""What the canary measures per version: requests past the endpoint's timeout_ms count as failures."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mloop._time import CLOCK_SKEW
from mloop.loop.live import step_window, version_stats
from mloop.predictions.files import partition, to_table, write_parquet


def test_timeouts_count_as_failed_requests_and_stay_out_of_the_latency(tmp_path: Path) -> None:
    now = time.time()
    statuses = (
        [(1, "ok", 0.002)] * 8 + [(2, "ok", 0.2)] * 3 + [(2, "timeout", 0.1)] * 2 + [(2, "error", 0.01)]
    )
    recs = [{"request_id": uuid.uuid4().hex, "ts": now + i * 1e-4, "endpoint": "fraud", "model": "fraud",
             "version": v, "revision": 1, "latency_s": s, "status": status,
             "predictions": [0.1 if status == "ok" else None], "inputs": {}}
            for i, (v, status, s) in enumerate(statuses)]  # fmt: skip
    day = datetime.fromtimestamp(now, UTC).date()
    write_parquet(to_table(recs), partition(tmp_path, "fraud", day) / "part-1.parquet")
    stats = version_stats(tmp_path, "fraud", datetime.now(UTC) - timedelta(minutes=5))
    assert stats[1]["requests"] == 8 and stats[1]["errors"] == 0
    assert stats[2]["requests"] == 6 and stats[2]["errors"] == 3 and stats[2]["error_rate"] == 0.5
    assert 190 <= stats[2]["p99_ms"] <= 200  # the answered ones only: a timeout has no answer's latency


def _logged(folder: Path, at: float, revision: int, version: int, n: int) -> None:
    """``n`` answers of ``version`` by deployment ``revision``, stamped ``at`` (a server's clock)."""
    recs = [{"request_id": uuid.uuid4().hex, "ts": at + i * 1e-3, "endpoint": "fraud", "model": "fraud",
             "version": version, "revision": revision, "latency_s": 0.002, "status": "ok",
             "predictions": [0.1], "inputs": {}} for i in range(n)]  # fmt: skip
    day = datetime.fromtimestamp(at, UTC).date()
    write_parquet(to_table(recs), partition(folder, "fraud", day) / f"part-{uuid.uuid4().hex}.parquet")


def test_a_steps_requests_are_told_by_its_revision_whatever_the_servers_clocks(tmp_path: Path) -> None:
    started = datetime.now(UTC)  # the step began at this moment, on the controller's clock
    at = started.timestamp()
    _logged(tmp_path, at - 300, revision=7, version=2, n=4)  # the step's, from a server 5 minutes behind
    _logged(tmp_path, at + 290, revision=6, version=2, n=9)  # the step before's, from one 5 minutes ahead
    _logged(tmp_path, at - 2 * 3600, revision=7, version=1, n=3)  # long before: no server is that far off
    stats = version_stats(tmp_path, "fraud", started, revision=7)
    assert set(stats) == {2} and stats[2]["requests"] == 4
    # Without the revision (a step recorded by an older mloop), only the clock decides, as before.
    assert version_stats(tmp_path, "fraud", started)[2]["requests"] == 9
    assert step_window(started, 7) == started - CLOCK_SKEW and step_window(started, None) == started

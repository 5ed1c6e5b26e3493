"""What the canary measures per version: requests past the endpoint's timeout_ms count as failures."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mloop.loop.live import version_stats
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

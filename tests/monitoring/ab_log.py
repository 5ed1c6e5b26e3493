"""A small prediction log with click feedback, written as the server and ``POST /v1/feedback`` write it:
for the A/B reader, its CLI and the loop's A/B gate."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from mloop.predictions import feedback
from mloop.predictions.files import partition, to_table, write_parquet


def serve(folder: Path, endpoint: str, model: str, versions: Sequence[int], start: float, *,
          rows: int = 1, rids: Sequence[str] | None = None, suffix: str = "", status: str = "ok",
          revision: int = 1) -> list[str]:  # fmt: skip
    """One answered request per entry of ``versions`` (that version answered it), a second apart from
    ``start`` (epoch seconds), each of ``rows`` rows; request ids ``rids`` (new ones by default) plus
    ``suffix`` (``/retrieve`` for a stage's rows); ``status`` error: failed requests; ``revision``: the
    deployment revision that served them. Returns the request ids without the suffix."""
    rids = list(rids) if rids is not None else [uuid.uuid4().hex for _ in versions]
    recs = [{"request_id": rid + suffix, "ts": start + i, "endpoint": endpoint, "model": model,
             "version": int(version), "revision": revision, "latency_s": 0.002, "status": status,
             "predictions": [0.5] * rows, "inputs": {}}
            for i, (rid, version) in enumerate(zip(rids, versions, strict=True))]  # fmt: skip
    day = datetime.fromtimestamp(start, UTC).date()
    write_parquet(to_table(recs), partition(folder, endpoint, day) / f"part-{uuid.uuid4().hex}.parquet")
    return rids


def label(folder: Path, endpoint: str, items: Sequence[tuple[str, int, Any]]) -> None:
    """Labels ``(request_id, row, label)`` filed under ``endpoint``, as one feedback call stores them."""
    now = datetime.now(UTC)
    table = pa.Table.from_pydict({
        "request_id": [i[0] for i in items], "row": [i[1] for i in items], "endpoint": [endpoint] * len(items),
        "label": [json.dumps(i[2]) for i in items], "received_at": [now] * len(items),
    }, schema=feedback.SCHEMA)  # fmt: skip
    target = folder / feedback.FOLDER / f"date={now.date().isoformat()}" / f"part-{uuid.uuid4().hex}.parquet"
    write_parquet(table, target)

"""Benchmark: the cost of appending rows to a dataset that already holds many (issue 22).

For each base size it ingests ``size`` rows (ids rising with time, one day of timestamps per Parquet
file, the usual shape of an event log), then times one append of ``--append`` new rows with later ids and
timestamps, of which ``--resent`` are re-sent rows of the base's last day (so the duplicate-key check
has real duplicates to find). The append's cost should follow the new rows, not the base size.

    .venv/bin/python benchmarks/ingest_append.py                          # 2M into 0, 2M, 6M rows
    .venv/bin/python benchmarks/ingest_append.py --sizes 0 10000000 50000000
    .venv/bin/python benchmarks/ingest_append.py --random-keys            # keys that no range can prune
    .venv/bin/python benchmarks/ingest_append.py --s3 --sizes 0 10000000  # data_url on SeaweedFS (S3)

Run it with ``PYTHONPATH=/path/to/other/checkout/src`` for a before/after figure of another version.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCHEMA = """\
name: events
key: [id]
timestamp: ts
columns:
  - {name: id, dtype: int64}
  - {name: ts, dtype: timestamp}
  - {name: user, dtype: int64}
  - {name: amount, dtype: float64}
"""
DAY_US = 86_400_000_000
START_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)


def rows(
    first_id: int, count: int, days: int, first_day: int, *, random_keys: bool, string_keys: bool, seed: int
) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    if random_keys:
        ids = rng.permutation(ids) * 7919 % (1 << 61)  # no order: every file spans the whole key range
    ts = START_US + first_day * DAY_US + np.arange(count, dtype=np.int64) * (days * DAY_US // max(count, 1))
    key = pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 19, "0") if string_keys else pa.array(ids)
    return pa.table(
        {
            "id": key,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "user": rng.integers(0, 100_000, count),
            "amount": rng.random(count) * 100,
        }
    )


def one(
    size: int,
    append: int,
    resent: int,
    days_per_million: int,
    random_keys: bool,
    string_keys: bool,
    work: Path,
    data_url: str | None = None,
) -> dict[str, object]:
    import mloop as ml

    root = work / f"p{size}"
    root.mkdir()
    schema = (
        SCHEMA.replace("{name: id, dtype: int64}", "{name: id, dtype: string}") if string_keys else SCHEMA
    )
    (root / "events.yaml").write_text(schema, encoding="utf-8")
    days = max(1, size * days_per_million // 1_000_000)
    with ml.Project.open(root, env={}, **({"data_url": data_url} if data_url else {})) as project:
        if size:
            base = rows(0, size, days, 0, random_keys=random_keys, string_keys=string_keys, seed=1)
            pq.write_table(base, work / f"base{size}.parquet", row_group_size=1_000_000)
            project.data.ingest(str(work / f"base{size}.parquet"), "events", schema=root / "events.yaml")
            tail = base.slice(max(0, size - resent)) if not random_keys else base.slice(0, min(resent, size))
        else:
            tail = base = rows(0, 0, 1, 0, random_keys=random_keys, string_keys=string_keys, seed=1)
        new_days = max(1, append * days_per_million // 1_000_000)
        new = rows(
            size,
            append - tail.num_rows,
            new_days,
            days,
            random_keys=random_keys,
            string_keys=string_keys,
            seed=2,
        )
        batch = pa.concat_tables([tail, new])
        pq.write_table(batch, work / f"append{size}.parquet", row_group_size=1_000_000)
        clock = time.perf_counter()
        report = project.data.ingest(
            str(work / f"append{size}.parquet"), "events", schema=root / "events.yaml"
        )
        seconds = time.perf_counter() - clock
    return {
        "base_rows": size,
        "appended": append,
        "accepted": report.rows_accepted,
        "quarantined": report.rows_quarantined,
        "seconds": round(seconds, 2),
        "keys_s": report.timings.get("keys"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 2_000_000, 6_000_000])
    parser.add_argument("--append", type=int, default=2_000_000)
    parser.add_argument("--resent", type=int, default=1_000, help="rows of the base re-sent in the append")
    parser.add_argument(
        "--days-per-million", type=int, default=10, help="timestamps spread: files per 1M rows"
    )
    parser.add_argument("--random-keys", action="store_true", help="ids in no order (no file can be pruned)")
    parser.add_argument("--string-keys", action="store_true", help="ids as zero-padded strings")
    parser.add_argument("--s3", action="store_true", help="data_url on a SeaweedFS server started here")
    args = parser.parse_args()
    server = None
    if args.s3:
        import os
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.seaweedfs import SeaweedFSServer

        server = SeaweedFSServer().start()
        os.environ.update(server.env)
    try:
        for size in args.sizes:
            with tempfile.TemporaryDirectory(prefix="mloop-append-") as tmp:
                url = f"s3://{server.bucket()}/mloop" if server is not None else None
                result = one(
                    size,
                    args.append,
                    args.resent,
                    args.days_per_million,
                    args.random_keys,
                    args.string_keys,
                    Path(tmp),
                    url,
                )
            print(json.dumps({**result, "data_url": "s3" if url else "folder"}), flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()

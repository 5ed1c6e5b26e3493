"""Benchmark: where the embedded defaults stop (the capacity table of docs/deploy.md).

Three parts, each short, each printing its figures and the setup they came from:

1. ``metadata``: audited mutations per second on the metadata store (``run.set_tag``: one write
   transaction with its audit event, as every deploy, promotion, push or user change is), from 1 thread,
   4 threads and 2 processes, for --seconds each, on SQLite (the default) and, when PostgreSQL is
   installed, on a throwaway PostgreSQL server (fsync off: an upper bound). Then metric points written
   per second by ``run.flush()`` (the tracking buffer's batch insert) on SQLite.
2. ``predlog``: the local prediction log: ``PredictionLog.record`` of one-row answers with 20 inputs from
   one thread for --seconds (the request path: lines/s and MB/s), the backlog of segments left when it
   stops, then ``close()`` (fsync + compaction of the rest into Parquet); the rows read back are counted.
3. ``duckdb``: a point-in-time training set (``mloop.features.offline.historical``: 10 features, TTL 2
   days, the data of benchmarks/offline_pit.py) at growing sizes, with DuckDB's default memory limit and
   with ``memory_limit`` forced low, so that it spills to its temp folder: seconds, peak RSS of this
   process, peak bytes spilled.

    .venv/bin/python benchmarks/capacity.py                       # all three, about 4 minutes
    .venv/bin/python benchmarks/capacity.py metadata --seconds 5
    .venv/bin/python benchmarks/capacity.py predlog --seconds 20
    .venv/bin/python benchmarks/capacity.py duckdb --limit 1GB --sizes 30
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE))


# --- 1. the metadata store ---------------------------------------------------------------------------------


def _mutations(root: str, url: str, run_id: str, seconds: float, tag: str) -> int:
    """Set tags of one run for ``seconds``; how many committed."""
    from mloop import Project

    project = Project.open(root, env={}, metadata_url=url)
    try:
        done, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            project.runs.set_tags(run_id, {tag: done})
            done += 1
        return done
    finally:
        project.close()


def _in_process(args: tuple[str, str, str, float, str]) -> int:
    return _mutations(*args)


def metadata(seconds: float) -> None:
    from mloop import Project

    backends: list[tuple[str, str | None]] = [("SQLite (WAL)", None)]
    server: Any = None
    try:
        from tracking import Postgres

        server = Postgres()
        backends.append(("PostgreSQL (fsync off)", server.start()))
    except Exception as exc:  # no PostgreSQL here: SQLite only
        print(f"PostgreSQL skipped: {exc}")
    try:
        print(f"audited mutations per second (run.set_tag), {seconds:.0f} s each")
        for name, url in backends:
            root = tempfile.mkdtemp(prefix="capacity-", dir=WORK)
            project = Project.open(root, env={}, **({"metadata_url": url} if url else {}))
            url = project.store.url
            run = project.runs.start(experiment="capacity")
            run_id = run.id
            _mutations(root, url, run_id, 0.5, "warm")
            row = [name]
            for threads in (1, 4):
                with ThreadPoolExecutor(threads) as pool:
                    counts = list(
                        pool.map(_in_process, [(root, url, run_id, seconds, f"t{i}") for i in range(threads)])
                    )
                row.append(f"{threads} thread{'s' if threads > 1 else ''}: {sum(counts) / seconds:,.0f}/s")
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                counts = pool.map(_in_process, [(root, url, run_id, seconds, f"p{i}") for i in range(2)])
            row.append(f"2 processes: {sum(counts) / seconds:,.0f}/s")
            print("  " + " · ".join(row))
            if url.startswith("sqlite"):
                points = 500_000
                started = time.perf_counter()
                for step in range(points):  # the buffer's thread writes every 0.5 s meanwhile
                    run.log_metric("loss", 1.0 / (step + 1), step=step)
                run.flush()
                elapsed = time.perf_counter() - started
                stored = len(project.runs.metric_history(run_id, "loss"))
                print(
                    f"  metric points: {stored:,} logged and stored in {elapsed:.2f} s: {stored / elapsed:,.0f} points/s"
                )
            run.end()
            project.close()
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if server is not None:
            server.stop()


# --- 2. the prediction log ---------------------------------------------------------------------------------


def predlog(seconds: float) -> None:
    from mloop.predictions.answer import Answer
    from mloop.predictions.files import read_table
    from mloop.predictions.log import PredictionLog

    folder = Path(tempfile.mkdtemp(prefix="capacity-predlog-", dir=WORK))
    inputs = {f"f{i}": [0.123456 * i] for i in range(20)}
    log = PredictionLog(folder)
    log.start_compactor()
    n, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(1000):
            log.record(Answer(f"r{n}", "fraud", "fraud", 1, 1, [0.5], inputs, 0.001))
            n += 1
    elapsed = time.perf_counter() - started
    segments = sum(p.stat().st_size for p in (folder / "segments").glob("*.jsonl*"))
    written = sum(p.stat().st_size for p in (folder / "segments").glob("*")) + sum(
        p.stat().st_size for p in folder.rglob("*.parquet")
    )
    print(f"prediction log, one thread recording one-row answers with 20 inputs for {seconds:.0f} s")
    print(f"  record: {n:,} lines in {elapsed:.1f} s: {n / elapsed:,.0f} lines/s")
    print(
        f"  left in segments when recording stopped: {segments / 2**20:,.0f} MiB (on disk in all: {written / 2**20:,.0f} MiB)"
    )
    started = time.perf_counter()
    log.close(timeout=600)
    closing = time.perf_counter() - started
    rows = read_table(folder, "fraud").num_rows
    print(
        f"  close (fsync + compaction of the rest): {closing:.1f} s; rows in Parquet: {rows:,} (recorded {n:,})"
    )
    print(f"  end to end, recorded and compacted: {n / (elapsed + closing):,.0f} rows/s")
    shutil.rmtree(folder, ignore_errors=True)


# --- 3. DuckDB: in memory vs spilling ----------------------------------------------------------------------


def _spilled(folder: Path, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.02):
        peak[0] = max(peak[0], sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()))


def duckdb_sizes(limit: str, millions: list[int]) -> None:
    import pandas as pd

    import mloop as ml
    from mloop.features.offline import Table, historical
    from offline_pit import FEATURES, TTL, PeakMemory, make_data

    print(
        f"point-in-time join (10 features, TTL 2 days): DuckDB's default memory limit vs memory_limit={limit}"
    )
    for sources, rows in ((m * 1_000_000, m * 100_000) for m in millions):
        source, entity = make_data(sources, 1_000 * sources // 1_000_000, rows)
        entity_df = pd.read_parquet(entity)
        entity_key = ml.Entity("entity", join_keys=["entity_id"])
        view = ml.FeatureView("stats", entities=[entity_key], ttl=TTL, features=[ml.Field(f) for f in FEATURES],
                              source=ml.ParquetSource(source, timestamp="ts", created_timestamp="created"))  # fmt: skip
        table = Table(f"read_parquet(['{source}'])", "ts", "created")
        size = source.stat().st_size
        for memory_limit in (None, limit):
            spill = Path(tempfile.mkdtemp(prefix="spill-", dir=WORK))
            stop, peak = threading.Event(), [0]
            watcher = threading.Thread(target=_spilled, args=(spill, stop, peak), daemon=True)
            watcher.start()
            try:
                with PeakMemory() as memory:
                    started = time.perf_counter()
                    out = historical(entity_df, [(view, FEATURES)], {"stats": table}, timestamp="event_timestamp",
                                     workdir=spill, memory_limit=memory_limit)  # fmt: skip
                    elapsed = time.perf_counter() - started
                outcome = f"{elapsed:6.2f} s  peak RSS +{(memory.peak - memory.baseline) / 2**20:,.0f} MiB"
            except Exception as exc:  # out of memory under the limit: say so
                outcome = f"failed: {str(exc).splitlines()[0][:100]}"
                out = None
            finally:
                stop.set()
                watcher.join()
                shutil.rmtree(spill, ignore_errors=True)
            label = memory_limit or "default"
            print(f"  {sources:>10,} source rows ({size / 2**20:,.0f} MiB Parquet) x {rows:>9,} rows  "
                  f"limit {label:>8}: {outcome}  spilled {peak[0] / 2**20:,.0f} MiB"
                  + ("" if out is None else f"  ({len(out):,} rows out)"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", choices=["metadata", "predlog", "duckdb", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=5.0, help="per figure of metadata; predlog: 4x")
    parser.add_argument("--limit", default="256MB", help="the low DuckDB memory_limit that forces spilling")
    parser.add_argument(
        "--sizes", default="1,4,10", help="duckdb: millions of source rows (a tenth as many rows out)"
    )
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    print(f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if args.part in ("metadata", "all"):
        metadata(args.seconds)
    if args.part in ("predlog", "all"):
        predlog(args.seconds * 4 if args.part == "all" else args.seconds)
    if args.part in ("duckdb", "all"):
        duckdb_sizes(args.limit, [int(m) for m in args.sizes.split(",")])


if __name__ == "__main__":
    main()

"""Benchmark: a point-in-time correct training set (default 1M feature rows over 1k entities, 100k entity
rows, 10 features, ttl 2 days).

Prints, from one run: mloop's ``historical`` (the offline store), the floor (a bare DuckDB ASOF join of
the same data with the ttl check, no tie-breaks, no checks), and the peer, Feast 0.67's DuckDB offline
store (``get_historical_features(...).to_df()``, run in its throwaway venv) — medians over --repeat runs,
the ratios, and whether the three give identical training sets (rows compared after sorting).

    .venv/bin/python benchmarks/offline_pit.py                 # 1M x 100k, 3 repetitions, with Feast
    .venv/bin/python benchmarks/offline_pit.py --repeat 5
    .venv/bin/python benchmarks/offline_pit.py --big           # 10M x 1M: mloop and floor, time + peak memory

The peer's venv (ignored by git):
    python3 -m venv benchmarks/.peers/feast && benchmarks/.peers/feast/bin/pip install "feast[duckdb]==0.67.0" "duckdb<2"

Goals (issue: offline store): identical results, >= 10x faster than Feast's DuckDB store, within 1.5x of the
bare ASOF join.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
WORK = HERE / ".work"
PEER = HERE / ".peers" / "feast"
FEATURES = [f"f{i}" for i in range(10)]
TTL = timedelta(days=2)
DAYS = 60


def make_data(sources: int, entities: int, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """Feature rows (entity_id, ts, created, f0..f9) with unique (entity_id, ts), so every engine must
    give the same answer; entity rows (entity_id, event_timestamp, row_id) over the same days and one
    more (rows after the last data), some for entities that have no data."""
    folder = WORK / f"pit-{sources}-{entities}-{rows}"
    source, entity = folder / "features.parquet", folder / "entities.parquet"
    if source.exists() and entity.exists():
        return source, entity
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    span = DAYS * 86_400 * 10**6
    ts = start + rng.choice(span, size=sources, replace=False)  # unique times: no ties anywhere
    columns = {
        "entity_id": pa.array(rng.integers(0, entities, sources)),
        "ts": pa.array(ts).cast(pa.timestamp("us", "UTC")),
        "created": pa.array(ts + rng.integers(0, 3_600 * 10**6, sources)).cast(pa.timestamp("us", "UTC")),
        **{name: pa.array(rng.normal(size=sources)) for name in FEATURES},
    }
    pq.write_table(pa.table(columns), source.with_suffix(".tmp"))
    source.with_suffix(".tmp").rename(source)
    times = start + rng.integers(0, span + 86_400 * 10**6, rows)
    frame = pa.table({
        "entity_id": pa.array(rng.integers(0, entities + entities // 100, rows)),
        "event_timestamp": pa.array(times).cast(pa.timestamp("us", "UTC")),
        "row_id": pa.array(np.arange(rows)),
    })  # fmt: skip
    pq.write_table(frame, entity.with_suffix(".tmp"))
    entity.with_suffix(".tmp").rename(entity)
    return source, entity


class PeakMemory:
    """The largest resident set size of this process while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        self.peak = self.baseline = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakMemory:
        self.peak = self.baseline = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_mloop(source: Path, entity_df: pd.DataFrame) -> tuple[float, pd.DataFrame, PeakMemory]:
    import mloop as ml
    from mloop.features.offline import Table, historical

    entity = ml.Entity("entity", join_keys=["entity_id"])
    view = ml.FeatureView("stats", entities=[entity], ttl=TTL, features=[ml.Field(f) for f in FEATURES],
                          source=ml.ParquetSource(source, timestamp="ts", created_timestamp="created"))  # fmt: skip
    table = Table(f"read_parquet(['{source}'])", "ts", "created")
    spill = Path(tempfile.mkdtemp(prefix="spill-", dir=WORK))
    try:
        with PeakMemory() as memory:
            started = time.perf_counter()
            out = historical(entity_df, [(view, FEATURES)], {"stats": table}, timestamp="event_timestamp",
                             workdir=spill)  # fmt: skip
            elapsed = time.perf_counter() - started
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return elapsed, out, memory


def run_floor(source: Path, entity_df: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """The raw engine doing only the core work: DuckDB's ASOF join with the ttl check, into pandas."""
    import duckdb

    fresh = f"s.ts >= e.event_timestamp - INTERVAL '{TTL.days} days'"
    picks = ", ".join(f"CASE WHEN {fresh} THEN s.{f} END AS {f}" for f in FEATURES)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        started = time.perf_counter()
        con.register("entity_df", entity_df)
        out = (
            con.sql(
                f"SELECT e.*, {picks} FROM entity_df e ASOF LEFT JOIN read_parquet(['{source}']) s "
                "ON e.entity_id = s.entity_id AND e.event_timestamp >= s.ts"
            )
            .to_arrow_table()
            .to_pandas()
        )
        elapsed = time.perf_counter() - started
    return elapsed, out


PEER_SCRIPT = r'''
import json, sys, tempfile, time, textwrap
from datetime import timedelta
from pathlib import Path
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

source, entity, out, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
features = %(features)r
repo = Path(tempfile.mkdtemp(prefix="feast-repo-"))
(repo / "feature_store.yaml").write_text(textwrap.dedent(f"""
    project: bench
    provider: local
    registry: {repo / 'registry.db'}
    offline_store:
        type: duckdb
    online_store:
        type: sqlite
        path: {repo / 'online.db'}
    entity_key_serialization_version: 3
"""))
store = FeatureStore(repo_path=str(repo))
key = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
view = FeatureView(name="stats", entities=[key], ttl=timedelta(days=%(ttl_days)d),
                   schema=[Field(name=f, dtype=Float64) for f in features],
                   source=FileSource(path=source, timestamp_field="ts", created_timestamp_column="created"))
store.apply([key, view])
entity_df = pd.read_parquet(entity)
times = []
for _ in range(repeat):
    started = time.perf_counter()
    result = store.get_historical_features(entity_df=entity_df, features=[f"stats:{f}" for f in features]).to_df()
    times.append(time.perf_counter() - started)
result.to_parquet(out)
print(json.dumps({"seconds": times, "rows": len(result)}))
'''


def run_peer(source: Path, entity: Path, repeat: int) -> tuple[list[float], pd.DataFrame] | None:
    python = PEER / "bin" / "python"
    if not python.exists():
        print(f"  (peer skipped: create it with  python3 -m venv {PEER} && "
              f'{PEER}/bin/pip install "feast[duckdb]==0.67.0" "duckdb<2")')  # fmt: skip
        return None
    script, out = WORK / "peer_feast.py", WORK / "peer_feast.parquet"
    script.write_text(PEER_SCRIPT % {"features": FEATURES, "ttl_days": TTL.days})
    result = subprocess.run([str(python), str(script), str(source), str(entity), str(out), str(repeat)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        print(
            f"  (peer failed: {result.stderr.strip().splitlines()[-1] if result.stderr else result.returncode})"
        )
        return None
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["seconds"], pd.read_parquet(out)


def identical(ours: pd.DataFrame, theirs: pd.DataFrame) -> str:
    """'identical', or what differs: rows compared after sorting by row_id, every feature value, NaN = NaN."""
    columns = ["entity_id", "event_timestamp", "row_id", *FEATURES]
    if len(ours) != len(theirs):
        return f"DIFFERENT: {len(ours)} rows vs {len(theirs)}"
    a = ours[columns].sort_values("row_id", kind="stable").reset_index(drop=True)
    b = theirs[columns].sort_values("row_id", kind="stable").reset_index(drop=True)
    if not (a["entity_id"].to_numpy() == b["entity_id"].to_numpy()).all():
        return "DIFFERENT: entity ids"
    if not (a["event_timestamp"].to_numpy() == b["event_timestamp"].dt.tz_convert("UTC").to_numpy()).all():
        return "DIFFERENT: timestamps"
    x, y = a[FEATURES].to_numpy(dtype=float), b[FEATURES].to_numpy(dtype=float)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if not same.all():
        return f"DIFFERENT: {int((~same).any(axis=1).sum())} rows differ"
    return f"identical ({len(a):,} rows, {int(np.isnan(x[:, 0]).sum()):,} without a match)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sources", type=int, default=1_000_000, help="feature rows")
    parser.add_argument("--entities", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=100_000, help="entity rows (the training set)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="10M feature rows x 1M entity rows; no peer")
    parser.add_argument("--no-peer", action="store_true", help="skip Feast")
    args = parser.parse_args()
    if args.big:
        args.sources, args.rows, args.no_peer = 10_000_000, 1_000_000, True

    source, entity = make_data(args.sources, args.entities, args.rows)
    entity_df = pd.read_parquet(entity)
    print(f"data: {args.sources:,} feature rows over {args.entities:,} entities, {args.rows:,} entity rows, "
          f"{len(FEATURES)} features, ttl {TTL.days} days ({source.stat().st_size / 1e6:,.0f} MB Parquet)")  # fmt: skip
    ours, floor, peaks = [], [], []
    for i in range(args.repeat):
        seconds, out, memory = run_mloop(source, entity_df)
        ours.append(seconds)
        peaks.append(memory.peak - memory.baseline)
        floor_s, floor_out = run_floor(source, entity_df)
        floor.append(floor_s)
        print(
            f"  run {i + 1}: mloop {ours[-1]:.3f} s (peak +{peaks[-1] / 2**20:,.0f} MiB), floor {floor[-1]:.3f} s"
        )
    peer = None if args.no_peer else run_peer(source, entity, args.repeat)
    if peer:
        print("  feast runs: " + ", ".join(f"{s:.2f} s" for s in peer[0]))

    mloop_s, floor_s = statistics.median(ours), statistics.median(floor)
    print(f"\nmloop historical            {mloop_s:7.3f} s  {args.rows / mloop_s:>12,.0f} rows/s  "
          f"peak memory +{max(peaks) / 2**20:,.0f} MiB over {memory.baseline / 2**20:,.0f} MiB")  # fmt: skip
    print(f"floor: bare DuckDB ASOF join {floor_s:7.3f} s  {args.rows / floor_s:>12,.0f} rows/s")
    print(f"ratio mloop / floor          {mloop_s / floor_s:7.2f}x   (goal <= 1.5x)")
    print(f"mloop vs floor results:      {identical(out, floor_out)}")
    if peer:
        peer_s = statistics.median(peer[0])
        print(f"peer: Feast 0.67 DuckDB store {peer_s:6.3f} s  {args.rows / peer_s:>12,.0f} rows/s")
        print(f"speed-up over Feast          {peer_s / mloop_s:7.1f}x   (goal >= 10x)")
        print(f"mloop vs Feast results:      {identical(out, peer[1])}")
    elif not args.no_peer:
        print("peer: Feast not measured (see above)")
    print(f"(medians of {args.repeat} runs; python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

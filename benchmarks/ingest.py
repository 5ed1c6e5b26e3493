"""Benchmark: ingest + validate a Parquet file (default 5M rows x 20 columns).

Prints, from one run: mloop's ingestion (every rule checked, accepted rows written partitioned by date,
bad rows quarantined, metadata committed), the floor (a plain ``pyarrow.parquet.read_table`` +
``write_table`` of the same file, no checks), the engine floor (DuckDB reading the file and writing it
partitioned by date, no checks) and, when installed in the throwaway venv, a peer
(pandera validating a pandas frame, then ``to_parquet``) — medians over --repeat runs, and the ratios.

    .venv/bin/python benchmarks/ingest.py                  # 5M rows, 3 repetitions
    .venv/bin/python benchmarks/ingest.py --rows 1000000 --repeat 5
    .venv/bin/python benchmarks/ingest.py --peer           # also pandera, from benchmarks/.peers/pandera

Goal (issue 2): >= 1M rows/s validated, and within 3x of the plain read + write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).parent
WORK = HERE / ".work"
PEERS = HERE / ".peers"
CATEGORIES = ["grocery", "fuel", "restaurants", "online_retail", "electronics", "travel", "jewelry", "gaming"]


def make_data(rows: int, bad_share: float, seed: int = 0) -> Path:
    path = WORK / f"ingest-{rows}-{bad_share}.parquet"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    columns: dict[str, pa.Array] = {
        "txn_id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array(np.sort(start + rng.integers(0, 90 * 86_400 * 10**6, rows))).cast(
            pa.timestamp("us", "UTC")
        ),
        "customer_id": pa.array(rng.integers(1, 100_000, rows)),
        "merchant_id": pa.array(rng.integers(1, 5_000, rows)),
    }
    amount = rng.lognormal(3, 1, rows)
    bad = rng.random(rows) < bad_share
    amount[bad] = -amount[bad]
    columns["amount"] = pa.array(amount)
    for i in range(9):
        columns[f"f{i}"] = pa.array(rng.normal(size=rows))
    for i in range(4):
        columns[f"c{i}"] = pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), rows)])
    columns["device"] = pa.array(np.array(["mobile", "web", "pos"])[rng.integers(0, 3, rows)])
    columns["country"] = pa.array(np.array(["DE", "FR", "NL", "ES"])[rng.integers(0, 4, rows)])
    table = pa.table(columns)
    assert table.num_columns == 20
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.rename(path)
    return path


def schema():  # type: ignore[no-untyped-def]
    import mloop as ml

    columns = [
        ml.Column("txn_id", "int64", nullable=False),
        ml.Column("ts", "timestamp"),
        ml.Column("customer_id", "int64", nullable=False, min=1),
        ml.Column("merchant_id", "int64", nullable=False, min=1),
        ml.Column("amount", "float64", nullable=False, min=0, max=1e7),
        *[ml.Column(f"f{i}", "float64", min=-50, max=50) for i in range(9)],
        *[ml.Column(f"c{i}", "string", allowed=CATEGORIES) for i in range(4)],
        ml.Column("device", "string", allowed=["mobile", "web", "pos"]),
        ml.Column("country", "string", regex="[A-Z]{2}"),
    ]
    return ml.Dataset("bench", columns=columns, key=["txn_id"], timestamp="ts")


def run_mloop(path: Path) -> tuple[float, dict[str, int]]:
    import mloop as ml

    root = Path(tempfile.mkdtemp(prefix="mloop-bench-", dir=WORK))
    try:
        with ml.Project.open(root, env={}) as project:
            started = time.perf_counter()
            report = project.data.ingest(path, schema())
            elapsed = time.perf_counter() - started
        return elapsed, {
            "read": report.rows_read,
            "accepted": report.rows_accepted,
            "quarantined": report.rows_quarantined,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_engine_floor(path: Path) -> float:
    """The raw engine doing only the core work: DuckDB reading the file and writing it partitioned by date."""
    import duckdb

    out = WORK / "engine-floor"
    shutil.rmtree(out, ignore_errors=True)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        started = time.perf_counter()
        con.execute(
            f"COPY (SELECT *, CAST(ts AS DATE) AS _date FROM read_parquet('{path}')) TO '{out}' "
            "(FORMAT PARQUET, PARTITION_BY (_date))"
        )
        elapsed = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return elapsed


def run_floor(path: Path) -> float:
    out = WORK / "floor.parquet"
    started = time.perf_counter()
    pq.write_table(pq.read_table(path), out)
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


PEER_SCRIPT = r"""
import sys, time, json
import pandas as pd, pandera.pandas as pa
CATS = %(cats)r
schema = pa.DataFrameSchema({
    "txn_id": pa.Column(int, unique=True), "ts": pa.Column("datetime64[us, UTC]"),
    "customer_id": pa.Column(int, pa.Check.ge(1)), "merchant_id": pa.Column(int, pa.Check.ge(1)),
    "amount": pa.Column(float, [pa.Check.ge(0), pa.Check.le(1e7)]),
    **{f"f{i}": pa.Column(float, [pa.Check.ge(-50), pa.Check.le(50)], nullable=True) for i in range(9)},
    **{f"c{i}": pa.Column(str, pa.Check.isin(CATS), nullable=True) for i in range(4)},
    "device": pa.Column(str, pa.Check.isin(["mobile", "web", "pos"]), nullable=True),
    "country": pa.Column(str, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
})
started = time.perf_counter()
frame = pd.read_parquet(sys.argv[1])
try:
    schema.validate(frame, lazy=True)
    bad = 0
except pa.errors.SchemaErrors as exc:
    bad = exc.failure_cases["index"].nunique()
frame.to_parquet(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - started, "failing_rows": int(bad)}))
"""


def run_peer(path: Path) -> float | None:
    python = PEERS / "pandera" / "bin" / "python"
    if not python.exists():
        print(f"  (peer skipped: create it with  python3 -m venv {PEERS / 'pandera'} && "
              f"{PEERS / 'pandera'}/bin/pip install pandera pandas pyarrow)")  # fmt: skip
        return None
    script = WORK / "peer_pandera.py"
    script.write_text(PEER_SCRIPT % {"cats": CATEGORIES})
    result = subprocess.run([str(python), str(script), str(path), str(WORK / "peer.parquet")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--bad", type=float, default=0.01, help="share of rows that break a rule")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer", action="store_true", help="also time pandera (throwaway venv)")
    args = parser.parse_args()

    path = make_data(args.rows, args.bad)
    size = path.stat().st_size / 1e6
    print(f"data: {args.rows:,} rows x 20 columns, {size:,.0f} MB Parquet, {args.bad:.0%} bad rows ({path})")
    mloop_times, floor_times, engine_times, peer_times = [], [], [], []
    counts: dict[str, int] = {}
    for i in range(args.repeat):
        seconds, counts = run_mloop(path)
        mloop_times.append(seconds)
        floor_times.append(run_floor(path))
        engine_times.append(run_engine_floor(path))
        if args.peer:
            peer = run_peer(path)
            if peer is not None:
                peer_times.append(peer)
        print(f"  run {i + 1}: mloop {mloop_times[-1]:.2f} s, floor {floor_times[-1]:.2f} s, "
              f"engine floor {engine_times[-1]:.2f} s"
              + (f", pandera {peer_times[-1]:.2f} s" if peer_times else ""))  # fmt: skip
    mloop_s, floor_s = statistics.median(mloop_times), statistics.median(floor_times)
    print(f"\nmloop ingest + validate   {mloop_s:6.2f} s  {args.rows / mloop_s:>12,.0f} rows/s  "
          f"(read {counts['read']:,}, accepted {counts['accepted']:,}, quarantined {counts['quarantined']:,})")  # fmt: skip
    print(f"floor read + write        {floor_s:6.2f} s  {args.rows / floor_s:>12,.0f} rows/s")
    engine_s = statistics.median(engine_times)
    print(f"engine floor: DuckDB read + date-partitioned write, no checks "
          f"{engine_s:6.2f} s  {args.rows / engine_s:>12,.0f} rows/s")  # fmt: skip
    print(f"ratio mloop / floor       {mloop_s / floor_s:6.2f}x   (goal <= 3x)")
    print(f"ratio mloop / engine floor {mloop_s / engine_s:5.2f}x   (the price of checking every row)")
    if peer_times:
        peer_s = statistics.median(peer_times)
        print(f"peer pandera + to_parquet {peer_s:6.2f} s  {args.rows / peer_s:>12,.0f} rows/s")
        print(f"speed-up over pandera     {peer_s / mloop_s:6.2f}x")
    print(f"(medians of {args.repeat} runs; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()

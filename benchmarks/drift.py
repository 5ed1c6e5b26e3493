"""Benchmark: the drift suite on 1M current rows x 120 columns against a stored reference profile, and
Evidently's DataDriftPreset on the same data.

Data: 100 numeric columns (normal, lognormal and integer-valued) and 20 categorical ones (6 to 40
categories); the reference has --reference rows, the current window --rows; 10 numeric and 3 categorical
columns are shifted in the current window (mean +0.3 sd, one category's share moved), the rest are drawn
from the reference's distribution.

Prints, from one run: the time to build the profile (once per model version, at training); the time of
``mloop.monitoring.suite.compare`` with the default methods (medians of --repeat) and its peak traced
memory; the same with Evidently's method choices (normed Wasserstein for numeric, Jensen-Shannon for
categorical columns, both at 0.1); Evidently 0.7.23's ``Report([DataDriftPreset()]).run`` in its
throwaway venv (one run: it takes minutes); the ratio; and how often each column's drift decision agrees
with Evidently's when mloop uses Evidently's methods.

    .venv/bin/python benchmarks/drift.py
    .venv/bin/python benchmarks/drift.py --rows 200000 --no-peer

The peer venv:  python3 -m venv benchmarks/.peers/evidently && benchmarks/.peers/evidently/bin/pip install
"evidently==0.7.23" "pandas<3"

Goal (issue 6): the default suite in <= 5 s with bounded memory; >= 20x faster than Evidently.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.metrics.profile import build_profile
from mloop.monitoring.suite import compare

HERE = Path(__file__).parent
WORK = HERE / ".work" / "drift"
PEER = HERE / ".peers" / "evidently" / "bin" / "python"
NUMERIC, CATEGORICAL = 100, 20
SHIFTED_NUMERIC, SHIFTED_CATEGORICAL = 10, 3

PEER_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference = pd.read_parquet(sys.argv[1]); current = pd.read_parquet(sys.argv[2])
started = time.perf_counter()
result = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
seconds = time.perf_counter() - started
drifted = {}
for metric in result.dict()["metrics"]:
    name = metric.get("metric_name", "")
    config = metric.get("config", {})
    if name.startswith("ValueDrift"):
        column = config.get("column")
        threshold = config.get("threshold")
        method = config.get("method")
        value = metric["value"]
        # Evidently's tests drift when p < threshold, its distances when the value >= threshold
        is_test = method is not None and ("p_value" in method or "test" in method or "chi" in method or "K-S" in method)
        drifted[column] = {"value": value, "method": method, "threshold": threshold,
                           "drifted": bool(value < threshold) if is_test else bool(value >= threshold)}
print(json.dumps({"seconds": seconds, "columns": drifted}))
"""


def data(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        shift = 0.3 if shifted and i < SHIFTED_NUMERIC else 0.0
        if i % 3 == 0:
            columns[f"n{i}"] = rng.normal(shift, 1.0, rows)
        elif i % 3 == 1:
            columns[f"n{i}"] = rng.lognormal(0.3 * shift, 0.5, rows)
        else:
            columns[f"n{i}"] = rng.poisson(5 + 2 * shift, rows).astype(np.float64)
    for i in range(CATEGORICAL):
        k = 6 + 2 * i
        weights = np.linspace(1, 3, k)
        if shifted and i < SHIFTED_CATEGORICAL:
            weights[0] *= 4
        columns[f"c{i}"] = pd.Categorical(
            rng.choice([f"v{j}" for j in range(k)], rows, p=weights / weights.sum())
        )
    return pd.DataFrame(columns)


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    reference, current = data(args.reference, 1, False), data(args.rows, 2, True)
    print(f"{args.rows:,} current rows x {NUMERIC} numeric + {CATEGORICAL} categorical columns; reference "
          f"{args.reference:,} rows", flush=True)  # fmt: skip
    started = time.perf_counter()
    profile = build_profile(reference)
    print(f"  profile of the reference (once per model version): {time.perf_counter() - started:.2f} s")
    seconds, report = timed(lambda: compare(profile, current), args.repeat)
    tracemalloc.start()
    compare(profile, current)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = current.memory_usage(deep=True).sum()
    print(f"  mloop default suite: {seconds:.2f} s (goal <= 5 s); peak memory {peak / 2**20:.0f} MiB traced "
          f"(the window itself: {size / 2**20:.0f} MiB); {len(report.drifted)} columns drifted "
          f"(expected {SHIFTED_NUMERIC + SHIFTED_CATEGORICAL})", flush=True)  # fmt: skip
    theirs = {c: ("wasserstein" if c.startswith("n") else "jensen_shannon") for c in current.columns}
    seconds_alike, alike = timed(lambda: compare(profile, current, methods=theirs), 1)
    print(f"  mloop with Evidently's methods: {seconds_alike:.2f} s; {len(alike.drifted)} columns drifted",
          flush=True)  # fmt: skip
    if args.no_peer or not PEER.exists():
        return
    WORK.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(WORK / "reference.parquet")
    current.to_parquet(WORK / "current.parquet")
    done = subprocess.run([str(PEER), "-c", PEER_SCRIPT, str(WORK / "reference.parquet"),
                           str(WORK / "current.parquet")], capture_output=True, text=True, check=True)  # fmt: skip
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    columns = peer["columns"]
    agree = sum(columns[c]["drifted"] == bool(alike.column(c).drifted) for c in columns)
    print(f"  Evidently 0.7.23 DataDriftPreset: {peer['seconds']:.2f} s; "
          f"{sum(v['drifted'] for v in columns.values())} columns drifted")  # fmt: skip
    print(f"\nratio: mloop default suite {peer['seconds'] / seconds:.1f}x faster (goal >= 20x); with Evidently's "
          f"methods {peer['seconds'] / seconds_alike:.1f}x")  # fmt: skip
    print(f"agreement of the drift decisions with Evidently's methods: {agree}/{len(columns)} columns")
    differ = [c for c in columns if columns[c]["drifted"] != bool(alike.column(c).drifted)]
    for c in differ[:10]:
        print(f"  {c}: Evidently {columns[c]['method']} {columns[c]['value']:.4f} -> {columns[c]['drifted']}; "
              f"mloop {alike.column(c).method} {alike.column(c).statistic:.4f} -> {alike.column(c).drifted}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: embedding drift of a 100k x 128 current window against a stored 2,000-row reference sample,
with mloop's three methods and Evidently's ``EmbeddingsDrift`` on the same data.

Data: a reference sample of 2,000 rows of a 128-dimensional Gaussian (float32, as embeddings come); a
current window of --rows rows of the same distribution with --shifted components moved by 0.5 standard
deviations (so every method has something to find). Prints, from one run: the time of each mloop method
(the first call of the process separately: it imports scikit-learn), the median of --repeat runs of all
three together (the goal: <= 2 s), then Evidently 0.7.23's model, ratio and MMD methods in their
throwaway venv on the same files (one run each; each in a fresh process, so its time includes no import)
and the ratios. Evidently's MMD builds the kernel of every reference and current row (a 102k x 102k
matrix, 83 GB at 100k rows), so it is run on the first --peer-mmd-rows current rows instead, and said so.

    .venv/bin/python benchmarks/embedding_drift.py
    .venv/bin/python benchmarks/embedding_drift.py --rows 20000 --no-peer

The peer venv:  python3 -m venv benchmarks/.peers/evidently && benchmarks/.peers/evidently/bin/pip install
"evidently==0.7.23" "pandas<3"
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mloop.metrics import embedding_drift

HERE = Path(__file__).parent
WORK = HERE / ".work" / "embedding_drift"
PEER = HERE / ".peers" / "evidently" / "bin" / "python"
GOAL_S = 2.0

PEER_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import EmbeddingsDrift
from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod, RatioDriftMethod
reference = pd.read_parquet(sys.argv[1]); current = pd.read_parquet(sys.argv[2]); method = sys.argv[3]
rows = int(sys.argv[4])
if rows:
    current = current.iloc[:rows]
columns = list(reference.columns)
definition = DataDefinition(numerical_columns=columns, embeddings={"emb": columns})
drift = {"model": ModelDriftMethod, "ratio": RatioDriftMethod, "mmd": MMDDriftMethod}[method]()
started = time.perf_counter()
result = Report([EmbeddingsDrift(embeddings_name="emb", drift_method=drift)]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition))
value = result.dict()["metrics"][0]["value"]
print(json.dumps({"seconds": time.perf_counter() - started, "value": value, "rows": len(current)}))
"""


def data(rows: int, dims: int, shifted: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(2_000, dims)).astype(np.float32)
    current = rng.normal(size=(rows, dims)).astype(np.float32)
    current[:, :shifted] += 0.5
    return reference, current


def ours(reference: np.ndarray, current: np.ndarray, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    embedding_drift.domain_classifier(reference, current)
    out["first call (imports scikit-learn)"] = time.perf_counter() - started
    for name, method in embedding_drift.METHODS.items():
        started = time.perf_counter()
        result = method(reference, current)
        out[name] = time.perf_counter() - started
        print(f"  mloop {name:<18} {out[name]:6.3f} s  statistic {result.statistic:.4g}"
              f"{'' if result.p_value is None else f'  p {result.p_value:.3g}'}  drifted {result.drifted}")  # fmt: skip
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for method in embedding_drift.METHODS.values():
            method(reference, current)
        runs.append(time.perf_counter() - started)
    out["all three"] = statistics.median(runs)
    return out


def peer(reference: np.ndarray, current: np.ndarray, mmd_rows: int) -> dict[str, dict[str, float]] | str:
    if not PEER.exists():
        return (f"Evidently is not installed in {PEER.parent.parent}: create the venv (see this file's "
                "docstring) to compare.")  # fmt: skip
    WORK.mkdir(parents=True, exist_ok=True)
    columns = [f"e{i}" for i in range(reference.shape[1])]
    paths = WORK / "reference.parquet", WORK / "current.parquet"
    pd.DataFrame(reference, columns=columns).to_parquet(paths[0])
    pd.DataFrame(current, columns=columns).to_parquet(paths[1])
    script = WORK / "peer.py"
    script.write_text(PEER_SCRIPT)
    out = {}
    for method, rows in (("model", 0), ("ratio", 0), ("mmd", mmd_rows)):
        done = subprocess.run([str(PEER), str(script), str(paths[0]), str(paths[1]), method, str(rows)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            return f"Evidently's {method} method failed: {done.stderr.strip().splitlines()[-1:]}"
        out[method] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--shifted", type=int, default=16, help="components moved by 0.5 sd")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-mmd-rows", type=int, default=5_000)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    reference, current = data(args.rows, args.dims, args.shifted, args.seed)
    print(f"reference sample {reference.shape}, current window {current.shape} (float32), "
          f"{args.shifted} components shifted by 0.5 sd")  # fmt: skip
    times = ours(reference, current, args.repeat)
    print(
        f"  mloop first call       {times['first call (imports scikit-learn)']:6.3f} s (imports scikit-learn)"
    )
    verdict = "met" if times["all three"] <= GOAL_S else "MISSED"
    print(
        f"  mloop all three        {times['all three']:6.3f} s (median of {args.repeat}; goal <= {GOAL_S} s: {verdict})"
    )
    if args.no_peer:
        return
    found = peer(reference, current, args.peer_mmd_rows)
    if isinstance(found, str):
        print(f"  Evidently: {found}")
        return
    names = {"model": "domain_classifier", "ratio": "component_share", "mmd": "mmd"}
    for method, result in found.items():
        ours_s = times[names[method]]
        note = (
            f" (on {result['rows']:,} current rows: its kernel is not subsampled)" if method == "mmd" else ""
        )
        print(f"  Evidently {method:<6} {result['seconds']:8.3f} s  value {result['value']:.4g}  "
              f"mloop {names[method]} {ours_s:.3f} s  ratio {result['seconds'] / ours_s:6.1f}x{note}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: mloop on Ray against mloop on local processes, on this machine (issue 22).

1. Search: ``pipeline.tune`` of ``--trials`` LightGBM trials, 2 at a time, on the local process pool
   (``executor="process"``, 2 workers) and on a real Ray cluster of 2 nodes (a head and a worker, 1 CPU
   each, separate processes on loopback). Floor: the trials' own fit seconds summed, over the cores. The
   figure that carries to bigger machines is the efficiency per core: floor / wall time.
2. Batch scoring of ``--rows`` rows (10 numeric inputs, a 100-tree LightGBM model, no feature lookup):
   ``score(workers=2)`` (local processes) against ``score(executor=ray)`` (Ray Data on the 2 nodes). Floor:
   the bare ``booster.predict`` over the same rows in this process, read from the same Parquet file.

    .venv/bin/python benchmarks/scale_out_ray.py                      # 16 trials, 10M rows
    .venv/bin/python benchmarks/scale_out_ray.py --trials 8 --rows 2000000

``main(argv)`` returns the figures as a dict, for benchmarks/scale_out.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.ray_cluster: the same 2-node cluster the tests start

import mloop as ml  # noqa: E402
from mloop.examples.fraud.generate import generate  # noqa: E402
from mloop.serving.scoring.job import score  # noqa: E402

CORES = 2
SPACE = {"num_leaves": (8, 63), "learning_rate": (0.03, 0.3, "log"), "min_child_samples": (10, 100)}
INPUTS = [f"x{i}" for i in range(10)]


def pipeline(project: ml.Project, folder: Path, rows: int) -> ml.TrainingPipeline:
    txns, labels = generate(rows, days=30, customers=2_000, merchants=200, fraud_rate=0.03, seed=5)
    txns["ts"] = txns["ts"].astype("datetime64[us, UTC]")
    txns.to_parquet(folder / "txns.parquet", index=False)
    customer = ml.Entity("customer", join_keys=["customer_id"])
    source = ml.ParquetSource(str(folder / "txns.parquet"), timestamp="ts")
    stats = ml.FeatureView(
        "customer_stats", entities=[customer], source=source, ttl="30d",
        aggregations=[ml.Aggregation("amount", "mean", "7d"), ml.Aggregation("amount", "count", "1h"),
                      ml.Aggregation("amount", "max", "24h")],
    )  # fmt: skip
    last = ml.FeatureView("customer_last", entities=[customer], source=source, ttl="7d",
                          features=[ml.Field("device", "string"), ml.Field("distance_km", "float64")])  # fmt: skip
    project.apply([customer, stats, last])
    frame = txns[["txn_id", "customer_id", "ts", "amount"]].merge(labels[["txn_id", "is_fraud"]])
    return ml.TrainingPipeline(
        "bench", features=["customer_stats:*", "customer_last:*"],
        label=ml.Label(frame, column="is_fraud", timestamp="ts"),
        model=lightgbm.LGBMClassifier(n_estimators=400, n_jobs=1), split=ml.TimeSplit(valid="5d", test="5d"),
    )  # fmt: skip


def search(project: ml.Project, pipe: ml.TrainingPipeline, executor: str, trials: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = pipe.tune(project, SPACE, trials=trials, executor=executor, jobs=CORES)
    wall = time.perf_counter() - started
    fits = [project.runs.get(t["run_id"]).metrics.get("fit_seconds", 0.0) for t in result.trials]
    floor = sum(fits) / CORES
    return {"executor": executor.split(":")[0], "trials": trials, "wall_s": round(wall, 2),
            "fit_s_sum": round(sum(fits), 2), "floor_s": round(floor, 2),
            "efficiency_per_core": round(floor / wall, 3), "trials_per_core_minute": round(trials / wall * 60 / CORES, 2),
            "complete": sum(t["state"] == "complete" for t in result.trials)}  # fmt: skip


def scoring_data(project: ml.Project, folder: Path, rows: int) -> Path:
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(20_000, len(INPUTS))), columns=INPUTS)
    y = (x["x0"] + x["x1"] * x["x2"] + rng.normal(size=len(x)) > 0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbosity=-1).fit(x, y)
    project.models.register("scorer", model, input_example=x.head(100))
    path = folder / "rows.parquet"
    with pq.ParquetWriter(path, pa.schema([(c, pa.float64()) for c in INPUTS])) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            writer.write_table(pa.table({c: rng.normal(size=n) for c in INPUTS}), row_group_size=250_000)
    return path


def scoring(project: ml.Project, path: Path, folder: Path, executor: str | None, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    report = score(project, "scorer:1", path, folder / f"out-{(executor or 'local').split(':')[0]}.parquet",
                   chunk_rows=250_000, workers=CORES, executor=executor)  # fmt: skip
    wall = time.perf_counter() - started
    return {"executor": (executor or "process").split(":")[0], "rows": rows, "wall_s": round(wall, 2),
            "rows_per_s": round(rows / wall), "workers": report.workers}  # fmt: skip


def scoring_floor(project: ml.Project, path: Path, rows: int) -> dict[str, Any]:
    booster = project.models.load("scorer", version=1)
    started = time.perf_counter()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=250_000):
        booster.predict(batch.to_pandas())
    wall = time.perf_counter() - started
    return {"executor": "floor (bare predict, 1 process)", "rows": rows, "wall_s": round(wall, 2),
            "rows_per_s": round(rows / wall)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to batch-score")
    parser.add_argument("--skip", choices=["search", "scoring"], action="append", default=[])
    args = parser.parse_args(argv)
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback cluster of our own
    import ray
    from tests.ray_cluster import RayCluster

    figures: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "search": [], "scoring": []}
    with tempfile.TemporaryDirectory(prefix="mloop-bench-ray-") as tmp:
        folder = Path(tmp)
        project = ml.Project.open(folder, env={})
        cluster = RayCluster(object_store=2 * 2**30).start()
        try:
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            cluster.wait_for_nodes(2)
            if "search" not in args.skip:
                pipe = pipeline(project, folder, args.train_rows)
                pipe.training_set(project)  # warm: the point-in-time join is not what is measured
                for executor in ("process", cluster.executor):
                    figures["search"].append(search(project, pipe, executor, args.trials))
                    print(json.dumps(figures["search"][-1]), flush=True)
            if "scoring" not in args.skip:
                path = scoring_data(project, folder, args.rows)
                figures["scoring"].append(scoring_floor(project, path, args.rows))
                print(json.dumps(figures["scoring"][-1]), flush=True)
                for executor in (None, cluster.executor):
                    figures["scoring"].append(scoring(project, path, folder, executor, args.rows))
                    print(json.dumps(figures["scoring"][-1]), flush=True)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.stop()
            project.close()
    if len(figures["search"]) == 2:
        local, remote = figures["search"]
        figures["search_ray_over_local_wall"] = round(remote["wall_s"] / local["wall_s"], 2)
    if len(figures["scoring"]) == 3:
        floor, local, remote = figures["scoring"]
        figures["scoring_ray_over_local_rows_per_s"] = round(remote["rows_per_s"] / local["rows_per_s"], 2)
        figures["scoring_local_over_floor"] = round(local["rows_per_s"] / floor["rows_per_s"], 2)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("search", "scoring")}))
    return figures


if __name__ == "__main__":
    main()

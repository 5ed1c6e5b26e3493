"""Benchmark: what logging a pipeline's rank stage costs per request (one prediction-log row per candidate).

Serves a LightGBM ranker whose one online feature (``item_stats:price``) is looked up by ``item_id`` and
times ``Inference.predict`` on ``--candidates`` rows (a rank stage's call) with the prediction log on
(``log: true``, the default) and off (``log: false``; ``log: sample`` logs a share of requests), in the same
run. Prints p50/p99 of each and the difference, which is what the stage option ``log`` saves.

    .venv/bin/python benchmarks/pipeline_stage_log.py
    .venv/bin/python benchmarks/pipeline_stage_log.py --candidates 200 --requests 500
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd

import mloop as ml
from mloop.predictions.log import PredictionLog, predictions_folder
from mloop.serving.endpoints import EndpointTable
from mloop.serving.inference import Inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = ml.Project.open(Path(tmp), env={})
        item = ml.Entity("item", join_keys=["item_id"])
        source = ml.PushSource("items", schema=[ml.Field("item_id", "int64"), ml.Field("ts", "timestamp"),
                                                ml.Field("price", "float64")])  # fmt: skip
        view = ml.FeatureView("item_stats", entities=[item], source=source, ttl="30d",
                              features=[ml.Field("price", "float64")])  # fmt: skip
        project.apply([item, source, view])
        n = args.candidates
        project.features.push("items", pd.DataFrame({"item_id": range(n), "ts": [datetime.now(UTC)] * n,
                                                     "price": np.arange(n, dtype=float)}))  # fmt: skip
        rng = np.random.default_rng(0)
        x = pd.DataFrame({"price": rng.random(500) * n, "retrieval_score": rng.normal(size=500)})
        ranker = lightgbm.LGBMRegressor(n_estimators=50, verbose=-1).fit(x, x.price + x.retrieval_score)
        project.models.register("ranker", ranker, input_example=x, lineage={"features": ["item_stats:price"]})
        project.deploy("ranker", "ranker", version=1)
        table = EndpointTable(project)
        table.refresh()
        log = PredictionLog(predictions_folder(project.settings), parquet=project.parquet)
        inference = Inference(table, prediction_log=log)
        rows = [{"user_id": 7, "item_id": i, "retrieval_score": float(s), "retrieval_rank": i}
                for i, s in enumerate(rng.normal(size=n))]  # fmt: skip
        timings: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.requests * 2 + 40):
            record = i % 2 == 0
            started = time.perf_counter()
            inference.predict(project, "ranker", rows, request_id=f"r{i}/rank", record=record)
            if i >= 40:  # warm-up left out
                timings[record].append(time.perf_counter() - started)
        answer = inference.predict(project, "ranker", rows, record=False)
        writes = []
        for _ in range(args.requests):  # the log's own share, without the model call's noise around it
            started = time.perf_counter()
            log.record(answer)
            writes.append(time.perf_counter() - started)
        log.close()
        table.close()
        project.close()

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) * 1000

    for record in (True, False):
        print(f"rank stage, {n} candidates, log {'on ' if record else 'off'}: "
              f"p50 {pct(timings[record], 50):.2f} ms  p99 {pct(timings[record], 99):.2f} ms")  # fmt: skip
    print(
        f"prediction_log.record of the {n}-row answer alone: p50 {pct(writes, 50):.2f} ms  "
        f"p99 {pct(writes, 99):.2f} ms"
    )
    cost = statistics.median(timings[True]) - statistics.median(timings[False])
    print(f"logging {n} rows costs {cost * 1000:.2f} ms per request at the median "
          f"({cost / statistics.median(timings[False]):.0%} of the unlogged call)")  # fmt: skip


if __name__ == "__main__":
    main()

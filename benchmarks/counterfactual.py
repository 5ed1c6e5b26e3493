"""Benchmark: counterfactual search per row on a fraud model (LightGBM, 100 trees x 20 features).

Data: the fraud demo's generator (``mloop.examples.fraud.generate``), 20 features per payment: the payment
(amount, distance_km, hour, weekday; merchant_category, card_country, ip_country, device, currency as
categories), whether it is foreign, and ten aggregates of the customer's and the merchant's payments (none
derived from an actionable feature of the row itself: the search changes model inputs, it does not
recompute features from them).
The model is registered and deployed as endpoint ``fraud`` in a temporary project whose ``mloop.yaml``
declares amount (down, step 1), hour, distance_km and device actionable, everything else immutable.

For --rows payments the model blocks (probability over the threshold), prints: the search alone
(:func:`mloop.explain.counterfactual.find` on the served version's ``predict_columns``), p50 and p95 per
row, the model rows it scored and the answers found; then ``POST /v1/endpoints/fraud/counterfactual``
end to end in process (TestClient: lookup, search, verification by the served Predictor), p50 and p95;
and the same endpoint's ``/predict`` p50 for scale.

    .venv/bin/python benchmarks/counterfactual.py
    .venv/bin/python benchmarks/counterfactual.py --rows 100 --k 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from mloop import Project
from mloop.examples.fraud.generate import generate
from mloop.explain import Goal
from mloop.explain.constraints import resolve
from mloop.explain.counterfactual import find
from mloop.serving.http.app import create_app

CATEGORIES = ["merchant_category", "card_country", "ip_country", "device", "currency"]
THRESHOLD = 0.5
DECLARED: dict[str, Any] = {
    "threshold": THRESHOLD,
    "want": "below",
    "features": {
        "amount": {"min": 0, "max": 20_000, "direction": "down", "step": 1},
        "hour": {"min": 0, "max": 23},
        "distance_km": {"min": 0, "max": 20_000},
        "device": {},
    },
}


def features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    txns, labels = generate(n, days=30, customers=2_000, merchants=200, fraud_rate=0.05, seed=seed)
    frame = txns.merge(labels[["txn_id", "is_fraud"]], on="txn_id")
    by_customer = frame.groupby("customer_id")
    by_merchant = frame.groupby("merchant_id")
    x = pd.DataFrame({
        "amount": frame["amount"], "distance_km": frame["distance_km"],
        "hour": frame["ts"].dt.hour.astype("int64"), "weekday": frame["ts"].dt.day_of_week.astype("int64"),
        "foreign": (frame["card_country"] != frame["ip_country"]).astype("int64"),
        "customer_night_share": (frame["ts"].dt.hour < 6).groupby(frame["customer_id"]).transform("mean"),
        "customer_amount_mean": by_customer["amount"].transform("mean"),
        "customer_amount_max": by_customer["amount"].transform("max"),
        "customer_amount_std": by_customer["amount"].transform("std").fillna(0.0),
        "customer_count": by_customer["amount"].transform("count").astype("int64"),
        "customer_merchants": by_customer["merchant_id"].transform("nunique").astype("int64"),
        "customer_distance_mean": by_customer["distance_km"].transform("mean"),
        "merchant_amount_mean": by_merchant["amount"].transform("mean"),
        "merchant_count": by_merchant["amount"].transform("count").astype("int64"),
        "merchant_amount_max": by_merchant["amount"].transform("max"),
    })  # fmt: skip
    for column in CATEGORIES:
        x[column] = pd.Categorical(frame[column].astype(str))
    assert x.shape[1] == 20, x.shape
    return x, frame["is_fraud"].to_numpy()


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1e3:7.1f} ms   p95 {p95 * 1e3:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50, help="blocked payments to explain")
    parser.add_argument("--k", type=int, default=3, help="answers per row")
    args = parser.parse_args()

    x, y = features(40_000, seed=7)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, learning_rate=0.1, n_jobs=1, verbose=-1)
    model.fit(x, y)
    scores = model.predict_proba(x)[:, 1]
    blocked = x[scores > THRESHOLD].head(args.rows)
    rows = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in blocked.astype({c: str for c in CATEGORIES}).to_dict("records")]  # fmt: skip
    print(f"model: LightGBM {model.n_estimators} trees x {x.shape[1]} features; {len(rows)} blocked payments, "
          f"k={args.k}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="mloop-cf-") as root:
        project = Project.open(root, env={}, serving={"max_queue_ms": None},
                               explain={"counterfactuals": {"fraud": DECLARED}})  # fmt: skip
        project.models.register("fraud", model, input_example=x.head(200))
        project.deploy("fraud", "fraud", version=1)
        loaded = project.models.load("fraud", version=1)
        declared = project.settings.explain.counterfactuals["fraud"]
        specs = list(loaded.signature.inputs) if loaded.signature else None

        search_seconds, evaluations, answers = [], [], []
        for row in rows:
            started = time.perf_counter()
            bounds = resolve(row, declared.features, specs=specs)
            found = find(loaded.predict_columns, row, bounds, Goal(THRESHOLD, "below"), args.k)
            search_seconds.append(time.perf_counter() - started)
            evaluations.append(found.evaluations)
            answers.append(len(found.answers))
        print(f"search (find on predict_columns):        {percentiles(search_seconds)}   "
              f"model rows/row: median {statistics.median(evaluations):,.0f}   answers/row: mean "
              f"{statistics.mean(answers):.2f}")  # fmt: skip
        none = [r for r, n in zip(rows, answers, strict=True) if n == 0]
        print(f"rows with no answer within the constraints: {len(none)} ({sum(r['foreign'] for r in none)} of them "
              "foreign payments: the model's strongest feature, immutable)")  # fmt: skip

        with TestClient(create_app(project), raise_server_exceptions=False) as client:
            http_seconds, predict_seconds = [], []
            for row in rows:
                started = time.perf_counter()
                response = client.post(
                    "/v1/endpoints/fraud/counterfactual", json={"rows": [row], "k": args.k}
                )
                http_seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                started = time.perf_counter()
                client.post("/v1/endpoints/fraud/predict", json={"rows": [row]})
                predict_seconds.append(time.perf_counter() - started)
        print(f"POST /counterfactual (TestClient):       {percentiles(http_seconds)}")
        print(f"POST /predict, same rows (TestClient):   {percentiles(predict_seconds)}")
        project.close()


if __name__ == "__main__":
    main()

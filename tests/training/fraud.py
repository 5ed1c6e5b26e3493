"""A small fraud-detection setup on the feature store, shared by the training tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lightgbm
import pandas as pd

import mloop as ml
from mloop.examples.fraud.generate import generate

customer = ml.Entity("customer", join_keys=["customer_id"])


def amount_vs_mean(frame: pd.DataFrame) -> pd.DataFrame:
    mean = frame["amount_mean_7d"].astype("float64")
    return pd.DataFrame({"amount_ratio": frame["amount"].astype("float64") / mean})


def setup(
    project: ml.Project, folder: Path, rows: int = 12_000, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
) -> tuple[ml.TrainingPipeline, pd.DataFrame]:
    txns, labels = generate(rows, start=start, days=30, customers=400, merchants=80, fraud_rate=0.04, seed=11)
    txns["ts"] = txns["ts"].astype("datetime64[us, UTC]")
    path = folder / "txns.parquet"
    txns.to_parquet(path, index=False)
    source = ml.ParquetSource(str(path), timestamp="ts")
    stats = ml.FeatureView(
        "customer_stats", entities=[customer], source=source, ttl="30d",
        aggregations=[ml.Aggregation("amount", "mean", "7d"), ml.Aggregation("amount", "count", "1h"),
                      ml.Aggregation("amount", "max", "24h"), ml.Aggregation("merchant_id", "distinct_count", "24h")],
    )  # fmt: skip
    last = ml.FeatureView("customer_last", entities=[customer], source=source, ttl="7d",
                          features=[ml.Field("device", "string"), ml.Field("distance_km", "float64")])  # fmt: skip
    ratio = ml.OnDemandView("amount_ratio", inputs=["customer_stats:amount_mean_7d"],
                            request=[ml.Field("amount", "float64")], fn=amount_vs_mean,
                            outputs=[ml.Field("amount_ratio", "float64")])  # fmt: skip
    project.apply([stats, last, ratio])
    frame = txns[["txn_id", "customer_id", "ts", "amount", "card_country"]].merge(
        labels[["txn_id", "is_fraud"]]
    )
    pipeline = ml.TrainingPipeline(
        "fraud",
        features=["customer_stats:*", "customer_last:*", "amount_ratio:amount_ratio"],
        label=ml.Label(frame, column="is_fraud", timestamp="ts"),
        model=lightgbm.LGBMClassifier(
            n_estimators=200, learning_rate=0.1, num_leaves=15, min_child_samples=20
        ),
        split=ml.TimeSplit(valid="5d", test="5d"),
        slices=["card_country"],
        sensitive=["card_country"],
        description="Scores card payments for fraud before authorisation.",
    )
    return pipeline, frame

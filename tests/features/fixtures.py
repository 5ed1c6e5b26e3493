"""Small, exact feature-store scenarios shared by the service, CLI and server tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import mloop as ml

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def transactions(n: int = 400, customers: int = 12, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = T0 + pd.to_timedelta(np.sort(rng.integers(0, 4 * 86_400, n)), unit="s")
    return pd.DataFrame(
        {
            "txn_id": np.arange(n, dtype=np.int64),
            "customer_id": rng.integers(1, customers + 1, n).astype(np.int64),
            "ts": ts,
            "amount": np.round(rng.lognormal(3, 1, n), 2),
            "merchant": rng.choice(["a", "b", "c", "d"], n),
            "country": rng.choice(["DE", "FR"], n),
        }
    )


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


customer = ml.Entity("customer", join_keys=["customer_id"])


def views(path: Path) -> tuple[ml.FeatureView, ml.FeatureView]:
    source = ml.ParquetSource(str(path), timestamp="ts")
    last = ml.FeatureView(
        "customer_last", entities=[customer], source=source, ttl="2d",
        features=[ml.Field("amount", "float64"), ml.Field("merchant", "string"), ml.Field("country", "string")],
    )  # fmt: skip
    stats = ml.FeatureView(
        "customer_stats", entities=[customer], source=source, ttl="7d",
        aggregations=[
            ml.Aggregation("amount", "mean", "1h"), ml.Aggregation("amount", "count", "24h"),
            ml.Aggregation("amount", "sum", "24h"), ml.Aggregation("amount", "max", "2d"),
            ml.Aggregation("merchant", "distinct_count", "24h"), ml.Aggregation("amount", "last", "24h"),
            ml.Aggregation("amount", "min", "10m"),
        ],
    )  # fmt: skip
    return last, stats


def amount_ratio(frame: pd.DataFrame) -> pd.DataFrame:
    mean = frame["amount_mean_1h"].astype("float64")
    return pd.DataFrame({"amount_vs_mean": frame["request_amount"].astype("float64") / mean})


ratio = ml.OnDemandView(
    "amount_ratio",
    inputs=["customer_stats:amount_mean_1h"],
    request=[ml.Field("request_amount", "float64")],
    fn=amount_ratio,
    outputs=[ml.Field("amount_vs_mean", "float64")],
)

at = T0 + timedelta(days=4)

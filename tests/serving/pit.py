"""A tiny, exact batch-scoring setup: one feature whose value changes over time, and a model that is a
known function of it (prediction = 2 * value + 1), so a test can tell which value a row saw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LinearRegression

import mloop as ml

DAY = timedelta(days=1)
T0 = datetime(2026, 2, 1, tzinfo=UTC)
customer = ml.Entity("customer", join_keys=["customer_id"])

# customer 1 holds 1.0 from day 1 and 100.0 from day 3; customer 2 holds 5.0 from day 1.
EVENTS = pd.DataFrame(
    {
        "customer_id": pd.Series([1, 1, 2], dtype="int64"),
        "ts": pd.Series([T0 + DAY, T0 + 3 * DAY, T0 + DAY], dtype="datetime64[us, UTC]"),
        "value": [1.0, 100.0, 5.0],
    }
)


def expected(value: float) -> float:
    return 2 * value + 1


def build(project: ml.Project, folder: Path, *, versions: int = 1) -> None:
    """Apply view ``last`` (feature ``value``) and register model ``pit`` ``versions`` times."""
    path = folder / "events.parquet"
    EVENTS.to_parquet(path, index=False)
    view = ml.FeatureView(
        "last", entities=[customer], source=ml.ParquetSource(str(path), timestamp="ts"), ttl="30d",
        features=[ml.Field("value", "float64")],
    )  # fmt: skip
    project.apply([customer, view])
    x = pd.DataFrame({"value": [0.0, 1.0, 2.0, 10.0]})
    model = LinearRegression().fit(x, x["value"].map(expected))
    for _ in range(versions):
        project.models.register("pit", model, input_example=x, lineage={"features": ["last:value"]})


def rows(*items: tuple[int, datetime]) -> pd.DataFrame:
    """An input frame of (customer_id, ts) rows, with a row id to follow them."""
    return pd.DataFrame(
        {
            "row": range(len(items)),
            "customer_id": pd.Series([c for c, _ in items], dtype="int64"),
            "ts": pd.Series([t for _, t in items], dtype="datetime64[us, UTC]"),
        }
    )

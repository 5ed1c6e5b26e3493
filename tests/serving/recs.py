"""A tiny recommender served in process: a torch user tower (nn.Linear) over pushed user features, an
vector index over 12 items, a LightGBM ranker over the items' price, and pipeline ``recs``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import mloop as ml
from mloop.models.vector_index import VectorIndex

ITEMS = 12
DIM = 3
PIPELINES = {
    "recs": {
        "stages": [
            {
                "name": "retrieve",
                "kind": "retrieve",
                "endpoint": "recs-towers",
                "k": 200,
                "where": {"in_stock": True},
            },
            {"name": "rank", "kind": "rank", "endpoint": "recs-ranker"},
            {"name": "top", "kind": "top", "n": 5, "exclude": "user_profile:purchased"},
        ],
        "cold_start": {"kind": "items", "items": [11, 10, 9, 5]},
    }
}


def build_index(ids: Any, vectors: Any, attributes: Any, source: tuple[str, int]) -> VectorIndex:
    return VectorIndex.build(list(ids), vectors, attributes, source=source)


def item_vectors(n: int = ITEMS) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, DIM)).astype(np.float32)


def attributes(ids: Any) -> pd.DataFrame:
    return pd.DataFrame([{"category": "books" if i % 2 == 0 else "toys", "in_stock": i != 5} for i in ids])


def build(project: ml.Project) -> tuple[Any, Any]:
    """Feature views, towers v1 with its index, ranker v1 (score = price) and v2 (score = -price), both
    endpoints deployed; returns the tower module and the item vectors."""
    import lightgbm
    import torch

    user = ml.Entity("user", join_keys=["user_id"])
    item = ml.Entity("item", join_keys=["item_id"])
    profile = [ml.Field(f"u{i}", "float64") for i in range(4)] + [ml.Field("purchased", "string")]
    users = ml.PushSource(
        "users", schema=[ml.Field("user_id", "int64"), ml.Field("ts", "timestamp"), *profile]
    )
    items = ml.PushSource("items", schema=[ml.Field("item_id", "int64"), ml.Field("ts", "timestamp"),
                                          ml.Field("price", "float64")])  # fmt: skip
    project.apply([user, item, users, items,
                   ml.FeatureView("user_profile", entities=[user], source=users, ttl="30d", features=profile),
                   ml.FeatureView("item_stats", entities=[item], source=items, ttl="30d",
                                  features=[ml.Field("price", "float64")])])  # fmt: skip
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    project.features.push("users", pd.DataFrame({
        "user_id": range(1, 9), "ts": [now] * 8, **{f"u{i}": rng.normal(size=8) for i in range(4)},
        "purchased": ["0,1"] + [""] * 7}))  # fmt: skip
    project.features.push("items", pd.DataFrame({"item_id": range(ITEMS), "ts": [now] * ITEMS,
                                                 "price": np.arange(ITEMS, dtype=float)}))  # fmt: skip
    torch.manual_seed(0)
    tower = torch.nn.Linear(4, DIM).eval()
    example = pd.DataFrame({f"u{i}": rng.normal(size=8) for i in range(4)})
    user_features = [f"user_profile:u{i}" for i in range(4)]
    for _ in range(2):  # v2 has no index until a test gives it one
        project.models.register("towers", tower, input_example=example, lineage={"features": user_features})
    vectors = item_vectors()
    project.models.attach_index("towers", 1, build_index(range(ITEMS), vectors, attributes(range(ITEMS)),
                                                         ("towers", 1)))  # fmt: skip
    x = pd.DataFrame(
        {"price": np.tile(np.arange(ITEMS, dtype=float), 4), "retrieval_score": rng.normal(size=48)}
    )
    params = {"n_estimators": 20, "min_child_samples": 2, "verbose": -1, "n_jobs": 1}
    for sign in (1, -1):
        ranker = lightgbm.LGBMRegressor(**params).fit(x, sign * x["price"])
        project.models.register("ranker", ranker, input_example=x, lineage={"features": ["item_stats:price"]})
    project.deploy("recs-towers", "towers", version=1)
    project.deploy("recs-ranker", "ranker", version=1)
    return tower, vectors

"""The shop on the platform: its datasets, feature views, models and the pipeline endpoint that serves them.

- **Datasets** (ingested day by day): ``items``, the catalogue (item_id, ts, category, category_code,
  price, in_stock); ``clicks``, the click stream (user_id, item_id, ts, request_id, ``cat_<category>``
  0/1 for the clicked item's category).
- **Feature views** (and the on-demand ``retrieval``: where the towers placed a candidate, sent with it): ``user_clicks`` (per user: clicks per category over 7 and 30 days and the totals,
  the user tower's inputs, :data:`~mloop.examples.recsys.features.USER_FEATURES`); ``item_info`` (category
  code and price) and ``item_clicks`` (an item's clicks over 1 and 7 days): the ranker's item inputs.
- **Models**: ``towers`` (the user tower; each version carries the vector index of the item tower's
  embeddings of the catalogue) and ``item_tower`` (same version numbers: what embeds the items that
  arrive later); ``ranker`` (LightGBM lambdarank over the user's and the candidate's features).
- **Pipeline** ``recs``: retrieve 200 in-stock items with ``recs-towers`` → rank them with ``recs-ranker``
  → the top 20, purchased items excluded by the request.
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pandas as pd

import mloop as ml
from mloop.data.schema import Column, Dataset
from mloop.examples.recsys.features import USER_FEATURES, WINDOWS, category_codes
from mloop.examples.recsys.generate import CATEGORIES
from mloop.models.vector_index import VectorIndex

USER = ml.Entity("user", join_keys=["user_id"])
ITEM = ml.Entity("item", join_keys=["item_id"])
USER_REFS = [f"user_clicks:{name}" for name in USER_FEATURES]
RANKER_FEATURES = [
    "retrieval:towers_rank",
    "user_clicks:clicks_7d",
    "user_clicks:clicks_30d",
    "item_info:price",
    "item_clicks:item_clicks_7d",
]


def pipeline(k: int = 200) -> dict[str, Any]:
    """The ``recs`` pipeline's entry of mloop.yaml: retrieve ``k`` in-stock items, rank them, the top 20."""
    return {
        "n": 20,
        "stages": [
            {
                "name": "retrieve",
                "kind": "retrieve",
                "endpoint": "recs-towers",
                "k": k,
                "where": {"in_stock": True},
            },
            {"name": "rank", "kind": "rank", "endpoint": "recs-ranker", "log": "sample", "sample": 0.05},
            {"name": "top", "kind": "top", "n": 20, "dedupe": True},
        ],
    }


def _id(name: str) -> Column:
    return Column(name=name, dtype="int64", nullable=False, min=1)


SCHEMAS = {
    "items": Dataset("items", key="item_id", timestamp="ts", columns=(
        _id("item_id"), Column(name="ts", dtype="timestamp", nullable=False),
        Column(name="category", allowed=tuple(CATEGORIES), nullable=False),
        Column(name="category_code", dtype="int64", min=0, max=len(CATEGORIES) - 1, nullable=False),
        Column(name="price", dtype="float64", min=0, nullable=False), Column(name="in_stock", dtype="bool"),
    )),
    "clicks": Dataset("clicks", key=("request_id", "item_id"), timestamp="ts", columns=(
        _id("user_id"), _id("item_id"), Column(name="ts", dtype="timestamp", nullable=False),
        Column(name="request_id", nullable=False),
        *(Column(name=f"cat_{c}", dtype="int64", allowed=(0, 1), nullable=False) for c in CATEGORIES),
    )),
}  # fmt: skip


def define(project: ml.Project) -> None:
    """Apply the entities and the three views (idempotent)."""
    clicks = ml.DatasetSource(dataset="clicks")
    per_user = [ml.Aggregation(f"cat_{c}", "sum", window=f"{w}d", name=f"clicks_{c}_{w}d")
                for w in WINDOWS for c in CATEGORIES]  # fmt: skip
    per_user += [ml.Aggregation("item_id", "count", window=f"{w}d", name=f"clicks_{w}d") for w in WINDOWS]
    per_item = [ml.Aggregation("user_id", "count", window=f"{w}d", name=f"item_clicks_{w}d") for w in (1, 7)]
    project.apply([
        USER, ITEM,
        ml.FeatureView("user_clicks", entities=[USER], source=clicks, ttl="30d", aggregations=per_user),
        ml.FeatureView("item_clicks", entities=[ITEM], source=clicks, ttl="30d", aggregations=per_item),
        ml.FeatureView("item_info", entities=[ITEM], source=ml.DatasetSource(dataset="items"), ttl="3650d",
                       features=[ml.Field("category_code", "int64"), ml.Field("price", "float64")]),
        ml.OnDemandView("retrieval", request=[ml.Field("retrieval_rank", "int64")], fn=retrieval,
                        outputs=[ml.Field("towers_rank", "float64")]),
    ])  # fmt: skip


def retrieval(frame: pd.DataFrame) -> pd.DataFrame:
    """Where the towers placed the candidate for the user (the request's ``retrieval_rank``, 0 the best,
    which the pipeline's rank stage sends with each candidate): the ranker's view of what retrieval
    thought, on a scale every towers version shares. Self-contained: the feature store stores an
    on-demand view's source and runs it alone."""
    import pandas as pd

    return pd.DataFrame({"towers_rank": frame["retrieval_rank"].astype("float64")}, index=frame.index)


def item_rows(items: pd.DataFrame) -> pd.DataFrame:
    """The world's item table as rows of the ``items`` dataset."""
    return pd.DataFrame({
        "item_id": items["item_id"].astype("int64"), "ts": pd.to_datetime(items["ts_added"], utc=True),
        "category": items["category"], "category_code": category_codes(items["category"]),
        "price": items["price"].astype(float), "in_stock": items["in_stock"].astype(bool),
    })  # fmt: skip


def click_rows(clicks: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Click events (user_id, item_id, ts, request_id) as rows of the ``clicks`` dataset."""
    codes = category_codes(
        items.set_index("item_id")["category"].reindex(clicks["item_id"]).reset_index(drop=True)
    )
    out = pd.DataFrame({
        "user_id": clicks["user_id"].to_numpy("int64"), "item_id": clicks["item_id"].to_numpy("int64"),
        "ts": pd.to_datetime(clicks["ts"], utc=True).to_numpy(), "request_id": clicks["request_id"].astype(str),
    })  # fmt: skip
    for k, name in enumerate(CATEGORIES):
        out[f"cat_{name}"] = (codes == k).astype("int64")
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.drop_duplicates(["request_id", "item_id"]).reset_index(drop=True)


def index_of(item_tower: Any, items: pd.DataFrame, source: tuple[str, int]) -> VectorIndex:
    """The vector index of ``items`` (rows of the ``items`` dataset) embedded by ``item_tower`` (a loaded
    model version of ``item_tower``), filterable by category and stock."""
    vectors = embed(item_tower, items)
    attributes = pd.DataFrame(
        {"category": items["category"].to_numpy(), "in_stock": items["in_stock"].to_numpy()}
    )
    return VectorIndex.build(items["item_id"].to_numpy("int64"), vectors, attributes, source=source)


def embed(item_tower: Any, items: pd.DataFrame) -> np.ndarray:
    """The item tower's (n, dim) float32 embeddings of ``items``."""
    inputs = pd.DataFrame({"item_id": items["item_id"].to_numpy("float32"),
                           "category_code": items["category_code"].to_numpy("float32"),
                           "price": items["price"].to_numpy("float32")})  # fmt: skip
    return np.asarray(item_tower.predict(inputs), dtype="float32")


def ranker(lists: pd.DataFrame, *, seed: int = 0, trees: int = 150) -> ml.TrainingPipeline:
    """The ranker's training pipeline on ``lists`` (:func:`~mloop.examples.recsys.candidates.candidate_lists`:
    the towers' candidates of past visits, labelled by their clicks, each with its ``retrieval_rank``),
    with the user's and the item's features as of each visit."""
    model = lightgbm.LGBMRanker(objective="lambdarank", n_estimators=trees, learning_rate=0.05, num_leaves=31,
                                min_child_samples=20, verbose=-1, random_state=seed, n_jobs=2)  # fmt: skip
    return ml.TrainingPipeline(
        "ranker", features=RANKER_FEATURES, label=ml.Label(lists, column="label", timestamp="ts"), model=model,
        split=ml.TimeSplit(valid="1d", test="1d"), group="request_id", seed=seed,
        description="Orders the towers' candidates for a user: LightGBM lambdarank on the clicks of past visits.",
    )  # fmt: skip


__all__ = [
    "RANKER_FEATURES",
    "SCHEMAS",
    "USER_REFS",
    "click_rows",
    "define",
    "embed",
    "index_of",
    "item_rows",
    "pipeline",
    "ranker",
    "retrieval",
]  # fmt: skip

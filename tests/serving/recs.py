"""A tiny recommender served in process: a torch user tower (nn.Linear) over pushed user features, an
exact vector index over 12 items, a LightGBM ranker over the items' price, and pipeline ``recs``.

Until the vector index of branch rec-index is merged, :class:`ExactIndex` and :func:`patch_registry` stand
in for ``mloop.models.vector_index.VectorIndex`` and ``project.models.attach_index/index/index_stamp/
add_to_index`` (the contract in the issue's brief); with the real ones present they are used instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop.registry.service import ModelRegistry

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


@dataclass(frozen=True)
class Hits:
    ids: np.ndarray
    scores: np.ndarray


class ExactIndex:
    """Inner-product search over every item: the contract's oracle, small enough for tests."""

    def __init__(self, source: tuple[str, int]) -> None:
        self.source = source
        self.ids: list[Any] = []
        self.vectors = np.zeros((0, DIM), dtype=np.float32)
        self.attributes: list[dict[str, Any]] = []

    @classmethod
    def build(
        cls, ids: Any, vectors: Any, attributes: Any = None, *, source: tuple[str, int], **_: Any
    ) -> ExactIndex:
        index = cls(source)
        index.add(ids, vectors, attributes)
        return index

    @property
    def dim(self) -> int:
        return DIM

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: Any, vectors: Any, attributes: Any = None) -> None:
        self.ids += list(ids)
        self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])
        self.attributes += list(attributes) if attributes is not None else [{} for _ in ids]

    def search(self, queries: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hits]:
        keep = [
            i for i, a in enumerate(self.attributes) if all(a.get(f) == v for f, v in (where or {}).items())
        ]
        out = []
        for query in np.asarray(queries, dtype=np.float32):
            scores = self.vectors[keep] @ query
            best = np.argsort(-scores, kind="stable")[:k]
            out.append(Hits(np.asarray([self.ids[keep[j]] for j in best]), scores[best]))
        return out


@pytest.fixture(scope="module")
def index_registry() -> Iterator[None]:
    """The registry's index methods, from rec-index when merged, else a stand-in kept in memory."""
    if hasattr(ModelRegistry, "attach_index"):
        yield
        return
    held: dict[tuple[str, int], tuple[str, ExactIndex]] = {}
    counter = itertools.count()

    def attach_index(self: Any, name: str, version: int, index: ExactIndex) -> None:
        held[(name, version)] = (str(next(counter)), index)

    def add_to_index(
        self: Any, name: str, version: int, ids: Any, vectors: Any, attributes: Any = None
    ) -> None:
        index = held[(name, version)][1]
        copy = ExactIndex.build(index.ids, index.vectors, index.attributes, source=index.source)
        copy.add(ids, vectors, attributes)
        held[(name, version)] = (str(next(counter)), copy)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModelRegistry, "attach_index", attach_index, raising=False)
        patch.setattr(ModelRegistry, "add_to_index", add_to_index, raising=False)
        patch.setattr(ModelRegistry, "rebuild_index", attach_index, raising=False)
        patch.setattr(ModelRegistry, "index", lambda self, n, v: held[(n, v)][1], raising=False)
        patch.setattr(ModelRegistry, "index_stamp",
                      lambda self, n, v: held[(n, v)][0] if (n, v) in held else None, raising=False)  # fmt: skip
        yield


def build_index(ids: Any, vectors: Any, attributes: Any, source: tuple[str, int]) -> Any:
    try:
        from mloop.models.vector_index import VectorIndex  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return ExactIndex.build(ids, vectors, attributes, source=source)
    return VectorIndex.build(ids, vectors, attributes, source=source)


def item_vectors(n: int = ITEMS) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, DIM)).astype(np.float32)


def attributes(ids: Any) -> list[dict[str, Any]]:
    return [{"category": "books" if i % 2 == 0 else "toys", "in_stock": i != 5} for i in ids]


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

"""A tiny recommendations world on the feature store, shared by the ranking tests: users with a taste,
items with a category and a quality that changes over time, impressions of 8 items per request and clicks
that follow taste and quality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import mloop as ml

START = datetime(2026, 3, 1, tzinfo=UTC)
USERS, ITEMS, REQUESTS, SHOWN, CATEGORIES = 30, 40, 240, 8, 4

user = ml.Entity("user", join_keys=["user_id"])
item = ml.Entity("item", join_keys=["item_id"])


def world(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(users, items, impressions, clicks)``: users' favourite category, items' category and quality
    (re-drawn on day 5), 240 requests over 10 days, clicks within 20 minutes of an impression."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(USERS), "ts": pd.Timestamp(START - timedelta(days=1)),
                          "favourite": rng.integers(0, CATEGORIES, USERS)})  # fmt: skip
    category = rng.integers(0, CATEGORIES, ITEMS)
    items = pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": np.arange(ITEMS),
                    "ts": pd.Timestamp(START + timedelta(days=day) - timedelta(days=1)),
                    "category": category,
                    "quality": rng.random(ITEMS),
                }
            )
            for day in (0, 5)
        ],
        ignore_index=True,
    )
    rows = []
    for r in range(REQUESTS):
        ts = pd.Timestamp(START + timedelta(minutes=int(r * 60)))
        u = int(rng.integers(0, USERS))
        for position, i in enumerate(rng.choice(ITEMS, SHOWN, replace=False)):
            rows.append((f"req-{r:04d}", u, int(i), position, ts))
    impressions = pd.DataFrame(rows, columns=["request_id", "user_id", "item_id", "position", "ts"])
    current = items.sort_values("ts").groupby("item_id").last()  # quality as of the click is what matters
    state = impressions.merge(users[["user_id", "favourite"]], on="user_id")
    day = (state["ts"] - pd.Timestamp(START)).dt.days
    quality = np.where(day >= 4, current.loc[state["item_id"], "quality"].to_numpy(),
                       items.iloc[:ITEMS].set_index("item_id").loc[state["item_id"], "quality"].to_numpy())  # fmt: skip
    likes = (category[state["item_id"]] == state["favourite"]).astype(float) * 0.6 + quality * 0.4
    clicked = rng.random(len(state)) < likes**3
    clicks = state.loc[clicked, ["user_id", "item_id", "request_id"]].copy()
    clicks["ts"] = state.loc[clicked, "ts"] + pd.to_timedelta(
        rng.integers(1, 20, int(clicked.sum())), unit="m"
    )
    clicks["event"] = np.where(rng.random(len(clicks)) < 0.2, "purchase", "click")
    return users, items, impressions, clicks.reset_index(drop=True)


def apply(project: ml.Project, folder: Path, users: pd.DataFrame, items: pd.DataFrame) -> None:
    """Feature views ``user_profile`` (favourite) and ``item_stats`` (category, quality) from Parquet."""
    for name, frame in (("users", users), ("items", items)):
        frame = frame.copy()
        frame["ts"] = frame["ts"].astype("datetime64[us, UTC]")
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    profile = ml.FeatureView("user_profile", entities=[user], ttl="365d",
                             source=ml.ParquetSource(str(folder / "users.parquet"), timestamp="ts"),
                             features=[ml.Field("favourite", "int64")])  # fmt: skip
    stats = ml.FeatureView("item_stats", entities=[item], ttl="365d",
                           source=ml.ParquetSource(str(folder / "items.parquet"), timestamp="ts"),
                           features=[ml.Field("category", "int64"), ml.Field("quality", "float64")])  # fmt: skip
    project.apply([user, item, profile, stats])

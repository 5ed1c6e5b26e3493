"""Evidence that the world tells the case's story, measured on a seeded world with the towers alone (exact
inner product, no index, no ranker):

1. offline recall@100 of the towers on the next days' clicks is well above popularity's;
2. after the taste shift the simulated CTR of v1's top-20 falls, and a v2 trained on post-shift clicks
   recovers it;
3. the v2-v1 gap is large enough for an A/B test in a demo: a few thousand requests per arm at most.

CTR here is the pipeline's: the share of requests (one user, one list of 20) with at least one click.

    python -m mloop.examples.recsys.evidence [--fast]

>>> figures = story(World.make(users=500, items=1000, seed=0))  # doctest: +SKIP
>>> figures["ctr"]["v2_post"] > figures["ctr"]["v1_post"]        # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from mloop.examples.recsys.features import daily_user_features, feature_frame
from mloop.examples.recsys.generate import World
from mloop.examples.recsys.towers import Towers, train_towers


def top_k(towers: Towers, features: pd.DataFrame, items: pd.DataFrame, k: int) -> np.ndarray:
    """Each user's ``k`` best items by exact inner product: (n, k) item ids, best first."""
    ids, matrix = towers.item_embeddings(items)
    scores = towers.user_embeddings(features) @ matrix.T
    best = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
    order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
    return ids[np.take_along_axis(best, order, axis=1)]


def popular(interactions: pd.DataFrame, start: Any, day: int, items: pd.DataFrame, k: int,
            window: int = 7) -> np.ndarray:  # fmt: skip
    """The ``k`` items of ``items`` clicked most in the ``window`` days before ``day``: the baseline."""
    clicks = interactions[interactions["event"] == "click"]
    since = pd.Timestamp(start) + pd.Timedelta(days=day - window)
    until = pd.Timestamp(start) + pd.Timedelta(days=day)
    recent = clicks[(clicks["ts"] > since) & (clicks["ts"] <= until)]
    counts = recent["item_id"].value_counts().reindex(items["item_id"], fill_value=0)
    return counts.sort_values(ascending=False, kind="stable").index.to_numpy()[:k]


def recall_at_k(recommended: np.ndarray, user_ids: np.ndarray, clicks: pd.DataFrame) -> float:
    """Share of ``clicks`` (user_id, item_id) whose item is in its user's row of ``recommended``."""
    row = pd.Series(np.arange(len(user_ids)), index=user_ids)
    hits = [
        item in recommended[row[user]]
        for user, item in zip(clicks["user_id"], clicks["item_id"], strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


def simulated_ctr(world: World, user_ids: np.ndarray, lists: np.ndarray, day: int, seed: int = 0) -> float:
    """Share of requests (row i: user ``user_ids[i]`` shown ``lists[i]``) with at least one click on ``day``."""
    rng = np.random.default_rng([world.seed, 7, day, seed])
    clicked = [
        world.respond(int(u), row, day, rng).clicks.size > 0 for u, row in zip(user_ids, lists, strict=True)
    ]
    return float(np.mean(clicked))


def sample_size(p1: float, p2: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Requests per arm to tell CTR ``p1`` from ``p2`` (two-sided two-proportion z-test, normal
    approximation). >>> sample_size(0.10, 0.15)  # 686"""
    if p1 == p2:
        return math.inf  # type: ignore[return-value]  # no sample finds no difference
    z_a, z_b = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    mean = (p1 + p2) / 2
    spread = z_a * math.sqrt(2 * mean * (1 - mean)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(spread**2 / (p1 - p2) ** 2)


def story(
    world: World,
    *,
    requests: int = 2000,
    after: int = 5,
    k: int = 20,
    seed: int = 0,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures of the case on ``world``: v1 trained on the days before the shift (less one, held out),
    v2 on the ``after`` days from the shift (``training``: more arguments of :func:`train_towers`); CTR of
    ``requests`` simulated requests per figure, on the held-out day for "pre" and on day shift + after
    for "post"."""
    shift, stream = world.shift_day, world.interactions(impressions=False)
    users, n = world.users["user_id"].to_numpy(), len(world.users)
    options = {"users": n, "start": world.start, "seed": seed, **(training or {})}
    v1 = train_towers(stream, world.items, days=(0, shift - 1), **options)
    v2 = train_towers(stream, world.items, days=(shift, shift + after), **options)
    snapshots = daily_user_features(stream, world.items, n, world.days, world.start)
    rng = np.random.default_rng([world.seed, 8])

    def catalogue(day: int) -> pd.DataFrame:
        items = world.items
        return items[(items["day_added"] <= day) & items["in_stock"]]

    # Offline recall@100 on the held-out day before the shift.
    held = shift - 1
    clicks = stream[
        (stream["event"] == "click") & ((stream["ts"] - pd.Timestamp(world.start)).dt.days == held)
    ]
    who = np.unique(clicks["user_id"])
    v1_top = top_k(v1, feature_frame(snapshots[held], who), catalogue(held), 100)
    pop_top = np.tile(popular(stream, world.start, held, catalogue(held), 100), (len(who), 1))
    recall = {"v1": recall_at_k(v1_top, who, clicks), "popularity": recall_at_k(pop_top, who, clicks)}

    def ctr(towers: Towers | None, day: int) -> float:
        sample = rng.choice(users, requests)
        items = catalogue(day)
        if towers is None:
            lists = np.tile(popular(stream, world.start, day, items, k), (requests, 1))
        else:
            lists = top_k(towers, feature_frame(snapshots[day], sample), items, k)
        return simulated_ctr(world, sample, lists, day, seed)

    post = shift + after
    rates = {
        "v1_pre": ctr(v1, held), "popularity_pre": ctr(None, held),
        "v1_post": ctr(v1, post), "v2_post": ctr(v2, post), "popularity_post": ctr(None, post),
    }  # fmt: skip
    return {
        "world": {
            "users": n,
            "items": len(world.items),
            "days": world.days,
            "shift_day": shift,
            "seed": world.seed,
        },
        "recall_at_100": recall,
        "ctr": rates,
        "requests_per_figure": requests,
        "sample_size_per_arm": sample_size(rates["v1_post"], rates["v2_post"]),
        "train_days": {"v1": list(v1.trained_on), "v2": list(v2.trained_on)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The recsys world's figures (seeded).")
    parser.add_argument("--fast", action="store_true", help="500 users, 1k items (the demo's --fast)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    users, items = (500, 1000) if args.fast else (5000, 10000)
    print(json.dumps(story(World.make(users, items, seed=args.seed), seed=args.seed), indent=2))


if __name__ == "__main__":
    main()


__all__ = ["popular", "recall_at_k", "sample_size", "simulated_ctr", "story", "top_k"]

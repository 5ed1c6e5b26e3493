"""The ranker's training lists: what the retrieve stage would have returned for each visit of the shop's
past, labelled by what the user clicked then.

A ranker serves on the towers' candidates, so it is trained on them: for every visit of the history with
a click, the towers version's top ``k`` of the in-stock catalogue of that day, for the user's features as
of the midnight before (what the pipeline's retrieve stage computes), each with its ``retrieval_rank``
(0: the best, the request field the rank stage sends). A candidate the user clicked in that visit is a
positive (a purchase grade 2); the others of the list are negatives, ``negatives`` of them drawn at
random. Visits whose clicks are all outside the top ``k`` teach the ranker nothing and are left out.

Trained on the shop's own browse lists instead (half search results, half bestsellers), the ranker
learned to trust popularity over the towers: after a shift of taste it pulled every version's
candidates back to the old bestsellers and undid what a retrained version had learned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop.examples.recsys import shop
from mloop.examples.recsys.features import USER_COLUMNS, daily_user_features, feature_frame

CHUNK = 1_024  # visits scored against the catalogue at a time


def candidate_lists(project: Any, version: int, history: pd.DataFrame, items: pd.DataFrame, users: int,
                    start: datetime, *, k: int = 200, negatives: int = 10, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Rows ``request_id, user_id, item_id, ts, label, retrieval_rank`` for the ranker of towers
    ``version`` (its user tower and its item tower): see the module's docstring. ``history`` is the world's
    interactions (impression, click and purchase rows), ``items`` its catalogue, ``users`` the user count."""
    visits = _visits(history)
    if visits.empty:
        raise ValueError("the history has no visit with a click: nothing to train a ranker on.")
    user_tower = project.models.load("towers", version)
    item_tower = project.models.load("item_tower", version)
    day = ((visits["ts"] - pd.Timestamp(start)) // pd.Timedelta(days=1)).to_numpy()
    snapshots = daily_user_features(history, items, users, int(day.max()) + 1, start)
    rng = np.random.default_rng(seed)
    catalogue = shop.item_rows(items)
    vectors = shop.embed(item_tower, catalogue)
    ids = catalogue["item_id"].to_numpy("int64")
    added = items["day_added"].to_numpy()
    stocked = catalogue["in_stock"].to_numpy(bool)
    grades = _grades(history)
    frames = []
    for d in np.unique(day):
        today = visits[day == d]
        shown = np.flatnonzero(stocked & (added <= d))  # the retrieve stage's filter: in stock, on sale
        inputs = feature_frame(snapshots[d], today["user_id"].to_numpy())[USER_COLUMNS]
        embedded = np.asarray(user_tower.predict(inputs), dtype="float32")
        for lo in range(0, len(today), CHUNK):
            scores = embedded[lo : lo + CHUNK] @ vectors[shown].T
            top = min(k, len(shown))
            best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            order = np.take_along_axis(best, np.argsort(-np.take_along_axis(scores, best, 1), 1), 1)
            frames += [
                _list(visit, ids[shown[row]], grades.get(visit.request_id, {}), negatives, rng)
                for visit, row in zip(today.iloc[lo : lo + CHUNK].itertuples(), order, strict=True)
            ]
    found = [f for f in frames if f is not None]
    if not found:
        raise ValueError(
            f"no clicked item of the history is in towers v{version}'s top {k}: check the towers."
        )
    return pd.concat(found, ignore_index=True)


def _visits(history: pd.DataFrame) -> pd.DataFrame:
    """One row per visit with a click: its request id, user and time (the list's)."""
    clicked = history.loc[history["event"] != "impression", "request_id"].unique()
    rows = history[history["request_id"].isin(clicked)]
    first = rows.groupby("request_id", sort=False).agg(user_id=("user_id", "first"), ts=("ts", "min"))
    first["ts"] = pd.to_datetime(first["ts"], utc=True)
    return first.reset_index().sort_values("ts", kind="stable", ignore_index=True)


def _grades(history: pd.DataFrame) -> dict[str, dict[int, int]]:
    """request id -> {item id: 1 clicked, 2 bought}."""
    events = history[history["event"] != "impression"]
    grade = np.where(events["event"].to_numpy() == "purchase", 2, 1)
    out: dict[str, dict[int, int]] = {}
    for rid, item, g in zip(events["request_id"], events["item_id"].to_numpy("int64"), grade, strict=True):
        mine = out.setdefault(rid, {})
        mine[int(item)] = max(mine.get(int(item), 0), int(g))
    return out


def _list(visit: Any, ranked: np.ndarray, grades: dict[int, int], negatives: int,
          rng: np.random.Generator) -> pd.DataFrame | None:  # fmt: skip
    labels = np.array([grades.get(int(i), 0) for i in ranked], dtype="int64")
    positive = np.flatnonzero(labels > 0)
    if positive.size == 0:
        return None
    others = np.flatnonzero(labels == 0)
    keep = np.sort(np.concatenate([positive, rng.choice(others, min(negatives, others.size), replace=False)]))
    return pd.DataFrame({"request_id": visit.request_id, "user_id": int(visit.user_id),
                         "item_id": ranked[keep], "ts": visit.ts, "label": labels[keep],
                         "retrieval_rank": keep.astype("int64")})  # fmt: skip


__all__ = ["candidate_lists"]

"""The towers' inputs, defined so that the feature store can serve them.

**User features** are plain window sums over the click stream, so each is one feature-view aggregation:
push the clicks as events ``user_id, ts, cat_<category>`` (1 when the clicked item is of that category,
see :func:`click_events`) and aggregate ``sum`` of each ``cat_<category>`` over ``7d`` and ``30d`` and
``count`` over the same windows. Windows are ``(t - window, t]`` as in feature views. The user tower turns
the counts into shares itself, so the store needs no on-demand transformation:

- ``clicks_<category>_7d``, ``clicks_<category>_30d``: the user's clicks on that category;
- ``clicks_7d``, ``clicks_30d``: all their clicks;
- ``user_id``: the request's key (the tower hashes it into a bucket; it is exact as float32 below 2**24).

**Item inputs** are attributes: ``item_id``, ``category_code`` (the index in
:data:`~mloop.examples.recsys.generate.CATEGORIES`) and ``price``.

:func:`user_features` is the reference computation (pandas, any instant); :func:`daily_user_features`
computes the same at every midnight at once for training (NumPy; the tests hold them equal).

>>> frame = user_features(stream, world.items, at=world.start + timedelta(days=20))  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from mloop.examples.recsys.generate import CATEGORIES

WINDOWS = (7, 30)  # days
USER_FEATURES = [f"clicks_{c}_{w}d" for w in WINDOWS for c in CATEGORIES] + [f"clicks_{w}d" for w in WINDOWS]
USER_COLUMNS = [*USER_FEATURES, "user_id"]  # the user tower's inputs, in its order
ITEM_COLUMNS = ["item_id", "category_code", "price"]  # the item tower's inputs, in its order


def category_codes(categories: pd.Series) -> np.ndarray:
    """Category names as their index in CATEGORIES; ValueError naming the unknown ones."""
    codes = pd.Series(categories).map({c: k for k, c in enumerate(CATEGORIES)}).fillna(-1).to_numpy("int64")
    if (codes < 0).any():
        unknown = sorted(set(pd.Series(categories)[codes < 0].astype(str)))
        raise ValueError(f"Unknown categories {unknown}; the towers know {CATEGORIES}.")
    return codes


def item_inputs(items: pd.DataFrame) -> pd.DataFrame:
    """The item tower's input columns (``ITEM_COLUMNS``) from an item table (item_id, category, price)."""
    return pd.DataFrame({
        "item_id": items["item_id"].to_numpy(dtype="float32"),
        "category_code": category_codes(items["category"]).astype("float32"),
        "price": items["price"].to_numpy(dtype="float32"),
    })  # fmt: skip


def click_events(interactions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The clicks as the events to push to the feature store: ``user_id, ts, cat_<category>`` (0/1)."""
    clicks = interactions[interactions["event"] == "click"]
    codes = category_codes(
        items.set_index("item_id")["category"].reindex(clicks["item_id"]).reset_index(drop=True)
    )
    out = pd.DataFrame({"user_id": clicks["user_id"].to_numpy(), "ts": clicks["ts"].to_numpy()})
    for k, name in enumerate(CATEGORIES):
        out[f"cat_{name}"] = (codes == k).astype("int64")
    return out


def user_features(interactions: pd.DataFrame, items: pd.DataFrame, at: datetime,
                  users: np.ndarray | None = None) -> pd.DataFrame:  # fmt: skip
    """``USER_COLUMNS`` of every user in ``users`` (default: all who ever clicked) as of instant ``at``:
    the click counts in ``(at - window, at]``, zero for a user without clicks there."""
    events = click_events(interactions, items)
    stamp = pd.Timestamp(at)
    ids = np.unique(events["user_id"]) if users is None else np.asarray(users, dtype="int64")
    out = pd.DataFrame({"user_id": ids})
    for window in WINDOWS:
        inside = events[(events["ts"] > stamp - timedelta(days=window)) & (events["ts"] <= stamp)]
        sums = inside.groupby("user_id")[[f"cat_{c}" for c in CATEGORIES]].sum()
        for c in CATEGORIES:
            out[f"clicks_{c}_{window}d"] = sums[f"cat_{c}"].reindex(ids, fill_value=0).to_numpy()
        out[f"clicks_{window}d"] = inside.groupby("user_id").size().reindex(ids, fill_value=0).to_numpy()
    return out[["user_id", *USER_FEATURES]].astype("float32").assign(user_id=ids)[USER_COLUMNS]


def daily_user_features(interactions: pd.DataFrame, items: pd.DataFrame, users: int, days: int,
                        start: datetime) -> np.ndarray:  # fmt: skip
    """``USER_FEATURES`` (without ``user_id``) of users 1..``users`` at each midnight ``start + d`` for d in
    0..``days``: an array (days + 1, users, len(USER_FEATURES)), row d the counts of days d-w..d-1."""
    events = click_events(interactions, items)
    day = ((events["ts"] - pd.Timestamp(start)) // pd.Timedelta(days=1)).to_numpy()
    keep = (day >= 0) & (day < days)
    codes = events[[f"cat_{c}" for c in CATEGORIES]].to_numpy().argmax(axis=1)
    daily = np.zeros((days, users, len(CATEGORIES)), dtype="float32")
    np.add.at(daily, (day[keep], events["user_id"].to_numpy()[keep] - 1, codes[keep]), 1.0)
    running = np.concatenate([np.zeros((1, users, len(CATEGORIES)), "float32"), daily.cumsum(axis=0)])
    parts = []
    for window in WINDOWS:
        earlier = np.concatenate([np.zeros((window, users, len(CATEGORIES)), "float32"), running])[: days + 1]
        parts.append(running - earlier)
    per_category = np.concatenate(parts, axis=2)
    totals = [p.sum(axis=2, keepdims=True) for p in parts]
    return np.concatenate([per_category, *totals], axis=2)


def feature_frame(snapshot: np.ndarray, user_ids: np.ndarray) -> pd.DataFrame:
    """One day's rows of :func:`daily_user_features` as the user tower's input frame (``USER_COLUMNS``)."""
    ids = np.asarray(user_ids, dtype="int64")
    frame = pd.DataFrame(snapshot[ids - 1], columns=USER_FEATURES)
    frame["user_id"] = ids
    return frame


__all__ = [
    "ITEM_COLUMNS", "USER_COLUMNS", "USER_FEATURES", "WINDOWS", "category_codes", "click_events",
    "daily_user_features", "feature_frame", "item_inputs", "user_features",
]  # fmt: skip

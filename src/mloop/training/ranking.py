"""Training sets for a ranking model from what was shown and what was clicked, point in time.

An *impression* is one item shown in one answer: ``(request_id, user_id, item_id, position, ts)``. A
pipeline endpoint's logged answers give them (:func:`mloop.predictions.impressions.explode` and
``read_impressions``); any DataFrame with those columns will do. Interactions (clicks, purchases) are
``(user_id, item_id, ts[, request_id][, event])``.

>>> shown = label_impressions(impressions, clicks, within="1h", grades={"click": 1, "purchase": 2})  # doctest: +SKIP
>>> train = ranking_set(project, impressions, clicks, features=["user_stats:*", "item_stats:*"],
...                     negatives=4)                                                  # doctest: +SKIP

Or let a :class:`~mloop.TrainingPipeline` join the features itself: ``Label(shown, column="label",
timestamp="ts")`` with ``group="request_id"`` (see :mod:`mloop.training.pipeline`).

Rules: an impression is labelled by the interactions of the same user with the same item at or after
the impression and within ``within`` of it; when both carry a request id they must match (a click on
the same item served by another answer does not count). Its label is the highest grade found, 0 if
none. Features are looked up as of the impression's time, never later (the feature store's
point-in-time join), so nothing the user did after seeing the list leaks into its row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import parse_duration
from mloop.errors import SchemaError
from mloop.training.workspace import Workspace

IMPRESSION_COLUMNS = ("request_id", "user_id", "item_id", "position", "ts")
INTERACTION_COLUMNS = ("user_id", "item_id", "ts")


def label_impressions(
    impressions: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    within: str | timedelta = "1h",
    grades: Mapping[Any, float] | None = None,
    event: str = "event",
) -> pd.DataFrame:
    """The impressions with a ``label`` column: the best grade of a matching interaction, else 0.

    ``grades`` maps the interactions' ``event`` values to grades (``{"click": 1, "purchase": 2}``);
    without it every interaction is grade 1 (a click). Interactions of events not in ``grades`` are
    ignored. Labels are integers, as LightGBM's lambdarank wants them.

    >>> imp = pd.DataFrame({"request_id": ["r1", "r1"], "user_id": [7, 7], "item_id": ["a", "b"],
    ...                     "position": [0, 1], "ts": pd.to_datetime(["2026-01-01 10:00"] * 2, utc=True)})
    >>> clicks = pd.DataFrame({"user_id": [7], "item_id": ["b"],
    ...                        "ts": pd.to_datetime(["2026-01-01 10:05"], utc=True)})
    >>> label_impressions(imp, clicks)["label"].tolist()
    [0, 1]
    """
    _require(impressions, IMPRESSION_COLUMNS, "impressions")
    _require(interactions, INTERACTION_COLUMNS, "interactions")
    window = parse_duration(within, what="click window")
    if window is None or window <= timedelta(0):
        raise SchemaError(f"within must be a positive duration such as '1h' or '30m'; got {within!r}.")
    _aware(impressions["ts"], "impressions")
    _aware(interactions["ts"], "interactions")
    acts = interactions.copy()
    if grades is not None:
        if event not in acts.columns:
            raise SchemaError(
                f"grades needs the interactions' {event!r} column (what each interaction was); it has "
                f"{list(acts.columns)}. Pass event='your column', or leave grades out to count every one as 1."
            )
        acts["__grade__"] = acts[event].map(dict(grades))
        acts = acts[acts["__grade__"].notna()]
    else:
        acts["__grade__"] = 1.0
    keys = ["user_id", "item_id"]
    has_rid = "request_id" in acts.columns
    kept = [*keys, "ts", "__grade__", *(["request_id"] if has_rid else [])]
    out = impressions.reset_index(drop=True)
    out["__row__"] = np.arange(len(out))
    pairs = out[[*keys, "ts", "request_id", "__row__"]].merge(
        acts[kept].rename(columns={"ts": "__acted__", "request_id": "__rid__"}), on=keys, how="inner"
    )
    match = (pairs["__acted__"] >= pairs["ts"]) & (pairs["__acted__"] <= pairs["ts"] + window)
    if has_rid:
        rid = pairs["__rid__"]
        match &= rid.isna() | (rid.astype("string") == pairs["request_id"].astype("string"))
    best = pairs[match].groupby("__row__")["__grade__"].max()
    label = np.zeros(len(out), dtype=np.int64)
    label[best.index.to_numpy()] = np.rint(best.to_numpy()).astype(np.int64)
    out["label"] = label
    return out.drop(columns="__row__")


def sample_negatives(
    frame: pd.DataFrame, per_query: int, *, query: str = "request_id", label: str = "label", seed: int = 0
) -> pd.DataFrame:
    """Every positive row and at most ``per_query`` random negatives of each query, in the input order.

    >>> df = pd.DataFrame({"request_id": ["r"] * 5, "label": [1, 0, 0, 0, 0]})
    >>> len(sample_negatives(df, 2))
    3
    """
    if isinstance(per_query, bool) or not isinstance(per_query, int) or per_query < 0:
        raise SchemaError(f"per_query must be a whole number of negatives, 0 or more; got {per_query!r}.")
    _require(frame, (query, label), "the frame")
    negative = frame[label].to_numpy() <= 0
    noise = np.random.default_rng(seed).random(len(frame))
    # rank each query's negatives in a random order; keep the first per_query
    order = pd.Series(np.where(negative, noise, np.inf), index=frame.index)
    turn = order.groupby(frame[query].to_numpy()).rank(method="first")
    return frame[~negative | (turn <= per_query).to_numpy()]


def ranking_set(
    project: Workspace,
    impressions: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    features: Sequence[str],
    within: str | timedelta = "1h",
    grades: Mapping[Any, float] | None = None,
    negatives: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Labelled impressions with their features as of each impression's time (one row per impression,
    sorted by time then request then position). ``negatives``: keep every positive and at most that many
    negatives per request (None keeps all impressions). The feature views must be keyed by the
    impressions' columns (``user_id``, ``item_id``).

    >>> ranking_set(project, impressions, clicks, features=["item_stats:*"], negatives=4)  # doctest: +SKIP
    """
    labelled = label_impressions(impressions, interactions, within=within, grades=grades)
    if negatives is not None:
        labelled = sample_negatives(labelled, negatives, seed=seed)
    labelled = labelled.sort_values(["ts", "request_id", "position"], kind="stable").reset_index(drop=True)
    return project.features.historical(labelled, list(features), timestamp="ts")


def query_times(frame: pd.DataFrame, query: str, timestamp: str) -> pd.Series:
    """Each row's query time: the earliest time of its query, so a split by it keeps queries whole."""
    return frame.groupby(query, sort=False)[timestamp].transform("min")


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{what} lack column(s) {missing}; they have {list(frame.columns)}. Rename them "
            f"(frame.rename(columns={{...}})) to {list(columns)}."
        )


def _aware(times: pd.Series, what: str) -> None:
    if len(times) == 0:  # no clicks yet is a valid table, whatever dtype an empty frame got
        return
    if not pd.api.types.is_datetime64_any_dtype(times) or getattr(times.dt, "tz", None) is None:
        raise SchemaError(
            f"The {what}' ts must hold timezone-aware times; localize them: df['ts'] = "
            "df['ts'].dt.tz_localize('UTC')."
        )

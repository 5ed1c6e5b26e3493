"""Live ranking metrics of a recommender from feedback: the lists it served (the prediction log of a
pipeline endpoint, :meth:`mloop.monitoring.predictions.Predictions.impressions`) joined with what users
then clicked (an interactions table), per model version and day.

>>> live_ranking(project, "recs", clicks, since="7d", k=[10, 20])     # doctest: +SKIP
   version         day  requests  impressions  clicks   ctr  item_ctr   mrr  ndcg@10  recall@10 ...

Definitions (per group of answers):

- ``ctr``: the share of answers with at least one clicked item (what click feedback on a request id
  reports, and what the A/B analysis compares); ``item_ctr``: clicked impressions / impressions.
- ``mrr``, ``ndcg@K``, ``recall@K``, ``hit_rate@K`` and ``coverage@K`` are
  :func:`mloop.metrics.ranking.of_frame`'s, with the served order as the ranking and a click (or its
  grade) as relevance. Users can only click what was shown, so ``recall@K`` is the share of the clicked
  items that were in the top K of the list, and the averages are over answers with a click.
- A click counts for an impression when the same user clicked the same item within ``within`` after it
  (and the request ids match when the click has one): :func:`mloop.training.ranking.label_impressions`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import SchemaError
from mloop.metrics import ranking
from mloop.training.ranking import label_impressions

GROUPS = ("version", "day")


def live_metrics(
    impressions: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    k: Iterable[int] = (10,),
    within: str | timedelta = "1h",
    grades: Mapping[Any, float] | None = None,
    by: Sequence[str] = GROUPS,
    catalogue: int | Collection[Any] | None = None,
) -> pd.DataFrame:
    """One row per group of ``by`` (``version``, ``day`` — the UTC date of the answer — or any column
    of the impressions; ``by=()`` for one overall row), sorted by it, with the metrics of the module
    docstring. ``catalogue`` sizes the coverage (default: the items shown in that group).

    >>> shown = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "row": 0, "user_id": [1, 1, 2],
    ...                       "item_id": ["a", "b", "a"], "position": [0, 1, 0], "version": 1,
    ...                       "ts": pd.to_datetime(["2026-12-01 10:00"] * 3, utc=True)})
    >>> clicks = pd.DataFrame({"user_id": [1], "item_id": ["b"],
    ...                        "ts": pd.to_datetime(["2026-12-01 10:01"], utc=True)})
    >>> row = live_metrics(shown, clicks, k=[1]).iloc[0]
    >>> float(row["ctr"]), float(row["mrr"])
    (0.5, 0.5)
    """
    by = [by] if isinstance(by, str) else list(by)
    labelled = label_impressions(impressions, interactions, within=within, grades=grades)
    labelled["day"] = labelled["ts"].dt.strftime("%Y-%m-%d") if len(labelled) else pd.Series(dtype=object)
    unknown = [c for c in by if c not in labelled.columns]
    if unknown:
        raise SchemaError(
            f"Cannot group live ranking metrics by {unknown}: the impressions have {list(labelled.columns)}. "
            "Use version, day, or a column of the impressions."
        )
    # one query per answered row; the served order is the ranking
    labelled["__query__"] = labelled["request_id"].astype(str) + "#" + labelled["row"].astype(str)
    labelled["__score__"] = -labelled["position"].to_numpy(dtype=np.float64)
    groups = labelled.groupby(by, sort=True, dropna=False) if by else [((), labelled)]
    rows = []
    for key, part in groups:
        values = ranking.of_frame(part, query="__query__", item="item_id", score="__score__", label="label",
                                  k=k, catalogue=catalogue)  # fmt: skip
        clicked = part["label"].to_numpy() > 0
        answered = part.groupby("__query__")["label"].max()
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, keys, strict=True)), "requests": int(values["queries"]),
                     "impressions": len(part), "clicks": int(clicked.sum()),
                     "ctr": float((answered > 0).mean()), "item_ctr": float(clicked.mean()),
                     **{name: value for name, value in values.items() if name not in ("queries",)}})  # fmt: skip
    columns = [*by, "requests", "impressions", "clicks", "ctr", "item_ctr"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def live_ranking(
    project: Any,
    endpoint: str,
    interactions: pd.DataFrame,
    *,
    since: str | datetime = "7d",
    until: datetime | None = None,
    user: str = "user_id",
    **options: Any,
) -> pd.DataFrame:
    """:func:`live_metrics` of the answers ``endpoint`` logged in ``[since, until)`` (read with
    ``project.predictions.impressions``, which needs ``monitoring.read`` on the endpoint). ``options``:
    those of :func:`live_metrics` (k, within, grades, by, catalogue).

    >>> live_ranking(project, "recs", clicks, since="1d", k=[10], by=["version"])  # doctest: +SKIP
    """
    shown = project.predictions.impressions(endpoint, since=since, until=until, user=user)
    return live_metrics(shown, interactions, **options)

"""Impressions: the items a recommender's logged answers showed, one row per item and position.

A pipeline endpoint logs one row per request row whose prediction is the list of recommended item ids,
best first (issue 20's prediction-log convention). :func:`explode` turns such rows into impressions
``(request_id, row, user_id, item_id, position, ts, version)``, what ranking training sets
(:mod:`mloop.training.ranking`) and live ranking metrics (:mod:`mloop.monitoring.ranking`) start from.
The user is read from the logged inputs, or from the request's keys when the model did not take it.

>>> read_impressions(predictions_folder(project.settings), "recs", since=datetime(2026, 12, 1, tzinfo=UTC))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mloop.crypto import PLAIN, ParquetFiles
from mloop.errors import SchemaError
from mloop.predictions.files import read_predictions, read_table
from mloop.predictions.place import LogFolder

COLUMNS = ["request_id", "row", "user_id", "item_id", "position", "ts", "version"]


def explode(answers: pd.DataFrame, *, user: str = "user_id") -> pd.DataFrame:
    """One row per recommended item of each answer (``prediction`` a list of item ids), with its 0-based
    ``position``; the ``user`` column is renamed ``user_id``. Answers whose prediction is not a list
    (an error's null) show nothing.

    >>> answers = pd.DataFrame({"request_id": ["r1"], "row": [0], "user_id": [7], "version": [1],
    ...                         "ts": pd.to_datetime(["2026-12-01"], utc=True), "prediction": [["a", "b"]]})
    >>> explode(answers)[["item_id", "position"]].values.tolist()
    [['a', 0], ['b', 1]]
    """
    missing = [c for c in ("request_id", "ts", "prediction", user) if c not in answers.columns]
    if missing:
        raise SchemaError(
            f"The logged answers lack column(s) {missing}; they have {list(answers.columns)}. The user is "
            "read from the request's inputs or keys: send it with each request, or name its column with user=."
        )
    frame = answers.rename(columns={user: "user_id"}) if user != "user_id" else answers.copy()
    if "row" not in frame.columns:
        frame["row"] = 0
    if "version" not in frame.columns:
        frame["version"] = None
    lists = frame["prediction"].map(lambda p: list(p) if isinstance(p, list | tuple | np.ndarray) else [])
    lengths = lists.map(len).to_numpy()
    out = frame.loc[frame.index.repeat(lengths), ["request_id", "row", "user_id", "ts", "version"]]
    out = out.reset_index(drop=True)
    out["item_id"] = pd.Series([item for items in lists for item in items], dtype=object).infer_objects()
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    out["position"] = np.arange(int(lengths.sum())) - starts
    return out[COLUMNS]


def read_impressions(
    folder: Path | str | LogFolder,
    endpoint: str,
    since: datetime | None = None,
    until: datetime | None = None,
    parquet: ParquetFiles = PLAIN,
    *,
    user: str = "user_id",
) -> pd.DataFrame:
    """The impressions of ``endpoint``'s answers logged in ``[since, until)``, oldest first (the answers
    callers got: shadow and failed rows are left out)."""
    answers = read_predictions(folder, endpoint, since, until, parquet)
    if not answers.empty:
        answers = answers[answers["status"] == "ok"]
    if answers.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    if user not in answers.columns or answers[user].isna().any():  # then it came as a request key
        keys = _keys(folder, endpoint, since, until, parquet, user).rename(columns={user: "__key__"})
        answers = answers.merge(keys, how="left", on=["request_id", "row"])
        key = answers.pop("__key__")
        found = key if user not in answers else answers[user].astype(object).where(answers[user].notna(), key)
        answers[user] = found.infer_objects()  # JSON ints stay ints, not floats around a NaN
    return explode(answers, user=user)


def _keys(folder: Path | str | LogFolder, endpoint: str, since: datetime | None, until: datetime | None,
          parquet: ParquetFiles, user: str) -> pd.DataFrame:  # fmt: skip
    """``user`` from the logged request keys (the fields the model did not take), per request row."""
    table = read_table(
        folder if isinstance(folder, LogFolder) else Path(folder), endpoint, since, until, parquet
    )
    frame = table.select(["request_id", "row", "keys"]).to_pandas().drop_duplicates(["request_id", "row"])
    values = [json.loads(k).get(user) if isinstance(k, str) else None for k in frame["keys"]]
    return pd.DataFrame({"request_id": frame["request_id"], "row": frame["row"], user: values})

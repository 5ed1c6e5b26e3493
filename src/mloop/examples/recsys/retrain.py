"""The towers' training pipeline as the loop runs it: the clicks of the ``days`` days before the newest
24 hours (from the ``clicks`` dataset) train a new pair of towers; the newest 24 hours' clicks are the
holdout, measured as recall@100 of the clicked item among the items a version's index returns for the
user.

The loop's retrain (:func:`mloop.loop.retrain.retrain`) calls ``training_set``, ``run`` (which registers
``towers`` and ``item_tower`` with the same version number and attaches the new version's index of the
catalogue) and ``evaluate`` (the champion on the same holdout, with its own index): a retrieval model is
judged by what its index finds, not by its raw output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop.examples.recsys import shop
from mloop.examples.recsys.features import USER_COLUMNS, daily_user_features, feature_frame
from mloop.examples.recsys.towers import train_towers
from mloop.metrics.ranking import metric_key

K = 100


@dataclass
class TowersData:
    """What the loop's data checks and gate read: ``train`` (the training clicks with their user
    features), ``test`` (the newest day's clicks, likewise), ``features`` (the user tower's inputs)."""

    train: pd.DataFrame
    test: pd.DataFrame
    stream: pd.DataFrame
    items: pd.DataFrame
    start: datetime
    days: tuple[int, int]
    features: list[str] = field(default_factory=lambda: list(USER_COLUMNS))
    label: str = "item_id"
    task: str = "retrieval"


@dataclass
class TowersPipeline:
    """Retrains the two towers on the newest ``days`` days of clicks (``users``: the user ids are 1..users).
    ``recent=False``: the user tower reads the 30-day click profile only (steady tastes; a shift of taste
    then needs a retrain, which is what the loop is for)."""

    users: int
    days: int = 6
    epochs: int = 8
    seed: int = 0
    recent: bool = False
    name: str = "towers"

    def training_set(self, project: Any) -> TowersData:
        """The clicks of the ``days`` days before the newest 24 hours (training) and of those 24 hours
        (the holdout), each with its user's features as of the start of its day of the window."""
        clicks = project.data.read("clicks")
        items = project.data.read("items")
        clicks["ts"] = pd.to_datetime(clicks["ts"], utc=True)
        end = clicks["ts"].max() + pd.Timedelta(microseconds=1)
        origin = (end - pd.Timedelta(days=1 + self.days + 30)).to_pydatetime()  # 30 days for the features
        stream = clicks.assign(event="click")[["user_id", "item_id", "ts", "event", "request_id"]]
        stream = stream[stream["ts"] >= pd.Timestamp(origin)]
        span = (30, 30 + self.days)  # training days, counted from origin; the day after is the holdout
        snapshots = daily_user_features(stream, items, self.users, span[1] + 1, origin)
        train = _rows(stream, snapshots, origin, span[0], span[1])
        test = _rows(stream, snapshots, origin, span[1], span[1] + 1)
        return TowersData(train, test, stream, items, origin, span)

    def run(self, project: Any, data: TowersData | None = None) -> Any:
        data = data or self.training_set(project)
        first, last = data.days
        with project.run(
            "towers", params={"days": self.days, "epochs": self.epochs, "seed": self.seed}
        ) as run:
            towers = train_towers(data.stream, data.items, users=self.users, start=data.start,
                                  days=(first, last), epochs=self.epochs, seed=self.seed,
                                  recent=self.recent)  # fmt: skip
            lineage = {"features": shop.USER_REFS}
            version = run.register(towers.user_model(), self.name, input_example=towers.example, lineage=lineage,
                                   description="The user tower of the two-tower retrieval model.")  # fmt: skip
            item = project.models.register("item_tower", towers.item_model(),
                                           input_example=_item_example(data.items), run_id=run.id)  # fmt: skip
            if item.version != version.version:
                raise RuntimeError(
                    f"item_tower v{item.version} beside towers v{version.version}: keep them in step."
                )
            loaded = project.models.load("item_tower", item.version)
            project.models.attach_index(self.name, version.version,
                                        shop.index_of(loaded, data.items, (self.name, version.version)))  # fmt: skip
            run.model_version = version
            challenger = project.models.load(self.name, version.version)
            run.log_metric(f"test_{metric_key(f'recall@{K}')}", self.evaluate(project, challenger, data.test))
        return run

    def evaluate(self, project: Any, model: Any, holdout: pd.DataFrame) -> float:
        """recall@100 of ``model`` (a loaded ``towers`` version) on ``holdout``: the share of held-out
        clicks whose item is among the 100 its index returns (exact search, in stock or not) for the user's
        features as of the midnight before."""
        return recall(project, model, holdout)


def recall(project: Any, model: Any, holdout: pd.DataFrame, k: int = K) -> float:
    if holdout.empty:
        return float("nan")
    index = project.models.index(model.name, model.version)
    embeddings = np.asarray(model.predict(holdout[USER_COLUMNS]), dtype="float32")
    hits = index.search(embeddings, k, exact=True)
    found = [item in set(h.ids.tolist()) for item, h in zip(holdout["item_id"].to_numpy(), hits, strict=True)]
    return float(np.mean(found))


def _rows(
    stream: pd.DataFrame, snapshots: np.ndarray, origin: datetime, first: int, last: int
) -> pd.DataFrame:
    day = ((stream["ts"] - pd.Timestamp(origin)) // pd.Timedelta(days=1)).to_numpy()
    chosen = stream[(day >= first) & (day < last)]
    chosen_day = day[(day >= first) & (day < last)]
    frames = [
        feature_frame(snapshots[d], chosen["user_id"].to_numpy()[chosen_day == d])
        for d in np.unique(chosen_day)
    ]
    if not frames:
        return pd.DataFrame(columns=[*USER_COLUMNS, "item_id", "ts"])
    out = pd.concat(frames, ignore_index=True)
    order = np.argsort(chosen_day, kind="stable")
    out["item_id"] = chosen["item_id"].to_numpy()[order]
    out["ts"] = chosen["ts"].to_numpy()[order]
    return out


def _item_example(items: pd.DataFrame) -> pd.DataFrame:
    head = items.head(8)
    return pd.DataFrame({"item_id": head["item_id"].to_numpy("float32"),
                         "category_code": head["category_code"].to_numpy("float32"),
                         "price": head["price"].to_numpy("float32")})  # fmt: skip


__all__ = ["K", "TowersData", "TowersPipeline", "recall"]

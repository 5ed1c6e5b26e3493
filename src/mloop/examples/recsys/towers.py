"""The two-tower retrieval model: a user tower and an item tower mapping to L2-normalised ``dim``-d
embeddings whose inner product scores a user's appetite for an item.

- **User tower** (:class:`UserTower`): its one ``forward`` argument is the ``(n, 19)`` stack of
  :data:`~mloop.examples.recsys.features.USER_COLUMNS` (the feature store's click counts and ``user_id``),
  so registered with a frame of those columns it serves one embedding per row, the columns by name. It
  turns the counts into per-category shares and log totals itself, and hashes ``user_id`` into one of
  ``user_buckets`` learned vectors (0: no id part, a tower of features alone).
- **Item tower** (:class:`ItemTower`): ``item_id``, ``category_code``, ``price`` (``ITEM_COLUMNS``) to a
  category one-hot, a price bucket one-hot and a hashed item-id vector.
- **Training** (:func:`train_towers`): on click events, each with its user's features as of the midnight
  before it (point in time); sampled softmax over in-batch negatives with a temperature, the logQ
  correction (minus the log of an item's share of the training clicks, so popular items are not
  punished for being everyone's negative) and accidental hits (the same item elsewhere in the batch)
  masked out. Seeded and single-threaded: the same inputs give the same weights on a CPU.

Both towers hash with a plain modulo (``id mod buckets``) on int64 inside ``forward`` so the exported
program carries it and callers send raw ids.

>>> towers = train_towers(stream, world.items, users=500, days=14, start=world.start)  # doctest: +SKIP
>>> project.models.register("user_tower", towers.user_model(), input_example=towers.example)  # doctest: +SKIP
>>> ids, matrix = towers.item_embeddings(world.items)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import torch
from torch import nn

from mloop.examples.recsys.features import (
    USER_COLUMNS,
    daily_user_features,
    feature_frame,
    item_inputs,
)  # fmt: skip
from mloop.examples.recsys.generate import CATEGORIES

PRICE_EDGES = (10.0, 20.0, 40.0, 80.0, 160.0)  # price buckets: below 10, 10-20, ..., 160 and more
_CATS = len(CATEGORIES)


class UserTower(nn.Module):
    """Click counts and a user id to a unit vector (see the module's docstring)."""

    def __init__(self, dim: int = 32, user_buckets: int = 0, hidden: int = 64, recent: bool = True) -> None:
        super().__init__()
        self.user_buckets, self.dim, self.recent = user_buckets, dim, recent
        width = 2 * _CATS + 2 + (16 if user_buckets else 0)
        self.ids = nn.Embedding(max(1, user_buckets), 16)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        week, month = features[:, :_CATS], features[:, _CATS : 2 * _CATS]
        totals = features[:, 2 * _CATS : 2 * _CATS + 2]
        shares = [week / totals[:, :1].clamp(min=1.0), month / totals[:, 1:2].clamp(min=1.0)]
        if not self.recent:  # a 30-day profile only: steady tastes, not the last week's whims
            shares[0] = shares[0] * 0.0
        parts = [*shares, torch.log1p(totals)]
        if self.user_buckets:
            parts.append(self.ids(torch.remainder(features[:, -1].long(), self.user_buckets)))
        return nn.functional.normalize(self.mlp(torch.cat(parts, dim=1)), dim=1)


class ItemTower(nn.Module):
    """Item id, category code and price to a unit vector (see the module's docstring)."""

    def __init__(self, dim: int = 32, item_buckets: int = 4096, hidden: int = 64) -> None:
        super().__init__()
        self.item_buckets = item_buckets
        self.edges: torch.Tensor
        self.register_buffer("edges", torch.tensor(PRICE_EDGES))
        width = _CATS + len(PRICE_EDGES) + 1 + (16 if item_buckets else 0)
        self.ids = nn.Embedding(max(1, item_buckets), 16)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, attributes: torch.Tensor) -> torch.Tensor:
        item, category, price = attributes[:, 0], attributes[:, 1], attributes[:, 2]
        codes = torch.arange(_CATS, dtype=attributes.dtype, device=attributes.device)
        one_hot = (category[:, None] == codes[None, :]).to(attributes.dtype)
        bucket = (price[:, None] >= self.edges[None, :]).sum(dim=1)
        levels = torch.arange(len(PRICE_EDGES) + 1, device=attributes.device)
        parts = [one_hot, (bucket[:, None] == levels[None, :]).to(attributes.dtype)]
        if self.item_buckets:
            parts.append(self.ids(torch.remainder(item.long(), self.item_buckets)))
        return nn.functional.normalize(self.mlp(torch.cat(parts, dim=1)), dim=1)


@dataclass
class Towers:
    """A trained pair of towers, what they were trained on, and an example of the user tower's input."""

    user: UserTower
    item: ItemTower
    example: pd.DataFrame  # a few rows of USER_COLUMNS: the input_example to register the user tower with
    trained_on: tuple[int, int]  # the days [first, last) whose clicks trained it
    loss: float  # the last epoch's mean training loss

    @property
    def dim(self) -> int:
        return int(self.user.dim)

    def user_model(self) -> UserTower:
        """The user tower in eval mode, ready for ``project.models.register(name, model, input_example=
        towers.example)``: it answers an embedding (``dim`` values) per row of ``USER_COLUMNS``."""
        return self.user.eval()

    def item_model(self) -> ItemTower:
        """The item tower in eval mode (inputs: ``ITEM_COLUMNS``), to register for embedding new items."""
        return self.item.eval()

    def user_embeddings(self, features: pd.DataFrame) -> np.ndarray:
        """(n, dim) unit rows for a frame holding ``USER_COLUMNS``."""
        batch = torch.from_numpy(features[USER_COLUMNS].to_numpy(dtype="float32"))
        with torch.inference_mode():
            return self.user_model()(batch).numpy()

    def item_embeddings(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, matrix)``: the items' ids (int64) and their (n, dim) unit embeddings, for the index."""
        batch = torch.from_numpy(np.array(item_inputs(items), dtype="float32"))
        with torch.inference_mode():
            matrix = self.item_model()(batch).numpy()
        return items["item_id"].to_numpy(dtype="int64"), matrix


def train_towers(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    *,
    users: int,
    start: datetime,
    days: tuple[int, int],
    dim: int = 32,
    user_buckets: int = 0,
    recent: bool = True,
    item_buckets: int = 4096,
    epochs: int = 8,
    batch: int = 512,
    temperature: float = 0.1,
    log_q: bool = True,
    lr: float = 0.01,
    seed: int = 0,
) -> Towers:
    """Towers trained on the clicks of days ``[first, last)`` (counted from ``start``) of users 1..``users``:
    ``epochs`` passes in batches of ``batch`` clicks (smaller for few clicks: 32 a pass), Adam at ``lr``.

    >>> towers = train_towers(stream, world.items, users=500, start=world.start, days=(0, 14))  # doctest: +SKIP
    """
    first, last = days
    if not 0 <= first < last:
        raise ValueError(f"days must be (first, last) with 0 <= first < last, not {days}.")
    snapshots = daily_user_features(interactions, items, users, last, start)
    clicks = interactions[interactions["event"] == "click"]
    day = ((clicks["ts"] - pd.Timestamp(start)) // pd.Timedelta(days=1)).to_numpy()
    clicks = clicks[(day >= first) & (day < last)]
    day = day[(day >= first) & (day < last)]
    if clicks.empty:
        raise ValueError(f"No clicks in days {first}..{last - 1}: train on days that hold some.")
    user_ids = clicks["user_id"].to_numpy()
    user_x = np.concatenate([snapshots[day, user_ids - 1], user_ids[:, None].astype("float32")], axis=1)
    table = item_inputs(items).to_numpy(dtype="float32")
    position = pd.Series(np.arange(len(items)), index=items["item_id"].to_numpy())
    rows = position.reindex(clicks["item_id"]).to_numpy()
    share = np.bincount(rows, minlength=len(items)) / len(rows)
    with _seeded(seed):
        user_net, item_net = UserTower(dim, user_buckets, recent=recent), ItemTower(dim, item_buckets)
        loss = _fit(user_net, item_net, user_x, table[rows], np.log(share[rows]) if log_q else None,
                    rows, epochs, batch, temperature, lr, seed)  # fmt: skip
    example = feature_frame(snapshots[last - 1], np.unique(user_ids)[:8])
    return Towers(user_net.eval(), item_net.eval(), example, (first, last), loss)


def _fit(user_net: UserTower, item_net: ItemTower, user_x: np.ndarray, item_x: np.ndarray,
         log_q: np.ndarray | None, rows: np.ndarray, epochs: int, batch: int, temperature: float,
         lr: float, seed: int) -> float:  # fmt: skip
    params = [*user_net.parameters(), *item_net.parameters()]
    optimiser = torch.optim.Adam(params, lr=lr)
    order_rng = np.random.default_rng(seed)
    users, items = torch.from_numpy(user_x), torch.from_numpy(item_x)
    correction = torch.from_numpy(log_q.astype("float32")) if log_q is not None else None
    keys = torch.from_numpy(np.array(rows))
    mean = float("nan")
    # Few clicks train in smaller batches (at least 32 a epoch), so that a small world's model gets enough
    # updates; in-batch negatives are fewer then, which the logQ correction does not mind.
    batch = max(64, min(batch, len(rows) // 32))
    for _ in range(epochs):
        order = torch.from_numpy(order_rng.permutation(len(rows)))
        total, steps = 0.0, 0
        for lo in range(0, len(rows) - 1, batch):
            pick = order[lo : lo + batch]
            if len(pick) < 2:
                continue
            logits = user_net(users[pick]) @ item_net(items[pick]).T / temperature
            if correction is not None:
                logits = logits - correction[pick][None, :]
            same = keys[pick][:, None] == keys[pick][None, :]
            logits = logits.masked_fill(same & ~torch.eye(len(pick), dtype=torch.bool), float("-inf"))
            loss = nn.functional.cross_entropy(logits, torch.arange(len(pick)))
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            total, steps = total + loss.item(), steps + 1
        mean = total / max(1, steps)
    return mean


class _seeded:
    """torch's global seed and one thread for the block (determinism on a CPU), restored afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        self.state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        torch.set_num_threads(1)

    def __exit__(self, *_: object) -> None:
        torch.set_num_threads(self.threads)
        torch.random.set_rng_state(self.state)


__all__ = ["PRICE_EDGES", "ItemTower", "Towers", "UserTower", "train_towers"]

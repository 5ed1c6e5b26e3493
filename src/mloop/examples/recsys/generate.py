"""A seeded shop: users with latent tastes, a catalogue that grows daily, a stream of interactions, a taste
shift mid-way, and a simulated user who clicks on what a recommender shows.

The world is small but causal, so that the case's models have something real to learn and to lose:

- **Latent space.** Every user and item is a unit vector in ``dim`` dimensions. The first ``categories``
  axes belong to the categories: an item of category k is axis k plus noise, so an item's category says
  much (not all) about its latent; the remaining axes are style, visible only in which items get clicked.
- **Popularity** is Zipf-like: each item has a log-popularity ``log(1 / rank**zipf)`` (centred) that adds
  to every user's appetite for it, so a few items take a large share of the clicks.
- **Catalogue.** ``initial_share`` of the items exist on day 0; the rest arrive evenly over the days, each
  with a category, a price (log-normal, by category) and ``in_stock`` (5 % are out of stock).
- **Taste shift.** From ``shift_day`` every user's taste is rotated: the category axes are permuted (k to
  k + categories/2, cyclically) and the style axes turned, so a user who liked books now likes garden
  tools, and a model that learned the old tastes recommends the wrong shelves.
- **Interactions** (:meth:`World.interactions`): each day a user opens the shop ``activity`` times on
  average; each visit shows ``shown`` items (half found by a search that follows current taste, half
  popular ones) and the user answers as :meth:`World.respond` says. Events: impression, click, purchase.
- **The simulated user** (:meth:`World.respond`) clicks each shown item with a probability from the
  current taste times the item's latent, its popularity and its position (``1 / log2(position + 2)``),
  and buys one clicked item now and then (cheaper items more often).

>>> world = World.make(users=500, items=1000, days=30, seed=1)
>>> stream = world.interactions()            # user_id, item_id, ts, event, request_id
>>> answer = world.respond(7, stream["item_id"].to_numpy()[:20], day=20, rng=np.random.default_rng(0))
>>> answer.clicks, answer.purchase          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

CATEGORIES = ["books", "music", "games", "kitchen", "garden", "toys", "sports", "fashion"]
EVENTS = ("impression", "click", "purchase")
START = datetime(2026, 5, 1, tzinfo=UTC)
_PRICE = np.array([15.0, 12.0, 45.0, 35.0, 60.0, 25.0, 50.0, 40.0])  # median price per category
_SHARPNESS = 6.0  # how strongly taste . item latent moves the click probability (logit per unit)
_POPULARITY = 0.3  # logit per unit of log-popularity: +1.1 or more for the top 1 % of items
_INTENT = 2.5  # a search shows what the user asked for: its clicks come easier
_BASE = -7.3  # click logit of an item orthogonal to one's taste, at average popularity, at the top


@dataclass(frozen=True)
class Response:
    """What a simulated user did with a list: the ids clicked (in list order, maybe none) and the id of the
    item bought (one of the clicked ones) or None."""

    clicks: np.ndarray
    purchase: int | None


@dataclass(frozen=True)
class World:
    """The users, the items and the seed of everything drawn about them. Build one with :meth:`make`."""

    users: pd.DataFrame  # user_id, signup_day, activity
    items: pd.DataFrame  # item_id, category, price, in_stock, day_added, ts_added
    tastes: np.ndarray  # (users, dim) unit vectors before the shift; row i is user_id i + 1
    latents: np.ndarray  # (items, dim) unit vectors; row j is item_id j + 1
    popularity: np.ndarray  # (items,) centred log-popularity
    days: int
    shift_day: int
    seed: int
    start: datetime = START

    @classmethod
    def make(
        cls,
        users: int = 5000,
        items: int = 10000,
        days: int = 30,
        *,
        shift_day: int | None = None,
        dim: int = 12,
        initial_share: float = 0.7,
        zipf: float = 1.0,
        seed: int = 0,
        start: datetime = START,
    ) -> World:
        """A world of ``users`` and ``items`` over ``days`` days, its tastes shifting on ``shift_day``
        (default: half-way). Sizes are free: the demo's defaults generate in a few seconds."""
        shift = days // 2 if shift_day is None else shift_day
        if not 1 <= shift < days:
            raise ValueError(f"shift_day must be in 1..{days - 1} (inside the {days} days), not {shift}.")
        if dim <= len(CATEGORIES):
            raise ValueError(f"dim must exceed the {len(CATEGORIES)} categories (their axes), not {dim}.")
        rng = np.random.default_rng([seed, 0])
        cats = len(CATEGORIES)
        category = rng.integers(0, cats, items)
        latents = np.eye(dim)[category] + rng.normal(0, 0.35, (items, dim))
        # A user likes one or two categories and has a style of their own.
        first, second = rng.integers(0, cats, users), rng.integers(0, cats, users)
        weight = np.where(rng.random(users) < 0.5, 0.0, rng.uniform(0.3, 0.7, users))
        tastes = np.eye(dim)[first] + weight[:, None] * np.eye(dim)[second] + rng.normal(0, 0.3, (users, dim))
        popularity = -zipf * np.log1p(rng.permutation(items).astype(float))
        initial = round(initial_share * items)
        arriving = items - initial
        added = np.concatenate(
            [np.zeros(initial, int), 1 + np.arange(arriving) * (days - 1) // max(1, arriving)]
        )
        item_frame = pd.DataFrame({
            "item_id": np.arange(1, items + 1, dtype="int64"),
            "category": np.asarray(CATEGORIES)[category],
            "price": (_PRICE[category] * rng.lognormal(0, 0.5, items)).round(2),
            "in_stock": rng.random(items) >= 0.05,
            "day_added": added.astype("int64"),
            "ts_added": [start + timedelta(days=int(d)) for d in added],
        })  # fmt: skip
        user_frame = pd.DataFrame({
            "user_id": np.arange(1, users + 1, dtype="int64"),
            "signup_day": np.zeros(users, dtype="int64"),
            "activity": rng.lognormal(-0.3, 0.6, users).round(4),  # visits a day
        })  # fmt: skip
        return cls(
            user_frame, item_frame, _unit(tastes), _unit(latents), popularity - popularity.mean(), days,
            shift, seed, start,
        )  # fmt: skip

    # ---- the truth -----------------------------------------------------------------------------------

    def taste(self, user_ids: np.ndarray | int, day: int) -> np.ndarray:
        """The users' current tastes on ``day`` (after ``shift_day``: rotated), one unit row per id."""
        rows = self.tastes[_checked(user_ids, len(self.tastes), "user") - 1]
        return rows @ self._rotation().T if day >= self.shift_day else rows

    def _rotation(self) -> np.ndarray:
        cats, dim = len(CATEGORIES), self.tastes.shape[1]
        rotation = np.zeros((dim, dim))
        for k in range(cats):  # category k's fans now like category k + cats/2
            rotation[(k + cats // 2) % cats, k] = 1.0
        style = dim - cats
        angle = np.pi / 2  # and their style turns a quarter
        for a in range(0, style - 1, 2):
            i, j = cats + a, cats + a + 1
            rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = (
                np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle),
            )  # fmt: skip
        if style % 2:
            rotation[dim - 1, dim - 1] = 1.0
        return rotation

    def available(self, day: int) -> np.ndarray:
        """The ids of the items in the catalogue on ``day`` (added on or before it)."""
        return self.items["item_id"].to_numpy()[self.items["day_added"].to_numpy() <= day]

    def new_items(self, day: int) -> pd.DataFrame:
        """The item rows added on ``day`` (none on day 0, whose catalogue is the initial one): what the demo
        embeds with the item tower and adds to the index that day."""
        return (
            self.items[self.items["day_added"] == day].reset_index(drop=True) if day > 0 else self.items[:0]
        )

    def click_probability(self, user_ids: np.ndarray, shown: np.ndarray, day: int,
                          intent: np.ndarray | float = 0.0) -> np.ndarray:  # fmt: skip
        """P(click) of each shown item: ``shown`` is (n, k) item ids for n users, columns in list order;
        ``intent`` (per column) adds to the logit where the user asked for the items (a search)."""
        shown = np.atleast_2d(_checked(shown, len(self.latents), "item"))
        taste = self.taste(user_ids, day)  # (n, dim)
        affinity = np.matmul(self.latents[shown - 1], taste[:, :, None])[:, :, 0]
        logit = _BASE + _SHARPNESS * affinity + _POPULARITY * self.popularity[shown - 1] + intent
        position = 1.0 / np.log2(np.arange(shown.shape[1]) + 2.0)
        return position[None, :] / (1.0 + np.exp(-logit))

    def respond(self, user_id: int, shown: np.ndarray, day: int, rng: np.random.Generator) -> Response:
        """What user ``user_id`` does on ``day`` with the list ``shown`` (item ids, best first).

        >>> world.respond(3, np.array([10, 20, 30]), day=5, rng=np.random.default_rng(0))  # doctest: +SKIP
        Response(clicks=array([20]), purchase=None)
        """
        items = np.asarray(shown, dtype="int64")
        if items.size == 0:
            return Response(np.zeros(0, dtype="int64"), None)
        clicked = rng.random(items.size) < self.click_probability(np.array([user_id]), items[None, :], day)[0]
        clicks = items[clicked]
        purchase = None
        if clicks.size:
            price = self.items["price"].to_numpy()[clicks - 1]
            buy = rng.random(clicks.size) < 0.25 * np.minimum(1.0, 20.0 / price)
            purchase = int(clicks[buy][0]) if buy.any() else None
        return Response(clicks, purchase)

    # ---- the stream ----------------------------------------------------------------------------------

    def interactions(
        self, days: Iterable[int] | None = None, *, shown: int = 10, impressions: bool = True
    ) -> pd.DataFrame:
        """Every event of ``days`` (default: all ``self.days``) in time order: ``user_id, item_id, ts,
        event, request_id`` (``event`` one of impression, click, purchase; one request id per visit).
        Each day is drawn from its own seed, so a day's events are the same whether generated alone or
        with the others (the demo streams them day by day). ``impressions=False`` leaves the impression
        rows out (a tenth of the size: what the feature store needs)."""
        chosen = range(self.days) if days is None else list(days)
        wrong = [d for d in chosen if not 0 <= d < self.days]
        if wrong:
            raise ValueError(f"days {wrong[:5]} are outside the world's days 0..{self.days - 1}.")
        if not chosen:
            raise ValueError(f"days is empty: give at least one day of 0..{self.days - 1}.")
        frames = [self._day(day, shown, impressions) for day in chosen]
        return pd.concat(frames, ignore_index=True).sort_values("ts", ignore_index=True, kind="stable")

    def _day(self, day: int, shown: int, impressions: bool) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, 1, day])
        visits = rng.poisson(self.users["activity"].to_numpy())
        visitors = np.repeat(self.users["user_id"].to_numpy(), visits)
        n = visitors.size
        lists = self._browse(visitors, day, shown, rng)
        intent = np.where(np.arange(shown) < shown // 2, _INTENT, 0.0)  # the first half is a search
        chance = self.click_probability(visitors, lists, day, intent)
        clicked = rng.random(lists.shape) < chance
        price = self.items["price"].to_numpy()[lists - 1]
        bought = clicked & (rng.random(lists.shape) < 0.25 * np.minimum(1.0, 20.0 / price))
        bought &= np.cumsum(bought, axis=1) == 1  # one purchase a visit at most, as in respond()
        seconds = rng.integers(1, 86_400, n)  # never on midnight: a day's features end there
        ts = pd.Timestamp(self.start + timedelta(days=day)) + pd.to_timedelta(seconds, unit="s")
        request = np.array([f"d{day:03d}-{i:06d}" for i in range(n)], dtype=object)
        parts = []
        for event, mask in (("impression", np.ones_like(clicked)), ("click", clicked), ("purchase", bought)):
            if event == "impression" and not impressions:
                continue
            row, col = np.nonzero(mask)
            offset = {"impression": 0, "click": 1, "purchase": 2}[event] + col * 3  # keeps list order in ts
            parts.append(pd.DataFrame({
                "user_id": visitors[row], "item_id": lists[row, col],
                "ts": ts[row] + pd.to_timedelta(offset, unit="ms"), "event": event, "request_id": request[row],
            }))  # fmt: skip
        return pd.concat(parts, ignore_index=True)

    def _browse(self, visitors: np.ndarray, day: int, shown: int, rng: np.random.Generator) -> np.ndarray:
        """The lists the shop showed on its own: half what the user searched for, half popular items; all
        from the day's catalogue."""
        catalogue = self.available(day)
        half = shown // 2
        lists = np.empty((visitors.size, shown), dtype="int64")
        weight = np.exp(self.popularity[catalogue - 1])  # Zipf: the shop shows its bestsellers most
        lists[:, half:] = rng.choice(catalogue, (visitors.size, shown - half), p=weight / weight.sum())
        # The search: of 64 catalogue items (popular ones likelier), the half-list the user's taste ranks
        # best, with Gumbel noise, so that a search is a draw, not an oracle.
        found = np.exp(0.4 * self.popularity[catalogue - 1])  # search results favour bestsellers too
        pool = rng.choice(catalogue, (visitors.size, 64), p=found / found.sum())
        taste = self.taste(visitors, day).astype("float32")
        affinity = (self.latents.astype("float32")[pool - 1] * taste[:, None, :]).sum(axis=2)
        best = np.argpartition(-(8.0 * affinity + rng.gumbel(size=pool.shape)), half, axis=1)[:, :half]
        lists[:, :half] = np.take_along_axis(pool, best, axis=1)
        return lists


def _checked(ids: np.ndarray | int, count: int, what: str) -> np.ndarray:
    """``ids`` as int64 (at least 1-d), or ValueError naming those outside 1..``count``."""
    out = np.atleast_1d(np.asarray(ids, dtype="int64"))
    bad = out[(out < 1) | (out > count)]
    if bad.size:
        raise ValueError(
            f"Unknown {what} ids {sorted(set(bad.tolist()))[:5]}: this world's {what}s are 1..{count}."
        )
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


__all__ = ["CATEGORIES", "EVENTS", "Response", "World"]

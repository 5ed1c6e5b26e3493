"""Ranking metrics: recall@K, NDCG@K, MRR, hit rate@K and catalogue coverage@K.

Two ways in, one vectorised core (numpy, no loop over queries):

- :func:`of_lists`: per-query ranked lists of item ids and the relevant items of each query (a
  collection, or a mapping item -> grade for graded relevance) — what a recommender served and what the
  user then did. A relevant item missing from the list still counts in recall's denominator.
- :func:`of_frame`: a long frame with one row per (query, item), a score and a label (0 = not relevant,
  a positive number = its grade) — a ranker's validation split. Items are ranked by descending score.

>>> m = of_lists([["a", "b", "c"], ["d", "e"]], [{"b"}, {"x"}], k=[2])
>>> m["recall@2"], m["mrr"], m["hit_rate@2"]
(0.5, 0.25, 0.5)

Definitions that other code relies on:

- Gains are linear in the grade (scikit-learn's ``ndcg_score``): DCG@K = sum over the top K of
  ``grade / log2(rank + 1)`` (rank from 1); NDCG@K divides by the DCG of the ideal order of the
  query's relevant items. With 0/1 labels this is the usual binary NDCG.
- ``recall@K``, ``ndcg@K`` and ``mrr`` average over the queries with at least one relevant item (a
  query nobody clicked in says nothing about the order); ``hit_rate@K`` is the share of all queries with
  a relevant item in the top K. ``queries`` and ``queries_with_relevant`` say how many there were.
- ``mrr`` is the mean of 1 / rank of the first relevant item, 0 when none is in the list.
- ``coverage@K``: distinct items in anyone's top K divided by the catalogue size (``catalogue``: a count
  or the item ids; default: the distinct items of the input).
- Equal scores keep the input order (a stable sort); an item repeated in one query's list counts once,
  at its best rank, and the items after it move up.
- A metric without a query to average over is ``None``; nothing is ever NaN.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import SchemaError

DEFAULT_K = (10,)
_ITEM, _QUERY, _GAIN = "__item__", "__query__", "__gain__"


def of_lists(
    ranked: Sequence[Sequence[Any]],
    relevant: Sequence[Collection[Any] | Mapping[Any, float]],
    *,
    k: Iterable[int] = DEFAULT_K,
    catalogue: int | Collection[Any] | None = None,
) -> dict[str, Any]:
    """Metrics of ranked lists (best first, one per query) against each query's relevant items.

    ``relevant[i]`` is a set of item ids (grade 1 each) or ``{item: grade}``; grades <= 0 are not
    relevant.

    >>> of_lists([[3, 1, 2]], [{1: 2.0, 2: 1.0}], k=[1, 3])["ndcg@3"]  # doctest: +ELLIPSIS
    0.66...
    """
    if len(ranked) != len(relevant):
        raise SchemaError(
            f"of_lists got {len(ranked)} ranked lists and {len(relevant)} relevant sets; pass one relevant "
            "set (possibly empty) per ranked list, in the same order."
        )
    lengths = np.fromiter((len(r) for r in ranked), dtype=np.int64, count=len(ranked))
    served = pd.DataFrame({_QUERY: np.repeat(np.arange(len(ranked)), lengths),
                           _ITEM: pd.Series([i for r in ranked for i in r], dtype=object)})  # fmt: skip
    wanted = _relevant_frame(relevant)
    served = served.merge(wanted, on=[_QUERY, _ITEM], how="left", sort=False)
    gains = served[_GAIN].fillna(0.0).to_numpy(dtype=np.float64)
    return _metrics(served[_QUERY].to_numpy(), served[_ITEM], gains, wanted[_QUERY].to_numpy(),
                    wanted[_GAIN].to_numpy(dtype=np.float64), len(ranked), _ks(k), catalogue)  # fmt: skip


def of_frame(
    frame: pd.DataFrame,
    *,
    query: str = "request_id",
    item: str = "item_id",
    score: str = "score",
    label: str = "label",
    k: Iterable[int] = DEFAULT_K,
    catalogue: int | Collection[Any] | None = None,
) -> dict[str, Any]:
    """Metrics of a long frame: rows of one ``query`` ranked by descending ``score``, ``label`` the grade.

    ``item`` may be None (or absent) when coverage is not wanted; every row is then its own item.

    >>> df = pd.DataFrame({"request_id": [1, 1, 2, 2], "item_id": ["a", "b", "a", "c"],
    ...                    "score": [0.9, 0.1, 0.2, 0.8], "label": [0, 1, 0, 1]})
    >>> of_frame(df, k=[1])["recall@1"]
    0.5
    """
    missing = [c for c in (query, score, label) if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"of_frame needs column(s) {missing}; the frame has {list(frame.columns)}. Name the query, "
            "score and label columns: of_frame(df, query=..., score=..., label=...)."
        )
    scores = _finite(frame[score], score)
    grades = _finite(frame[label], label)
    codes, uniques = pd.factorize(frame[query], sort=False)
    if (codes < 0).any():
        raise SchemaError(f"Column {query!r} has missing query ids; every row needs its query.")
    items = frame[item] if item in frame.columns else pd.Series(np.arange(len(frame)))
    # rows of one query together, best score first; stable, so equal scores keep the input order
    order = np.lexsort((-scores, codes))
    q, gains = codes[order], np.maximum(grades[order], 0.0)
    items = items.iloc[order].reset_index(drop=True)
    # an item repeated in a query is relevant once (at its best rank), for the ideal order as well
    ideal = (gains > 0) & ~pd.DataFrame({"q": q, "i": items.to_numpy()}).duplicated().to_numpy()
    return _metrics(q, items, gains, q[ideal], gains[ideal], len(uniques), _ks(k), catalogue)


def metric_key(name: str) -> str:
    """A metric's name as a run's metric key, which cannot hold ``@``: ``"ndcg@10"`` -> ``"ndcg_at_10"``.

    >>> metric_key("recall@100")
    'recall_at_100'
    """
    return name.replace("@", "_at_")


# -- the core ------------------------------------------------------------------------------------------


def _metrics(q: np.ndarray, items: pd.Series, gains: np.ndarray, ideal_q: np.ndarray, ideal: np.ndarray,
             queries: int, ks: list[int], catalogue: int | Collection[Any] | None) -> dict[str, Any]:  # fmt: skip
    """``q``: query codes in 0..queries-1, grouped, each group in rank order; ``gains`` aligned with it.
    ``ideal_q``/``ideal``: every relevant item's query and grade (whether served or not)."""
    # a repeated item counts once, at its first (best) rank; the items after it move up
    keep = ~pd.DataFrame({"q": q, "i": items.to_numpy()}).duplicated().to_numpy()
    q, items, gains = q[keep], items[keep].reset_index(drop=True), gains[keep]
    rank = _ranks(q)
    hit = gains > 0
    relevant = np.bincount(ideal_q[ideal > 0], minlength=queries).astype(np.float64)
    judged = relevant > 0
    n_judged = int(judged.sum())
    discount = 1.0 / np.log2(rank + 2.0)
    ideal_order = np.lexsort((-ideal, ideal_q))
    ideal_sorted_q, ideal_sorted = ideal_q[ideal_order], np.maximum(ideal[ideal_order], 0.0)
    ideal_rank = _ranks(ideal_sorted_q)
    ideal_discount = 1.0 / np.log2(ideal_rank + 2.0)
    first = np.full(queries, np.inf)
    np.minimum.at(first, q[hit], rank[hit].astype(np.float64))
    out: dict[str, Any] = {"queries": queries, "queries_with_relevant": n_judged,
                           "mrr": _mean(np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0), judged)}  # fmt: skip
    catalogue_size = _catalogue_size(catalogue, items)
    for cut in ks:
        top = rank < cut
        found = np.bincount(q[top & hit], minlength=queries)
        dcg = np.bincount(q[top], weights=(gains * discount)[top], minlength=queries)
        itop = ideal_rank < cut
        idcg = np.bincount(
            ideal_sorted_q[itop], weights=(ideal_sorted * ideal_discount)[itop], minlength=queries
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"recall@{cut}"] = _mean(found / relevant, judged)
            out[f"ndcg@{cut}"] = _mean(dcg / idcg, judged & (idcg > 0))
        out[f"hit_rate@{cut}"] = float((found > 0).mean()) if queries else None
        shown = int(items[top].nunique())
        out[f"coverage@{cut}"] = shown / catalogue_size if catalogue_size else None
    return out


def _ranks(q: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal query codes (``q`` grouped)."""
    n = len(q)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    counts = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, counts)


def _mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


def _ks(k: Iterable[int]) -> list[int]:
    ks = [k] if isinstance(k, int) else list(k)
    if not ks or any(not isinstance(c, int | np.integer) or isinstance(c, bool) or c < 1 for c in ks):
        raise SchemaError(f"k must be positive whole numbers, like k=[10] or k=[10, 100]; got {k!r}.")
    return sorted({int(c) for c in ks})


def _catalogue_size(catalogue: int | Collection[Any] | None, items: pd.Series) -> int:
    if catalogue is None:
        return int(items.nunique())
    if isinstance(catalogue, int | np.integer):
        if catalogue < 1:
            raise SchemaError(f"catalogue must be a positive item count or the item ids; got {catalogue}.")
        return int(catalogue)
    return len(set(catalogue))


def _relevant_frame(relevant: Sequence[Collection[Any] | Mapping[Any, float]]) -> pd.DataFrame:
    queries: list[int] = []
    items: list[Any] = []
    grades: list[float] = []
    for i, wanted in enumerate(relevant):
        if isinstance(wanted, str):
            raise SchemaError(
                f"relevant[{i}] is the string {wanted!r}; give a set of item ids such as {{{wanted!r}}}."
            )
        pairs = wanted.items() if isinstance(wanted, Mapping) else ((item, 1.0) for item in wanted)
        for item, grade in pairs:
            queries.append(i)
            items.append(item)
            grades.append(float(grade))
    frame = pd.DataFrame({_QUERY: np.asarray(queries, dtype=np.int64), _ITEM: pd.Series(items, dtype=object),
                          _GAIN: np.asarray(grades, dtype=np.float64)})  # fmt: skip
    if not np.isfinite(frame[_GAIN]).all():
        raise SchemaError("A relevance grade is NaN or infinite; give every relevant item a finite grade.")
    return frame.drop_duplicates([_QUERY, _ITEM], keep="first")


def _finite(values: pd.Series, name: str) -> np.ndarray:
    try:
        array = values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaError(f"Column {name!r} must hold numbers; got {values.dtype} values.") from None
    if not np.isfinite(array).all():
        raise SchemaError(f"Column {name!r} has NaN or infinite values; every row needs a finite number.")
    return array

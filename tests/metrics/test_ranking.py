"""Ranking metrics against naive per-query oracles and scikit-learn's ndcg_score."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from mloop.errors import SchemaError
from mloop.metrics import ranking

# -- naive oracles: one query at a time, straight from the definitions -----------------------------------


def _oracle(lists: list[list[int]], relevant: list[dict[int, float]], k: int) -> dict[str, float | None]:
    recalls, ndcgs, rrs, hits = [], [], [], []
    for served, wanted in zip(lists, relevant, strict=True):
        seen: set[int] = set()
        unique = [i for i in served if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]
        good = {i: g for i, g in wanted.items() if g > 0}
        top = unique[:k]
        hits.append(any(i in good for i in top))
        if not good:
            continue
        recalls.append(sum(i in good for i in top) / len(good))
        dcg = sum(good.get(i, 0.0) / math.log2(r + 2) for r, i in enumerate(top))
        ideal = sorted(good.values(), reverse=True)[:k]
        ndcgs.append(dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)))
        first = next((r for r, i in enumerate(unique) if i in good), None)
        rrs.append(0.0 if first is None else 1 / (first + 1))
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {"recall": mean(recalls), "ndcg": mean(ndcgs), "mrr": mean(rrs),
            "hit_rate": sum(hits) / len(hits) if hits else None}  # fmt: skip


_items = st.integers(0, 15)
_query = st.tuples(st.lists(_items, max_size=8), st.dictionaries(_items, st.sampled_from([0.0, 1.0, 2.0, 3.0]),
                                                                 max_size=5))  # fmt: skip


def _close(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))


@settings(max_examples=25, deadline=None)
@given(st.lists(_query, min_size=1, max_size=12), st.integers(1, 6))
def test_lists_match_the_oracle(queries: list[tuple[list[int], dict[int, float]]], k: int) -> None:
    lists = [q[0] for q in queries]
    relevant = [q[1] for q in queries]
    got = ranking.of_lists(lists, relevant, k=[k], catalogue=16)
    want = _oracle(lists, relevant, k)
    for name in ("recall", "ndcg", "hit_rate"):
        assert _close(got[f"{name}@{k}"], want[name]), name
    assert _close(got["mrr"], want["mrr"])
    shown = {i for served in lists for i in list(dict.fromkeys(served))[:k]}
    assert got[f"coverage@{k}"] == len(shown) / 16


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_frame_ndcg_matches_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    queries, per = int(rng.integers(1, 8)), int(rng.integers(2, 9))
    labels = rng.integers(0, 4, size=(queries, per)).astype(float)
    labels[:, 0] = np.maximum(labels[:, 0], 1)  # sklearn averages queries without relevance as 0: keep one
    scores = rng.permutation(queries * per).reshape(queries, per).astype(float)  # no ties
    frame = pd.DataFrame({"request_id": np.repeat(np.arange(queries), per), "item_id": np.tile(np.arange(per), queries),
                          "score": scores.ravel(), "label": labels.ravel()})  # fmt: skip
    got = ranking.of_frame(frame.sample(frac=1.0, random_state=seed % 1000), k=[k])
    assert got[f"ndcg@{k}"] == pytest.approx(ndcg_score(labels, scores, k=k))


def test_frame_and_lists_agree() -> None:
    frame = pd.DataFrame({"request_id": ["q1"] * 3 + ["q2"] * 3, "item_id": ["a", "b", "c", "a", "d", "e"],
                          "score": [0.2, 0.9, 0.5, 0.1, 0.3, 0.2], "label": [1, 0, 2, 0, 0, 1]})  # fmt: skip
    lists = [["b", "c", "a"], ["d", "e", "a"]]
    relevant = [{"a": 1, "c": 2}, {"e": 1}]
    assert ranking.of_frame(frame, k=[1, 2]) == ranking.of_lists(lists, relevant, k=[1, 2])


def test_known_values_and_undefined_metrics() -> None:
    m = ranking.of_lists([["a", "b"], ["c"]], [{"b"}, set()], k=[1, 2])
    assert m["recall@1"] == 0.0 and m["recall@2"] == 1.0 and m["mrr"] == 0.5
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))
    assert m["hit_rate@2"] == 0.5 and m["queries_with_relevant"] == 1
    nobody = ranking.of_lists([["a"]], [set()], k=[5])
    assert nobody["recall@5"] is None and nobody["mrr"] is None and nobody["hit_rate@5"] == 0.0
    assert ranking.of_lists([], [], k=[5])["hit_rate@5"] is None


def test_a_relevant_item_left_out_of_the_list_lowers_recall() -> None:
    assert ranking.of_lists([["a", "b"]], [{"a", "z"}], k=[10])["recall@10"] == 0.5


def test_bad_input_is_refused_with_the_fix() -> None:
    with pytest.raises(SchemaError, match="one relevant set"):
        ranking.of_lists([["a"]], [], k=[1])
    with pytest.raises(SchemaError, match="positive whole numbers"):
        ranking.of_lists([["a"]], [{"a"}], k=[0])
    with pytest.raises(SchemaError, match="query, score and label"):
        ranking.of_frame(pd.DataFrame({"q": [1]}))
    with pytest.raises(SchemaError, match="finite"):
        ranking.of_frame(pd.DataFrame({"request_id": [1], "score": [np.nan], "label": [1]}))
    with pytest.raises(SchemaError, match="string"):
        ranking.of_lists([["a"]], ["a"])  # type: ignore[list-item]


def test_metric_key_is_a_valid_run_metric_name() -> None:
    assert ranking.metric_key("ndcg@10") == "ndcg_at_10"


def test_doctests() -> None:
    assert doctest.testmod(ranking).failed == 0

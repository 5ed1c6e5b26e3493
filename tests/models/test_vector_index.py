"""The vector index: approximate search keeps recall against exact search, filters keep it too, adds and
replacements are found, save/load round-trips, and bad input gets a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mloop.errors import IntegrityError, MalformedInput, MloopError
from mloop.models import index_files, vector_index
from mloop.models.vector_index import SCAN_BELOW, VectorIndex

pytest.importorskip("faiss")

DIM = 16


def clustered(rows: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(rows // 50, 2), dim))
    x = centers[rng.integers(0, len(centers), rows)] + 0.5 * rng.normal(size=(rows, dim))
    return x.astype(np.float32)


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    return float(
        np.mean(
            [
                len(set(f.tolist()) & set(t.tolist())) / max(len(t), 1)
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )


@pytest.fixture(scope="module")
def items() -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(1)
    vectors = clustered(1500, seed=1)
    attributes = pd.DataFrame({"category": rng.choice(["books", "music", "toys"], len(vectors), p=[0.5, 0.47, 0.03]),
                               "in_stock": rng.random(len(vectors)) < 0.8})  # fmt: skip
    return vectors, attributes


@pytest.fixture(scope="module")
def index(items: tuple[np.ndarray, pd.DataFrame]) -> VectorIndex:
    vectors, attributes = items
    return VectorIndex.build(np.arange(len(vectors)) * 10, vectors, attributes, source=("tower", 1))


def _answers_as_exact_search(rows: int, dim: int, k: int, metric: str, seed: int) -> None:
    vectors = clustered(rows, dim, seed) + 0.01  # no all-zero row for cosine
    # enough queries that their mean is a recall, not a coin: with 5, one missed top-1 at k=1 is 0.8
    queries = np.random.default_rng(seed + 1).normal(size=(50, dim))
    index = VectorIndex.build([f"i{n}" for n in range(rows)], vectors, metric=metric, source=("tower", 1))
    found, truth = index.search(queries, k), index.search(queries, k, exact=True)
    assert all(len(h) == min(k, rows) for h in found)

    # tie-aware: a hit scoring as high as exact search's k-th best is a right answer (in one dimension,
    # cosine makes every positive vector the same point), within float32's precision: faiss computes an
    # l2 distance as |q|^2 + |v|^2 - 2 q.v, numpy here as it is written
    def right_share(f: Any, t: Any) -> float:
        floor = t.scores.min()
        return float(np.sum(f.scores >= floor - 1e-4 * max(1.0, abs(float(floor)))) / len(t))

    right = [right_share(f, t) for f, t in zip(found, truth, strict=True)]
    assert np.mean(right) >= 0.95
    for hits in found:
        assert list(hits.scores) == sorted(hits.scores, reverse=True)
        assert isinstance(hits.ids[0], str)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 300), dim=st.integers(1, 24), k=st.integers(1, 60),
       metric=st.sampled_from(["ip", "cosine", "l2"]), seed=st.integers(0, 10_000))  # fmt: skip
def test_a_small_index_answers_what_exact_search_finds(
    rows: int, dim: int, k: int, metric: str, seed: int
) -> None:
    _answers_as_exact_search(rows, dim, k, metric, seed)


@settings(max_examples=6, deadline=None)
@example(rows=SCAN_BELOW + 1, dim=2, k=26, metric="ip", seed=0)  # the graph found 0.946 of it: now scanned
@given(rows=st.integers(SCAN_BELOW + 1, SCAN_BELOW + 600), dim=st.integers(2, 24), k=st.integers(1, 60),
       metric=st.sampled_from(["ip", "cosine", "l2"]), seed=st.integers(0, 10_000))  # fmt: skip
def test_the_graph_recalls_what_exact_search_finds_on_a_larger_index(
    rows: int, dim: int, k: int, metric: str, seed: int
) -> None:
    _answers_as_exact_search(rows, dim, k, metric, seed)


def test_exact_search_is_brute_force_for_every_metric() -> None:
    vectors, query = clustered(50), np.random.default_rng(3).normal(size=DIM).astype(np.float32)
    expected = {
        "ip": vectors @ query,
        "cosine": (vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
        @ (query / np.linalg.norm(query)),
        "l2": -((vectors - query) ** 2).sum(axis=1),
    }
    for metric, scores in expected.items():
        for library in ("faiss", "exact"):
            hits = VectorIndex.build(np.arange(50), vectors, metric=metric, library=library).search(query, 5)[
                0
            ]
            assert hits.ids.tolist() == np.argsort(-scores)[:5].tolist(), (metric, library)
            np.testing.assert_allclose(hits.scores, np.sort(scores)[::-1][:5], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("walk", [True, False], ids=["graph-walk", "exact-over-matches"])
@pytest.mark.parametrize(
    "where",
    [{"category": "books"}, {"category": "books", "in_stock": True}, {"category": ["music", "toys"]},
     {"category": "toys", "in_stock": False}],  # the last matches ~1%
)  # fmt: skip
def test_filters_keep_recall_and_only_answer_matching_items(
    index: VectorIndex, items: tuple[np.ndarray, pd.DataFrame], where: dict[str, object], walk: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if walk:  # this small index would answer filters by exact search: make it walk the graph
        monkeypatch.setattr(vector_index, "EXACT_ROWS", 0)
        monkeypatch.setattr(vector_index, "EXACT_SHARE", 0.0)
        monkeypatch.setattr(vector_index, "SCAN_BELOW", 0)
    _, attributes = items
    queries = np.random.default_rng(4).normal(size=(20, DIM))
    found, truth = index.search(queries, 50, where=where), index.search(queries, 50, where=where, exact=True)
    assert recall([h.ids for h in found], [h.ids for h in truth]) >= 0.95
    matching = attributes.index[
        np.all([attributes[c].isin(v if isinstance(v, list) else [v]) for c, v in where.items()], axis=0)
    ]
    allowed = set((matching * 10).tolist())
    assert all(set(h.ids.tolist()) <= allowed for h in found)
    assert all(len(h) == min(50, len(allowed)) for h in found)


def test_k_above_the_size_answers_everything_and_an_empty_filter_answers_nothing(index: VectorIndex) -> None:
    small = VectorIndex.build(["a", "b", "c"], clustered(3), source=("tower", 1))
    assert sorted(small.search(np.ones(DIM), 10)[0].ids.tolist()) == ["a", "b", "c"]
    hits = index.search(np.ones((2, DIM)), 10, where={"category": "garden"})
    assert [len(h) for h in hits] == [0, 0] and hits[0].ids.dtype == np.int64


def test_added_items_are_found_and_an_added_id_replaces_the_old_one(
    items: tuple[np.ndarray, pd.DataFrame],
) -> None:
    vectors, attributes = items
    vectors, attributes = vectors[:500], attributes[:500]
    index = VectorIndex.build(np.arange(len(vectors)), vectors, attributes)
    target = np.full(DIM, 5.0, dtype=np.float32)
    new = pd.DataFrame({"category": ["books", "books"], "in_stock": [True, True]})
    index.add([100_000, 7], np.stack([target, target * 0.99]), new)
    assert len(index) == len(vectors) + 1
    assert index.search(target, 2)[0].ids.tolist() == [100_000, 7]
    old = vectors[7]  # item 7's old vector no longer answers for it
    assert 7 not in index.search(old, 5, exact=True)[0].ids.tolist() or np.allclose(old, target * 0.99)
    assert index.search(target, 2, where={"category": "books"})[0].ids.tolist() == [100_000, 7]
    index.add([100_001], target[None, :] * 0.5)  # no attributes: matches no filter, found without one
    assert 100_001 in index.search(target, 3)[0].ids.tolist()
    assert 100_001 not in index.search(target, 3, where={"category": "books"})[0].ids.tolist()


def test_save_load_round_trip(tmp_path: Path, index: VectorIndex) -> None:
    queries = np.random.default_rng(5).normal(size=(5, DIM))
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")  # saving over an index replaces it whole
    loaded = VectorIndex.load(tmp_path / "idx")
    assert (loaded.dim, loaded.metric, loaded.library, loaded.source, len(loaded)) == (
        DIM,
        "ip",
        "faiss",
        ("tower", 1),
        len(index),
    )
    for a, b in zip(
        index.search(queries, 20, where={"in_stock": True}),
        loaded.search(queries, 20, where={"in_stock": True}),
        strict=True,
    ):
        assert a.ids.tolist() == b.ids.tolist()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["count"] == len(index) and manifest["source"] == {"model": "tower", "version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary folder left behind
    strings = VectorIndex.build(["x", "y"], clustered(2), library="exact")
    strings.save(tmp_path / "s")
    assert (
        VectorIndex.load(tmp_path / "s").search(np.ones(DIM), 2)[0].ids.tolist()
        == strings.search(np.ones(DIM), 2)[0].ids.tolist()
    )


def test_a_corrupted_file_is_refused_with_what_to_do(tmp_path: Path, index: VectorIndex) -> None:
    index.save(tmp_path / "idx")
    with open(tmp_path / "idx" / "vectors.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01")
    with pytest.raises(IntegrityError, match=r"vectors\.npy does not match its checksum.*rebuild"):
        VectorIndex.load(tmp_path / "idx")


def test_bad_input_is_refused_clearly(index: VectorIndex) -> None:
    with pytest.raises(MalformedInput, match=r"have 8 dimensions.*holds 16-d"):
        index.search(np.ones(8), 5)
    with pytest.raises(MalformedInput, match=r"have 8 dimensions.*holds 16-d"):
        index.add([1], np.ones((1, 8)))
    nan = np.ones((2, DIM))
    nan[1, 3] = np.nan
    with pytest.raises(MalformedInput, match="NaN"):
        index.search(nan, 5)
    with pytest.raises(MalformedInput, match="NaN"):
        index.add([1, 2], nan)
    with pytest.raises(MalformedInput, match="ids are ints; got str ids"):
        index.add(["a"], np.ones((1, DIM)))
    with pytest.raises(MalformedInput, match="unique"):
        VectorIndex.build([1, 1], np.ones((2, DIM)))
    with pytest.raises(MalformedInput, match="attribute 'color'.*category, in_stock"):
        index.search(np.ones(DIM), 5, where={"color": "red"})
    with pytest.raises(MalformedInput, match="positive"):
        index.search(np.ones(DIM), 0)
    with pytest.raises(MloopError, match="metric 'dot' is not one of: ip, cosine, l2"):
        VectorIndex.build([1], np.ones((1, DIM)), metric="dot")


def test_a_save_that_fails_midway_leaves_the_previous_index_whole(
    tmp_path: Path, index: VectorIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = VectorIndex.build(["a"], np.ones((1, DIM)), library="exact")
    small.save(tmp_path / "idx")
    written: list[str] = []

    def failing(path: Path, data: bytes) -> str:
        written.append(path.name)
        if len(written) == 3:
            raise OSError("disk full")
        return real(path, data)

    real = index_files._write
    monkeypatch.setattr(index_files, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "idx")
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]
    assert VectorIndex.load(tmp_path / "idx").ids.tolist() == ["a"]

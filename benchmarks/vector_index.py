"""Benchmark: approximate nearest-neighbour search over item embeddings, faiss HNSW against usearch HNSW and
the exact floor (numpy brute force), in one run.

``--items`` normalized ``--dim``-d vectors (100k x 64 by default; clustered like trained embeddings, or
plain gaussian with ``--data gaussian``), inner product. For each side: build time, incremental add rate
(``--add`` more items into the built index), memory, recall@``--k`` against exact search, queries/s for
one query at a time and for a batch of ``--queries``. The last part times mloop's
:class:`mloop.models.vector_index.VectorIndex` (faiss underneath) with and without an attribute filter.

The issue's goal: recall@100 >= 0.95 at >= 10x exact search's queries/s.

    PYTHONPATH=src .venv/bin/python benchmarks/vector_index.py [--items 100000] [--dim 64] [--data clustered]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mloop.models.vector_index import VectorIndex


@dataclass
class Side:
    name: str
    build_s: float
    add_rate: float
    memory_mb: float
    recall: float
    single_qps: float
    batch_qps: float


def data(items: int, dim: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.normal(size=(items, dim))
    else:  # tastes: a few hundred clusters with spread, like trained item embeddings
        centers = rng.normal(size=(max(items // 200, 1), dim))
        x = centers[rng.integers(0, len(centers), items)] + 0.6 * rng.normal(size=(items, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ base.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def rate(fn: Callable[[], object], count: int, repeat: int = 1) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return count * repeat / (time.perf_counter() - started)


def single(search: Callable[[np.ndarray], object], queries: np.ndarray, n: int) -> float:
    few = queries[:n]
    return rate(lambda: [search(q[None, :]) for q in few], n)


def run_exact(base: np.ndarray, extra: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray) -> Side:
    started = time.perf_counter()
    matrix = base.copy()
    build = time.perf_counter() - started
    started = time.perf_counter()
    matrix = np.concatenate([matrix, extra])
    add_rate = len(extra) / (time.perf_counter() - started)
    found = exact_topk(matrix[: len(base)], queries, k)
    return Side("exact (numpy)", build, add_rate, matrix.nbytes / 1e6, recall(found, truth),
                single(lambda q: exact_topk(base, q, k), queries, 100),
                rate(lambda: exact_topk(base, queries, k), len(queries)))  # fmt: skip


def run_faiss(base: np.ndarray, extra: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray,
              m: int, ef_build: int, ef: int) -> Side:  # fmt: skip
    import faiss

    index = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_build
    index.hnsw.efSearch = ef
    started = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - started
    found = index.search(queries, k)[1]
    memory = len(faiss.serialize_index(index)) / 1e6
    side = Side(f"faiss HNSW M={m} ef={ef}", build, 0.0, memory, recall(found, truth),
                single(lambda q: index.search(q, k), queries, 300),
                rate(lambda: index.search(queries, k), len(queries)))  # fmt: skip
    started = time.perf_counter()
    index.add(extra)
    side.add_rate = len(extra) / (time.perf_counter() - started)
    return side


def run_usearch(base: np.ndarray, extra: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray,
                m: int, ef_build: int, ef: int) -> Side:  # fmt: skip
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=m, expansion_add=ef_build,
                  expansion_search=ef)  # fmt: skip
    started = time.perf_counter()
    index.add(np.arange(len(base)), base)
    build = time.perf_counter() - started
    found = index.search(queries, k).keys
    side = Side(f"usearch HNSW M={m} ef={ef}", build, 0.0, index.memory_usage / 1e6, recall(found, truth),
                single(lambda q: index.search(q, k), queries, 300),
                rate(lambda: index.search(queries, k), len(queries)))  # fmt: skip
    started = time.perf_counter()
    index.add(np.arange(len(base), len(base) + len(extra)), extra)
    side.add_rate = len(extra) / (time.perf_counter() - started)
    return side


def show(sides: list[Side], floor: Side) -> None:
    print(f"  {'side':26} {'build s':>8} {'add/s':>10} {'MB':>7} {'recall':>7} {'1-query/s':>10} "
          f"{'batch q/s':>10} {'x exact (1 / batch)':>20}")  # fmt: skip
    for s in sides:
        ratio = f"{s.single_qps / floor.single_qps:5.1f} / {s.batch_qps / floor.batch_qps:5.1f}"
        print(f"  {s.name:26} {s.build_s:8.2f} {s.add_rate:10,.0f} {s.memory_mb:7.1f} {s.recall:7.3f} "
              f"{s.single_qps:10,.0f} {s.batch_qps:10,.0f} {ratio:>20}", flush=True)  # fmt: skip


def run_mloop(base: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    attributes = pd.DataFrame({"category": rng.choice(["books", "music", "toys", "garden"], len(base)),
                               "in_stock": rng.random(len(base)) < 0.9})  # fmt: skip
    started = time.perf_counter()
    index = VectorIndex.build(np.arange(len(base)), base, attributes, source=("bench", 1))
    build = time.perf_counter() - started
    found = np.stack([h.ids for h in index.search(queries, k)])
    print(f"  mloop VectorIndex (faiss): build {build:.2f} s, recall@{k} {recall(found, truth):.3f}, "
          f"batch {rate(lambda: index.search(queries, k), len(queries)):,.0f} q/s", flush=True)  # fmt: skip
    for where in ({"category": "books", "in_stock": True}, {"category": "books", "in_stock": False}):
        mask = np.ones(len(base), dtype=bool)
        for column, value in where.items():
            mask &= (attributes[column] == value).to_numpy()
        subset = np.flatnonzero(mask)
        truth_f = subset[exact_topk(base[subset], queries, min(k, len(subset)))]
        found = [h.ids for h in index.search(queries, k, where=where)]
        qps = rate(lambda w=where: index.search(queries, k, where=w), len(queries))  # type: ignore[misc]
        print(f"    where={where} ({mask.mean():.1%} of items): recall@{k} {recall(found, truth_f):.3f}, "
              f"batch {qps:,.0f} q/s", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--data", choices=["clustered", "gaussian"], default="clustered")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--add", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--m", type=int, default=32, help="HNSW links per node")
    parser.add_argument("--ef-build", type=int, default=100)
    parser.add_argument("--ef", type=int, default=128, help="HNSW search breadth (>= k)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    everything = data(args.items + args.add + args.queries, args.dim, args.data, args.seed)
    base, extra = everything[: args.items], everything[args.items : args.items + args.add]
    queries = everything[args.items + args.add :]
    print(f"{args.items:,} items x {args.dim}-d ({args.data}), {args.queries:,} queries, k={args.k}, "
          f"inner product", flush=True)  # fmt: skip
    truth = exact_topk(base, queries, args.k)
    floor = run_exact(base, extra, queries, args.k, truth)
    sides = [floor]
    for runner in (run_faiss, run_usearch):
        try:
            sides.append(runner(base, extra, queries, args.k, truth, args.m, args.ef_build, args.ef))
        except ImportError as exc:
            print(f"  ({runner.__name__[4:]} not installed: {exc})")
    show(sides, floor)
    run_mloop(base, queries, args.k, truth, args.seed)


if __name__ == "__main__":
    main()

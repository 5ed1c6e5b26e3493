"""Benchmark: inner-product search in few dimensions, where mloop's vector index scans (``IP_SCAN_DIMS``).

For each number of dimensions and rows: the mean and worst recall (tie-aware, over ``--seeds`` clustered
data sets of un-normalized vectors, ``--queries`` random queries each, k drawn in 1..60) of faiss's HNSW
with inner product (mloop's graph settings) and of the usual reduction of inner product to L2 (one added
coordinate, sqrt(M^2 - |v|^2)); then the time of one query by the graph and by a numpy scan. Recall
against the exact answer is the figure; the scan is exact by construction.

    PYTHONPATH=src .venv/bin/python benchmarks/vector_index_dims.py [--rows 4500 30000] [--dims 2 3 4 6 16 32]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from mloop.models.ann import EF_BUILD, EF_SEARCH, LINKS


def clustered(rows: int, dim: int, seed: int) -> np.ndarray:
    """Clusters of 50 with spread, un-normalized (the test suite's property-test data)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(rows // 50, 2), dim))
    x = centers[rng.integers(0, len(centers), rows)] + 0.5 * rng.normal(size=(rows, dim))
    return (x + 0.01).astype(np.float32)


def graph(vectors: np.ndarray, metric: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], LINKS, metric)
    index.hnsw.efConstruction = EF_BUILD
    index.add(vectors)
    return index


def recall(vectors: np.ndarray, queries: np.ndarray, k: int, transform: bool) -> float:
    """Share of the found items scoring at least exact search's k-th best (ties count as right)."""
    scores = queries @ vectors.T
    floor = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, k))
    if transform:
        norms = (vectors * vectors).sum(axis=1)
        lift = np.sqrt(np.maximum(norms.max() - norms, 0))[:, None]
        index = graph(np.hstack([vectors, lift]).astype(np.float32), faiss.METRIC_L2)
        _, found = index.search(
            np.hstack([queries, np.zeros((len(queries), 1), np.float32)]), k, params=params
        )
    else:
        _, found = graph(vectors, faiss.METRIC_INNER_PRODUCT).search(queries, k, params=params)
    got = np.take_along_axis(scores, found, axis=1)
    return float(np.mean(got >= floor[:, None] - 1e-4 * np.maximum(1.0, np.abs(floor[:, None]))))


def per_query_ms(fn: object, repeat: int = 200) -> float:
    fn()  # type: ignore[operator]
    started = time.perf_counter()
    for _ in range(repeat):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[4_500, 30_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3, 4, 6, 16, 32])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(11)
    print("rows    dims  ip graph mean/worst  ip->L2 mean/worst  graph ms  scan ms (1 query, k 10)")
    for rows in args.rows:
        for dim in args.dims:
            sides: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.seeds):
                k, seed = int(rng.integers(1, 61)), int(rng.integers(0, 10_000))
                vectors = clustered(rows, dim, seed)
                queries = np.random.default_rng(seed + 1).normal(size=(args.queries, dim)).astype(np.float32)
                for transform, found in sides.items():
                    found.append(recall(vectors, queries, k, transform))
            vectors = clustered(rows, dim, 0)
            one = np.random.default_rng(1).normal(size=(1, dim)).astype(np.float32)
            index, params = (
                graph(vectors, faiss.METRIC_INNER_PRODUCT),
                faiss.SearchParametersHNSW(efSearch=EF_SEARCH),
            )
            walk = per_query_ms(lambda: index.search(one, 10, params=params))  # noqa: B023
            scan = per_query_ms(lambda: np.argpartition(-(one @ vectors.T), 9, axis=1)[:, :10])  # noqa: B023
            ip, lifted = sides[False], sides[True]
            print(f"{rows:<7} {dim:<5} {np.mean(ip):.3f} / {min(ip):.3f}       {np.mean(lifted):.3f} / "
                  f"{min(lifted):.3f}      {walk:.3f}     {scan:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

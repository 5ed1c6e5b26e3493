"""Benchmark: offline ranking metrics of a long frame, mloop against scikit-learn's ``ndcg_score``.

``--queries`` queries (100,000 by default) of ``--items`` ranked items each (20), graded labels (0, or 1-2
on one item in ten), random scores, distinct items per query. mloop's
:func:`mloop.metrics.ranking.of_frame` computes NDCG, recall and hit rate at 10 and 20, MRR and coverage
in one call on the long frame (a ranker's validation split as it comes); scikit-learn's ``ndcg_score``
computes NDCG@10 alone on the dense (queries x items) matrices, which it needs built first (not timed),
on the queries with a relevant item (those mloop averages over). Both NDCG@10 values are printed: they
must agree.

    PYTHONPATH=src .venv/bin/python benchmarks/ranking_metrics.py [--queries 100000] [--items 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.metrics import ndcg_score

from mloop.metrics import ranking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    q, n = args.queries, args.items
    labels = (rng.random((q, n)) < 0.1) * rng.integers(1, 3, (q, n)).astype(float)
    scores = rng.random((q, n))
    frame = pd.DataFrame({"request_id": np.repeat(np.arange(q), n), "item_id": (np.arange(q * n) * 7919) % 50_000,
                          "score": scores.ravel(), "label": labels.ravel()})  # fmt: skip
    started = time.perf_counter()
    ours = ranking.of_frame(frame, k=[10, 20])
    mloop_s = time.perf_counter() - started
    judged = labels.sum(axis=1) > 0
    started = time.perf_counter()
    theirs = ndcg_score(labels[judged], scores[judged], k=10)
    sklearn_s = time.perf_counter() - started
    print(f"{q * n:,} rows, {q:,} queries")
    print(f"mloop of_frame (ndcg, recall, hit rate @10 and @20, mrr, coverage): {mloop_s:.2f} s")
    print(f"scikit-learn ndcg_score (ndcg@10 only):                         {sklearn_s:.2f} s")
    print(f"ratio (scikit-learn / mloop): {sklearn_s / mloop_s:.1f}x")
    print(f"ndcg@10: mloop {ours['ndcg@10']:.6f}, scikit-learn {theirs:.6f}")


if __name__ == "__main__":
    main()

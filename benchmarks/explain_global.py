"""Benchmark: what global importance and attribution drift cost, and how far apart their signal and noise are.

1. ``cost``: a LightGBM classifier of 100 trees on 20 features; the card's importance on a 2,000-row
   holdout sample (what a pipeline adds to registration) and one monitoring window's attribution drift
   (500 rows explained), median of --repeat runs, in milliseconds.
2. ``signal``: the model of tests/monitoring/test_attribution_drift.py (``a`` decides only above 2);
   the total variation distance of the shares of 500 explained rows against a 1,500-row holdout on
   --draws random splits of the same distribution (noise) and on --draws windows where 8% of the rows'
   ``a`` moved just past 2 (moved reliance), with the PSI of ``a`` that feature drift sees there.

    .venv/bin/python benchmarks/explain_global.py            # both, about 15 seconds
    .venv/bin/python benchmarks/explain_global.py cost --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.monitoring's data generator

from mloop.explain.importance import on_holdout, total_variation
from mloop.metrics.profile import build_profile
from mloop.monitoring.suite import compare


def cost(repeat: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20_000, 20)), columns=[f"f{i}" for i in range(20)])
    logit = frame.iloc[:, :5].sum(axis=1) + 0.5 * frame["f5"] * frame["f6"]
    labels = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=100, verbose=-1).fit(frame, labels)
    for what, rows in (
        ("card importance, 500 holdout rows (SAMPLE_ROWS)", 500),
        ("one window's attribution drift, 500 rows", 500),
    ):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            on_holdout("lightgbm", model, frame, rows=rows)
            times.append(time.perf_counter() - started)
        print(f"{what}: {1000 * statistics.median(times):.1f} ms (median of {repeat})")


def signal(draws: int) -> None:
    from tests.monitoring.test_attribution_drift import draw, reliance_moved

    rng = np.random.default_rng(3)
    train, y = draw(3_000, rng)
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=7, n_jobs=1, verbose=-1).fit(train, y)
    profile = build_profile(train, seed=0)
    reference = on_holdout("lightgbm", model, draw(1_500, rng)[0])["shares"]
    noise = [total_variation(reference, on_holdout("lightgbm", model, draw(1_500, rng)[0], rows=500)["shares"])
             for _ in range(draws)]  # fmt: skip
    windows = [reliance_moved(draw(1_500, rng)[0], rng) for _ in range(draws)]
    moved = [
        total_variation(reference, on_holdout("lightgbm", model, w, rows=500)["shares"]) for w in windows
    ]
    psi = [compare(profile, w).column("a").statistic or 0.0 for w in windows]
    print(f"reference shares: { {k: round(v, 3) for k, v in reference.items()} }")
    print(f"random splits ({draws}): distance median {statistics.median(noise):.3f}, max {max(noise):.3f}")
    print(f"moved reliance ({draws}): distance min {min(moved):.3f}, median {statistics.median(moved):.3f}; "
          f"PSI of a max {max(psi):.3f} (feature drift flags 0.1)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", choices=("cost", "signal"))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    if args.part in (None, "cost"):
        cost(args.repeat)
    if args.part in (None, "signal"):
        signal(args.draws)


if __name__ == "__main__":
    main()

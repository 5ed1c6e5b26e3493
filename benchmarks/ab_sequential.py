"""Benchmark: the A/B gate's sequential test (mSPRT, :mod:`mloop.metrics.sequential`) against a
fixed-horizon test peeked at every look, on simulated click streams.

- **A/A** (CTR 0.10 in both arms, ``--n`` outcomes per arm): the share of experiments that ever declare a
  difference when one looks every ``--every`` outcomes: the mSPRT (its always-valid p-value is the
  minimum over every arrival, so it covers any looking schedule) against the two-sample z-test run at
  every look;
- **power** on CTR 0.10 against 0.13 (a 30% lift, ``mde=0.3``): the share that ship within each number of
  outcomes per arm, the median outcomes per arm at which the test first rejects, and the fixed-horizon
  plan for the same lift (power 0.8).

    PYTHONPATH=src .venv/bin/python benchmarks/ab_sequential.py [--experiments 1000] [--n 2000] [--every 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import norm

from mloop.metrics.sequential import msprt, sample_size

ALPHA = 0.05


def _stream(
    rng: np.random.Generator, n: int, control: float, treatment: float
) -> tuple[np.ndarray, np.ndarray]:
    treated = rng.random(2 * n) < 0.5
    return treated, (rng.random(2 * n) < np.where(treated, treatment, control)).astype(np.float64)


def _peeked(treated: np.ndarray, clicks: np.ndarray, every: int) -> bool:
    looks = np.arange(every, len(clicks) + 1, every) - 1
    n = [np.maximum(np.cumsum(~treated)[looks], 1), np.maximum(np.cumsum(treated)[looks], 1)]
    p = [
        np.cumsum(np.where(~treated, clicks, 0))[looks] / n[0],
        np.cumsum(np.where(treated, clicks, 0))[looks] / n[1],
    ]
    se = np.sqrt(p[0] * (1 - p[0]) / n[0] + p[1] * (1 - p[1]) / n[1])
    return bool(np.any(2 * norm.sf(np.abs(p[1] - p[0]) / np.where(se > 0, se, np.inf)) <= ALPHA))


def _first_rejection(treated: np.ndarray, clicks: np.ndarray, step: int) -> int | None:
    """Outcomes per arm at the first look (every ``step`` outcomes) whose always-valid p-value is <= alpha."""
    for end in range(step, len(clicks) + 1, step):
        if msprt(treated[:end], clicks[:end], binary=True, alpha=ALPHA, mde=0.3).p_value <= ALPHA:
            return end // 2
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--n", type=int, default=2000, help="outcomes per arm in the A/A runs")
    parser.add_argument("--every", type=int, default=100, help="outcomes between two looks")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    sequential = peeked = 0
    for _ in range(args.experiments):
        treated, clicks = _stream(rng, args.n, 0.10, 0.10)
        sequential += msprt(treated, clicks, binary=True, alpha=ALPHA, mde=0.3).p_value <= ALPHA
        peeked += _peeked(treated, clicks, args.every)
    looks = 2 * args.n // args.every
    print(
        f"A/A, CTR 0.10, {args.n} outcomes per arm, {looks} looks, alpha {ALPHA}, {args.experiments} experiments:"
    )
    print(
        f"  false positives: mSPRT {sequential / args.experiments:.3f}, peeked z-test {peeked / args.experiments:.3f}"
    )
    plan = sample_size(0.10, 0.30, alpha=ALPHA, power=0.8, binary=True)
    print(f"CTR 0.10 vs 0.13 (mde 0.3): fixed-horizon plan {plan} per arm at power 0.8")
    runs = [_stream(rng, 8000, 0.10, 0.13) for _ in range(args.experiments // 4)]
    stops = [_first_rejection(t, c, 200) for t, c in runs]
    for per_arm in (2000, 3000, 4000, 6000, 8000):
        shipped = np.mean([s is not None and s <= per_arm for s in stops])
        print(f"  power within {per_arm} per arm ({per_arm / plan:.1f}x the plan): {shipped:.3f}")
    found = [s for s in stops if s is not None]
    print(
        f"  median stop {int(np.median(found))} per arm ({len(runs)} experiments, a look every 100 per arm)"
    )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()

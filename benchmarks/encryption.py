"""Benchmark: what encryption at rest costs, against mloop's own plaintext path on the same data.

Ingests the same CSV into two fresh projects, one plain and one with ``encryption.enabled`` (a random
MLOOP_DATA_KEY), then reads the dataset back and runs a filtered query through the same API, and prints
the median time of each step and the ratio encrypted / plain.

    .venv/bin/python benchmarks/encryption.py
    .venv/bin/python benchmarks/encryption.py --rows 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop import Project
from mloop.data.schema import Column, Dataset


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "ts": pd.to_datetime(start + np.sort(rng.integers(0, 30 * 86_400, rows)), unit="s", utc=True),
            "amount": np.round(rng.lognormal(3, 1, rows), 2),
            "merchant": rng.choice([f"m{i}" for i in range(200)], rows),
        }
    )


SCHEMA = Dataset(
    "txns",
    columns=[Column("id", "int64"), Column("ts", "timestamp"), Column("amount", "float64"),
             Column("merchant", "string")],
    key="id",
    timestamp="ts",
)  # fmt: skip


def median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        clock = time.perf_counter()
        fn()
        times.append(time.perf_counter() - clock)
    return statistics.median(times)


def measure(root: Path, csv: Path, encrypted: bool, repeat: int) -> dict[str, float]:
    env = {"MLOOP_DATA_KEY": secrets.token_hex(32)} if encrypted else {}
    overrides: dict[str, Any] = {"encryption": {"enabled": True}} if encrypted else {}
    out: dict[str, float] = {}
    with Project.open(root, env=env, **overrides) as project:
        clock = time.perf_counter()
        project.data.ingest(csv, SCHEMA)
        out["ingest"] = time.perf_counter() - clock
        out["read all"] = median(lambda: project.data.read("txns"), repeat)
        out["read 1 column, 1 day"] = median(
            lambda: project.data.read("txns", columns=["amount"], start=datetime(2026, 1, 10, tzinfo=UTC),
                                      end=datetime(2026, 1, 11, tzinfo=UTC)),
            repeat,
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "txns.csv"
        frame(args.rows).to_csv(csv, index=False)
        results = {}
        for encrypted in (False, True):
            root = Path(tmp) / ("encrypted" if encrypted else "plain")
            root.mkdir()
            results[encrypted] = measure(root, csv, encrypted, args.repeat)
    print(f"{args.rows:,} rows, median of {args.repeat} (ingest: once)")
    print(f"{'step':<24}{'plain s':>10}{'encrypted s':>14}{'ratio':>8}")
    for step, plain in results[False].items():
        enc = results[True][step]
        print(f"{step:<24}{plain:>10.3f}{enc:>14.3f}{enc / plain:>8.2f}")


if __name__ == "__main__":
    main()

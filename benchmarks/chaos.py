"""Benchmark: the chaos suite (tests/chaos) with longer faults, and docs/reliability.md's table from it.

Runs ``pytest tests/chaos -s`` with ``MLOOP_CHAOS_SECONDS`` set (each scenario's outage; the test suite
uses a few seconds), then prints one row per scenario from the ``CHAOS {...}`` lines the tests print:
fault, what the user sees, recovery time, requests failed (by cause), data lost, and each scenario's own
figures. A scenario that fails its assertions is reported as failed, with pytest's summary.

    .venv/bin/python benchmarks/chaos.py [--seconds 30] [-k redis]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30, help="how long each fault lasts")
    parser.add_argument("-k", default=None, help="only the scenarios pytest's -k selects")
    args = parser.parse_args()
    env = os.environ | {"MLOOP_CHAOS_SECONDS": str(args.seconds), "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "tests/chaos"]
    if args.k:
        argv += ["-k", args.k]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    rows = [
        json.loads(line[len("CHAOS ") :]) for line in done.stdout.splitlines() if line.startswith("CHAOS ")
    ]
    print(f"faults of {args.seconds:g} s, this machine; pytest exit {done.returncode}\n")
    print("| fault | what the user sees | recovery | requests failed | data lost | measured |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        failed = ", ".join(f"{n} {cause}" for cause, n in row.pop("failed").items()) or "0"
        recovery = "–" if row["recovery_s"] is None else f"{row['recovery_s']:.2f} s"
        cells = [row.pop("fault"), row.pop("sees"), recovery, failed, str(row.pop("lost"))]
        row.pop("recovery_s")
        print("| " + " | ".join([*cells, ", ".join(f"{k} {v}" for k, v in row.items())]) + " |")
    if done.returncode != 0:
        print("\n" + "\n".join(done.stdout.splitlines()[-15:]))
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()

"""Benchmark: the closed loop's reaction times, from one run of the fraud demo (``mloop demo``).

Prints, from the event log, the prediction log and the traffic's own record:

- shift → drift alert: wall seconds (and simulated hours: a simulated day passes in seconds);
- drift alert → challenger promoted: wall seconds (it includes failed attempts, the gate and three
  canary steps, each needing ``min_requests`` healthy answers);
- canary breach → rollback: from the broken version's first failed request, and from the tick that
  measured the breach to the rollback it recorded, and to the broken version's last answer (the server
  polls for new deployments every 0.5 s); goal: production back on the last good version within 1 s;
- the served p99 latency overall and while a challenger trains (in a child process);
- requests served, failed, and failed outside the canary.

No peer: no open-source tool closes this loop out of the box (TFX gates but does not watch production;
KServe splits traffic but someone moves the percentage; MLflow and ZenML offer webhooks to wire yourself),
so there is nothing to run the same scenario against.

    .venv/bin/python benchmarks/loop.py              # the full demo (a few minutes)
    .venv/bin/python benchmarks/loop.py --fast
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console

from mloop.examples.demo import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="The small demo (as the tests run it).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON at the end.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(Path(tmp) / "demo", fast=args.fast, console=Console(width=150))
    figures = {k: summary.get(k) for k in ("detect_wall_s", "detect_sim_h", "recover_wall_s",
                                           "rollback_after_first_error_s", "rollback_after_measure_s",
                                           "broken_served_after_measure_s",
                                           "p99_ms", "p99_ms_training", "requests", "errors",
                                           "errors_outside_canary")}  # fmt: skip
    print()
    for key, value in figures.items():
        print(f"{key:<32} {value if not isinstance(value, float) else round(value, 3)}")
    # production is back on the last good version once the old one is deployed and the server has switched
    parts = [summary.get(k) for k in ("rollback_after_measure_s", "broken_served_after_measure_s")]
    goal = max((p for p in parts if p is not None), default=None)
    if goal is not None:
        print(
            f"rollback within 1 s of the breach being measured: {'yes' if goal <= 1.0 else 'NO'} ({goal:.2f} s)"
        )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

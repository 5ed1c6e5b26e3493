"""Benchmark: mloop beyond one machine (issue 22), every part in one command.

Runs, one after the other and each in its own process (so one part's servers, Ray nodes and threads are
gone before the next starts):

- ``ray``: search of 16 LightGBM trials and batch scoring of 10M rows, local processes vs a 2-node Ray
  cluster (benchmarks/scale_out_ray.py);
- ``s3``: dataset read, a point-in-time join and an append with data_url on SeaweedFS vs a local folder
  (benchmarks/scale_out_s3.py);
- ``serving``: throughput and p50/p99 of 1 and 2 ``mloop serve`` replicas behind HAProxy vs one replica
  direct (benchmarks/scale_out_serving.py).

    .venv/bin/python benchmarks/scale_out.py                   # all three, about 15 minutes here
    .venv/bin/python benchmarks/scale_out.py s3 serving        # only those parts
    .venv/bin/python benchmarks/scale_out.py ray -- --trials 8 --rows 2000000   # options for the part

Each part prints its own figures, ratios and bottleneck; the options after ``--`` go to every part named.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"ray": "scale_out_ray.py", "s3": "scale_out_s3.py", "serving": "scale_out_serving.py"}


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    names, extra = argv[:split], argv[split + 1 :]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        print(f"unknown part(s) {unknown}: choose from {sorted(PARTS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or list(PARTS):
        print(f"\n===== {name}: benchmarks/{PARTS[name]} {' '.join(extra)}", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / PARTS[name]), *extra], cwd=HERE.parent)
        print(f"===== {name}: exit {code} after {time.perf_counter() - began:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

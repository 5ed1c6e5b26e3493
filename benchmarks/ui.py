"""Benchmark: the dashboard's pages at scale. The Runs pages over 100,000 runs of one experiment against
MLflow's UI API; then every other page on a project with 1,000 model versions and 10,000,000
prediction-log rows (benchmarks/ui_platform.py: what it holds and how it is made).

Prints, from one run, the median and max of --requests requests (after one warm-up) of:

1. mloop: ``/ui/runs`` of the dashboard alone (``create_ui_app``, what ``mloop ui`` serves) under uvicorn
   in its own process, local admin, 50 runs a page with the default columns (4 params, 2 metrics): the
   first page (newest first), a filtered and sorted page (``metrics.auc > 0.9 and params.boosting =
   'dart'``, by ``metrics.auc`` desc), a deep page (page 1,000: runs 49,951 to 50,000, newest first) and
   one run's page (``/ui/runs/{id}``, with its metric curves). Each ``/ui/runs`` page counts its matches
   (for the number of pages) and reads the experiment's keys (for the column picker) too.
2. The peer: ``mlflow server`` (MLflow 3.17, SQLite backend store, one worker) on the same 100,000 runs,
   its UI's own calls: ``POST /ajax-api/2.0/mlflow/runs/search`` with ``max_results=50`` for the same three
   pages (the deep one with the page token MLflow's SQL store hands out, an offset) and, for the run page,
   ``runs/get`` then ``metrics/get-history`` of each of its two metrics, one after another as a client
   would. An MLflow page is JSON that its browser code renders; mloop's is the rendered HTML.

Both are timed from a client on loopback (httpx, one connection), in the same way: about 1 ms above the
server's own time. The ratio is MLflow's median over mloop's (above 1: mloop is faster).

How the runs are populated: as benchmarks/tracking.py does it, and from its cache (benchmarks/.work/): the
runs are written in bulk through the store's SQLAlchemy tables in the shapes the service writes (one API
run is the template; see that script's header), 3 params, 2 tags, 2 metrics and one history point per
metric per run; MLflow's store the same way, its schema made by MLflow and one run logged through its API
as the template. Logging 100,000 runs through either client would take half an hour (mloop) to 1.4 hours
(MLflow) on this machine.

    .venv/bin/python benchmarks/ui.py                       # 100,000 runs; a few minutes once cached
    .venv/bin/python benchmarks/ui.py --runs 2000 --requests 5 --no-peer --log-rows 200000
    .venv/bin/python benchmarks/ui.py --no-runs              # the platform part only

The platform part is made once (about 15 minutes at 10 million rows, most of it the monitoring windows
stored day by day) and topped up to now on later runs. Its pages are timed on the dashboard alone as the
local admin; the first view after the server starts is printed apart: it reads each Parquet part of the
log once for the per-minute summaries the Overview and Monitoring pages use (``mloop ui`` reads them in
the background at start), later views read what it kept.

The peer venv:  python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow  (--peer-python
names another; benchmarks/.peers/mlflow is used when it exists).

Goal (issue 23): every page under 300 ms server time with 100,000 runs, 1,000 model versions and 10M
prediction-log rows.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from serving_setup import port, start, stop
from tracking import DATA_VERSION, PEER_SCRIPT, PEERS, T0, WORK, make_runs, sqlite_search_db
from ui_platform import seed

GOAL_MS = 300.0
FILTER, ORDER = "metrics.auc > 0.9 and params.boosting = 'dart'", "metrics.auc"
PER, DEEP_PAGE = 50, 1000

SERVER = r"""
import sys, uvicorn
from pathlib import Path
from mloop import Project
from mloop.ui import create_ui_app
project = Project.open(Path(sys.argv[1]), env={}, **({"metadata_url": sys.argv[2]} if sys.argv[2] else {}))
uvicorn.run(create_ui_app(project), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
"""


def timed(call: Callable[[], Any], requests: int) -> tuple[float, float]:
    """Median and max milliseconds of ``requests`` calls after one warm-up."""
    call()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times), max(times)


def check(answer: httpx.Response, *, needle: str = "") -> httpx.Response:
    if answer.status_code != 200 or needle not in answer.text:
        raise RuntimeError(f"{answer.request.url}: {answer.status_code} {answer.text[:500]}")
    return answer


def bench_mloop(db: Path, n: int, run_id: str, requests: int) -> dict[str, tuple[float, float]]:
    at = port()
    script = WORK / "ui_server.py"
    script.write_text(SERVER)
    root = WORK / "tracking-project"  # the project the runs were written to (its name is the folder's)
    root.mkdir(exist_ok=True)
    server = start([sys.executable, str(script), str(root), f"sqlite:///{db}", str(at)], at, root, 120)
    base = {"experiment": f"bench-{n}", "per": PER}
    pages = {
        "first page": base,
        "filtered + sorted": {**base, "filter": FILTER, "sort": ORDER, "dir": "desc"},
        f"deep page ({DEEP_PAGE:,})": {**base, "page": min(DEEP_PAGE, max(1, n // PER))},
    }
    out = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{at}", timeout=60) as client:
            for name, params in pages.items():
                out[name] = timed(lambda p=params: check(client.get("/ui/runs", params=p), needle="runs · page"),
                                  requests)  # fmt: skip
            out["run page"] = timed(
                lambda: check(client.get(f"/ui/runs/{run_id}"), needle="curve-data"), requests
            )
    finally:
        stop(server)
    return out


PLATFORM_PAGES = {
    "overview": ("/ui/", "Endpoints"),
    "overview live figures": ("/ui/overview/live/fraud", "p99"),
    "models (51)": ("/ui/models", "m48"),
    "model with 500 versions": ("/ui/models/fraud", "v500"),
    "its page 10": ("/ui/models/fraud?page=10", "v50<"),
    "one version": ("/ui/models/fraud/250", "Model card"),
    "deployments": ("/ui/deployments", "fraud"),
    "deployment (100 revisions)": ("/ui/deployments/fraud", "revision"),
    "deployment live figures": ("/ui/deployments/fraud/live", "p99"),
    "monitoring (7 days)": ("/ui/monitoring?endpoint=fraud", "Drift"),
    "loop timeline": ("/ui/loop?endpoint=fraud", "canary"),
    "audit log": ("/ui/audit", "<table"),
}


def bench_platform(rows: int, requests: int) -> dict[str, tuple[float, float, float]]:
    """Each page of the platform-sized project (benchmarks/ui_platform.py) with ``rows`` log rows: the
    first view after the server started (what it read stays memoized), then the median and max."""
    project = seed(WORK / "ui-platform", rows)
    root = Path(project.root)
    project.close()
    at = port()
    script = WORK / "ui_server.py"
    script.write_text(SERVER)
    server = start([sys.executable, str(script), str(root), "", str(at)], at, root, 120)
    out = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{at}", timeout=300) as client:
            for name, (path, needle) in PLATFORM_PAGES.items():
                started = time.perf_counter()
                check(client.get(path), needle=needle)
                first = (time.perf_counter() - started) * 1e3
                out[name] = (first, *timed(lambda p=path, n=needle: check(client.get(p), needle=n), requests))
    finally:
        stop(server)
    return out


def peer_python(given: str | None) -> Path | None:
    for candidate in (given, PEERS / "mlflow" / "bin" / "python", "/tmp/mlflow-venv/bin/python"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    print(
        "  (peer skipped: create it with  python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow)"
    )
    return None


def peer_db(python: Path, data: dict[str, np.ndarray], n: int) -> Path:
    """MLflow's store with the same ``n`` runs, populated (by tracking.py's peer script) when missing."""
    version = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    root = WORK / f"tracking-mlflow-{n}-runs-v{DATA_VERSION}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    if not db.exists():
        data_path = WORK / f"ui-data-{n}.npz"
        script = WORK / "peer_mlflow.py"
        script.write_text(PEER_SCRIPT)
        np.savez(data_path, t0_ms=np.int64(T0.timestamp() * 1000), **data)
        try:  # "search" with no shapes: populate, time nothing
            subprocess.run([str(python), str(script), "search", str(db), str(data_path), str(n), "1", "[]"],
                           cwd=root, check=True, capture_output=True,
                           env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})  # fmt: skip
        finally:
            data_path.unlink(missing_ok=True)
    return db


def bench_peer(python: Path, db: Path, n: int, run_id: str, requests: int) -> dict[str, tuple[float, float]]:
    at = port()
    mlflow = str(python.parent / "mlflow")
    server = start([mlflow, "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
                    "--port", str(at), "--workers", "1"], at, db.parent, 120,
                   env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})  # fmt: skip
    out = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{at}", timeout=120) as client:
            found = check(client.get("/ajax-api/2.0/mlflow/experiments/get-by-name",
                                     params={"experiment_name": f"bench-{n}"}))  # fmt: skip
            experiment = found.json()["experiment"]["experiment_id"]
            offset = (min(DEEP_PAGE, max(1, n // PER)) - 1) * PER
            token = base64.b64encode(json.dumps({"offset": offset}).encode()).decode()
            base = {"experiment_ids": [experiment], "max_results": PER, "run_view_type": "ACTIVE_ONLY"}
            pages = {
                "first page": {**base, "order_by": ["attributes.start_time DESC"]},
                "filtered + sorted": {**base, "filter": FILTER, "order_by": ["metrics.auc DESC"]},
                f"deep page ({DEEP_PAGE:,})": {
                    **base,
                    "order_by": ["attributes.start_time DESC"],
                    "page_token": token,
                },
            }
            for name, body in pages.items():
                out[name] = timed(lambda b=body: check(client.post("/ajax-api/2.0/mlflow/runs/search", json=b),
                                                       needle='"runs"'), requests)  # fmt: skip

            def run_page() -> None:
                check(client.get("/ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id}))
                for key in ("auc", "loss"):
                    check(client.get("/ajax-api/2.0/mlflow/metrics/get-history",
                                     params={"run_id": run_id, "metric_key": key}), needle='"metrics"')  # fmt: skip

            out["run page"] = timed(run_page, requests)
    finally:
        stop(server)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the experiment")
    parser.add_argument("--requests", type=int, default=9, help="timed requests per page (medians)")
    parser.add_argument("--no-peer", action="store_true", help="skip MLflow")
    parser.add_argument("--peer-python", help="the python of a venv with mlflow installed")
    parser.add_argument(
        "--log-rows", type=int, default=10_000_000, help="prediction-log rows of the platform part"
    )
    parser.add_argument("--no-platform", action="store_true", help="skip the platform-sized project")
    parser.add_argument("--no-runs", action="store_true", help="skip the Runs pages")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.no_runs:
        runs_part(args)
    if not args.no_platform:
        print(
            f"\nthe platform-sized project (benchmarks/ui_platform.py): {args.log_rows:,} prediction-log rows"
        )
        pages = bench_platform(args.log_rows, args.requests)
        print(f"\n  {'page (dashboard alone, local admin)':<38}{'first view':>12}{'median (max) ms':>20}")
        for name, (first, median, worst) in pages.items():
            mark = "" if median <= GOAL_MS else "  !! over the goal"
            print(f"  {name:<38}{first:>12.1f}{median:>12.1f} ({worst:>6.1f}){mark}")


def runs_part(args: argparse.Namespace) -> None:
    n = args.runs
    data = make_runs(n)
    db, took, differ = sqlite_search_db(data, n)
    how = f"populated in {took:.0f} s" if took is not None else "cached"
    print(f"{n:,} runs of one experiment: mloop's store {how}")
    for problem in differ:
        print(f"  !! a bulk row differs from an API row in {problem}")
    run_id = str(data["id"][n // 2])
    ours = bench_mloop(db, n, run_id, args.requests)
    python = None if args.no_peer else peer_python(args.peer_python)
    theirs = bench_peer(python, peer_db(python, data, n), n, run_id, args.requests) if python else {}
    print(f"\nmedian (max) ms of {args.requests} requests, client on loopback; goal <= {GOAL_MS:.0f} ms")
    print(f"  {'page':<24}{'mloop /ui/runs':>20}{'MLflow ajax-api':>20}{'MLflow/mloop':>14}")
    for name, (median, worst) in ours.items():
        peer = theirs.get(name)
        mark = "" if median <= GOAL_MS else "  !! over the goal"
        peer_text = f"{peer[0]:>10.1f} ({peer[1]:>6.1f})" if peer else f"{'—':>20}"
        ratio = f"{peer[0] / median:>13.2f}x" if peer else f"{'—':>14}"
        print(f"  {name:<24}{median:>10.1f} ({worst:>6.1f}){peer_text}{ratio}{mark}")


if __name__ == "__main__":
    main()

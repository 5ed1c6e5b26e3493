"""Benchmark: a soak. ``mloop serve`` for ``--minutes`` (60) at half its capacity, with a deployment change
every ``--every`` seconds (canaries of v2 at 10%, rolled back or promoted, v1 again, over and over) and a
loop controller (no policies: its lease) ticking every 5 s; the server's resources sampled every minute.

The load is benchmarks/loadgen.py in open loop (one process a minute, so each minute has its own
percentiles), on the ``bench`` endpoint of benchmarks/serving_setup.py (10 features sent, 10 looked up in
the online store). Capacity is measured first (closed loop, 16 connections, 8 s) unless ``--rate`` is
given. Each minute: requests, failures by status, p50/p99/p99.9, and the server's RSS, open files,
threads, the metadata database and its WAL, the prediction log on disk, and the event-loop turns more
than 50 ms late (``stalls``, from the server's ``mloop_event_loop_lag_seconds``), the requests it shed, and
how late the generator itself released requests (its worst, and in brackets how many left over 10 ms late:
a burst of the client's, not the server's). At the end: the slope of each
resource after ``--warmup`` minutes (a least-squares line: per hour), the p99's range, failed requests.

    .venv/bin/python benchmarks/soak.py                     # an hour
    .venv/bin/python benchmarks/soak.py --minutes 6 --warmup 2 --every 60
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

import mloop as ml
from mloop.loop.controller import LoopController
from serving_setup import HERE, WORK, build, port, start, stop

ROOT = WORK.parent / "soak"


def load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "-"], input=json.dumps(config),
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def stalls(base: str) -> dict[str, float]:
    """The server's own counters (/metrics): requests shed, event-loop turns more than 50 ms late."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(("mloop_shed_requests_total ", "mloop_event_loop_lag_seconds_count ",
                            'mloop_event_loop_lag_seconds_bucket{le="0.05"} ')):  # fmt: skip
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    late = values.get("mloop_event_loop_lag_seconds_count", 0.0) - values.get(
        'mloop_event_loop_lag_seconds_bucket{le="0.05"}', 0.0
    )
    return {"shed": values.get("mloop_shed_requests_total", 0.0), "stalls": late}


def sample(pid: int) -> dict[str, float]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    state = ROOT / ".mloop"
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
        "db_mb": size(state / "mloop.db") / 1e6,
        "wal_mb": size(state / "mloop.db-wal") / 1e6,
        # The prediction log: JSON-lines segments still to compact (must stay flat), and the Parquet they
        # become (grows with the requests logged: that is the data, see bytes per request below).
        "seg_mb": size(state / "data" / "_predictions" / "segments") / 1e6,
        "log_mb": (size(state / "data" / "_predictions") - size(state / "data" / "_predictions" / "segments"))
        / 1e6,
    }


def churn(project: ml.Project, every: float, stop_at: float, done: threading.Event, log: list[str]) -> None:
    """One step every ``every`` seconds, in a cycle that starts and ends on v1 alone: a canary of v2 at 10%
    rolled back, a canary of v2 promoted, v1 deployed again."""
    canary = lambda: project.deploy("bench", "bench", version=2, canary=0.1)  # noqa: E731
    steps = [("canary", canary), ("rollback", lambda: project.rollback("bench")), ("canary", canary),
             ("promote", lambda: project.deploy("bench", "bench", version=2)),
             ("back to v1", lambda: project.deploy("bench", "bench", version=1))]  # fmt: skip
    i = 0
    while not done.wait(every) and time.monotonic() < stop_at:
        name, step = steps[i % len(steps)]
        step()
        log.append(name)
        i += 1


def slope_per_hour(minutes: list[float], values: list[float]) -> float:
    if len(minutes) < 2:
        return float("nan")
    return float(np.polyfit(minutes, values, 1)[0] * 60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="minutes left out of the slopes")
    parser.add_argument("--every", type=float, default=180, help="seconds between deployment changes")
    parser.add_argument("--rate", type=float, default=None, help="requests/s (default: half of capacity)")
    args = parser.parse_args()

    bodies, _ = build(ROOT, versions=2)  # v2 of ``bench``: the same booster registered again
    project = ml.Project.open(ROOT, env={})
    at = port()
    server_log = ROOT / "server.log"
    server = start([str(Path(sys.executable).parent / "mloop"), "-C", str(ROOT), "serve", "--port", str(at)],
                   at, ROOT, log=server_log)  # fmt: skip
    url = f"http://127.0.0.1:{at}/v1/endpoints/bench/predict"
    try:
        rate = args.rate
        if rate is None:
            capacity = load({"url": url, "bodies": bodies["lookup"], "mode": "closed", "connections": 16,
                             "seconds": 8})["ok"] / 8  # fmt: skip
            rate = round(capacity / 2)
            print(f"capacity {capacity:.0f} rps (closed loop, 16 connections); soak at {rate} rps")
        controller = LoopController(project, [], lease_ttl=timedelta(seconds=30))
        ticking = controller.start(interval=5)
        done, changes = threading.Event(), []
        stop_at = time.monotonic() + args.minutes * 60
        threading.Thread(
            target=churn, args=(project, args.every, stop_at, done, changes), daemon=True
        ).start()
        rows = []
        base = url.split("/v1/")[0]
        before = stalls(base)
        print(
            "min  requests  failed  p50 ms  p99 ms  p99.9 ms   rss MB  fds  threads  db MB  wal MB  seg MB  log MB  changes  stalls  shed  gen late ms  by status"
        )
        for minute in range(1, args.minutes + 1):
            result = load({"url": url, "bodies": bodies["lookup"], "mode": "open", "rate": rate, "seconds": 60,
                           "connections": 64})  # fmt: skip
            ok = result["status"].get("200", {})
            failed = {s: v["count"] for s, v in result["status"].items() if s != "200"}
            now = stalls(base)
            shed, late = now["shed"] - before["shed"], now["stalls"] - before["stalls"]
            before = now
            row = {"minute": minute, "requests": result["requests"], "failed": failed,
                   "p50": ok.get("p50_ms", 0.0), "p99": ok.get("p99_ms", 0.0), "p999": ok.get("p999_ms", 0.0),
                   **sample(server.pid),
                   "changes": len(changes), "shed": shed, "stalls": late, "gen_late_ms": result.get("late_ms", 0.0),
                   "gen_late_10ms": result.get("late_10ms", 0)}  # fmt: skip
            rows.append(row)
            shown = " ".join(f"{n}×{s}" for s, n in sorted(failed.items()))  # failures by status
            print(f"{minute:>3}  {row['requests']:>8}  {sum(failed.values()):>6}  {row['p50']:>6.2f}  "
                  f"{row['p99']:>6.2f}  {row['p999']:>8.2f}  {row['rss_mb']:>7.1f}  {row['fds']:>3}  "
                  f"{row['threads']:>7}  {row['db_mb']:>5.2f}  {row['wal_mb']:>6.2f}  {row['seg_mb']:>6.1f}  "
                  f"{row['log_mb']:>6.1f}  "
                  f"{row['changes']:>7}  {late:>6.0f}  {shed:>4.0f}  {row['gen_late_ms']:>6.1f} "
                  f"({row['gen_late_10ms']:>3})  {shown}", flush=True)  # fmt: skip
        done.set()
        ticking.set()
        # Whether a reader pins SQLite's WAL (then checkpoints cannot reset it and it grows for ever): a
        # passive checkpoint while the server still runs copies every frame unless one does.
        with closing(sqlite3.connect(ROOT / ".mloop" / "mloop.db", timeout=10)) as db:
            _busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        print(f"\nWAL checkpoint while serving: {copied} of {frames} frames copied"
              f"{' (a reader pins the rest)' if copied < frames else ': no reader pins the WAL'}")  # fmt: skip
    finally:
        stop(server)
        project.close()
    steady = [r for r in rows if r["minute"] > args.warmup]
    minutes = [float(r["minute"]) for r in steady]
    print(
        f"\nafter {args.warmup} minutes of warm-up, slope per hour (least squares over {len(steady)} minutes):"
    )
    for key, unit in (("rss_mb", "MB"), ("fds", "files"), ("threads", "threads"), ("db_mb", "MB"),
                      ("wal_mb", "MB"), ("seg_mb", "MB"), ("log_mb", "MB")):  # fmt: skip
        print(
            f"  {key:<8} {slope_per_hour(minutes, [float(r[key]) for r in steady]):+9.2f} {unit}/h"
            f"   (from {steady[0][key] if steady else 0:.1f} to {steady[-1][key] if steady else 0:.1f})"
        )
    p99s = [r["p99"] for r in steady]
    failed_total: dict[str, int] = {}
    for r in rows:
        for status, count in r["failed"].items():
            failed_total[status] = failed_total.get(status, 0) + count
    total = sum(r["requests"] for r in rows)
    if len(steady) > 1:
        grown = (steady[-1]["log_mb"] - steady[0]["log_mb"]) * 1e6
        logged = sum(r["requests"] for r in steady[1:])
        print(f"  the prediction log's Parquet: {grown / max(logged, 1):.0f} bytes per request")
    print(f"  event-loop stalls over 50 ms: {sum(r['stalls'] for r in rows):.0f}; requests the server shed: "
          f"{sum(r['shed'] for r in rows):.0f}")  # fmt: skip
    print(f"  p99 {min(p99s, default=0):.2f}–{max(p99s, default=0):.2f} ms; requests {total}, "
          f"failed {failed_total or 0}; deployment changes {len(changes)}")  # fmt: skip
    # When the server shed, and how much: its own log lines (each start and end of shedding).
    shedding = [line for line in server_log.read_text(errors="replace").splitlines()
                if "overloaded: the event loop" in line or "of shedding:" in line]  # fmt: skip
    print(f"\nthe server's shedding, from its log ({server_log}): {len(shedding)} lines")
    for line in shedding:
        print(f"  {line[:300]}")


if __name__ == "__main__":
    main()

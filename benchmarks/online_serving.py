"""Benchmark: the whole online read path — ``project.features.online(...)`` in process and
``POST /v1/features/online`` over HTTP on loopback — on SQLite and Redis, plus materialization throughput.

Prints, from one run: p50/p99 latency for 1 entity x 50 features and 100 entities x 50 features, in process
and over HTTP (the load comes from a separate process: sequential requests on one keep-alive connection,
with the standard library's http.client);
the HTTP floor (a bare FastAPI + uvicorn app that reads the same row from SQLite and returns it); the peer
(Feast 0.67's ``get_online_features`` on its SQLite store, in its throwaway venv, via online_lookup.py);
materialization of 100k entities x 50 features (feature values/s); and the ratios. Medians of --repeat.

    .venv/bin/python benchmarks/online_serving.py
    .venv/bin/python benchmarks/online_serving.py --reads 5000 --no-peer

Goals (issue 3): in-process SQLite p99 <= 200 us, Redis p99 <= 1 ms, HTTP p99 <= 2 ms for 1 x 50;
>= 5x faster than Feast's Python SDK read; materialization >= 1M feature values/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mloop as ml

HERE = Path(__file__).parent
WORK = HERE / ".work"
sys.path.insert(0, str(HERE))
import online_lookup  # noqa: E402

NOW = datetime(2026, 9, 21, tzinfo=UTC)

CLIENT = r"""
import http.client, json, sys, time
from urllib.parse import urlsplit
url, body_one, body_many, n_one, n_many = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
parts = urlsplit(url)
def run(bodies, n):
    # The standard library's client on one keep-alive connection: the least client overhead in Python.
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    payloads = [json.dumps(b).encode() for b in bodies]
    headers = {"Content-Type": "application/json"}
    def call(j):
        conn.request("POST", parts.path, payloads[j % len(payloads)], headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
    for j in range(min(50, n)):
        call(j)
    times = []
    for j in range(n):
        started = time.perf_counter_ns()
        call(j)
        times.append(time.perf_counter_ns() - started)
    conn.close()
    times.sort()
    return [times[len(times) // 2] / 1e3, times[min(len(times) - 1, int(len(times) * 0.99))] / 1e3]
print(json.dumps({"one": run(body_one, n_one), "many": run(body_many, n_many)}))
"""

FLOOR_APP = r"""
import json, sqlite3, sys, threading
from fastapi import FastAPI, Request
import uvicorn
db = sys.argv[1]
local = threading.local()
app = FastAPI()
@app.post("/v1/features/online")
def online(body: dict):
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = sqlite3.connect(db)
    keys = body["entities"]["customer_id"]
    rows = [conn.execute("SELECT value FROM online_rows WHERE view = 'stats.v1' AND key = ?", (str(k),)).fetchone()
            for k in keys]
    values = [json.loads(r[0]) if r else {} for r in rows]
    names = list(values[0]) if values and values[0] else []
    return {"features": {"customer_id": keys, **{n: [v.get(n) for v in values] for n in names}}}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def make_project(root: Path, entities: int, online_url: str | None) -> ml.Project:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": np.arange(entities, dtype=np.int64), "ts": NOW - timedelta(hours=1)})
    fields = []
    for i in range(online_lookup.FLOATS):
        frame[f"f{i}"] = rng.normal(size=entities)
        fields.append(ml.Field(f"f{i}", "float64"))
    for i in range(online_lookup.INTS):
        frame[f"i{i}"] = rng.integers(0, 1000, entities)
        fields.append(ml.Field(f"i{i}", "int64"))
    for i in range(online_lookup.STRINGS):
        frame[f"s{i}"] = rng.choice(online_lookup.CATEGORIES, entities)
        fields.append(ml.Field(f"s{i}", "string"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / "stats.parquet"
    frame.to_parquet(path, index=False)
    overrides = {"online_url": online_url} if online_url else {}
    project = ml.Project.open(root, env={}, **overrides)
    customer = ml.Entity("customer", join_keys=["customer_id"])
    view = ml.FeatureView("stats", entities=[customer], source=ml.ParquetSource(str(path), timestamp="ts"),
                          ttl="3650d", features=fields)  # fmt: skip
    project.apply([view])
    return project


def percentiles(call: Any, n: int) -> list[float]:
    times = []
    for j in range(n):
        started = time.perf_counter_ns()
        call(j)
        times.append(time.perf_counter_ns() - started)
    times.sort()
    return [times[len(times) // 2] / 1e3, times[min(len(times) - 1, int(len(times) * 0.99))] / 1e3]


def in_process(project: ml.Project, entities: int, args: argparse.Namespace) -> dict[str, Any]:
    keys = np.random.default_rng(1).integers(0, entities, args.reads * args.batch).tolist()
    refs = ["stats:*"]
    assert project.features.online({"customer_id": [1]}, refs)["f0"][0] is not None
    one, many = [], []
    for _ in range(args.repeat):
        one.append(
            percentiles(lambda j: project.features.online({"customer_id": [keys[j]]}, refs), args.reads)
        )
        n = max(args.reads // 20, 20)
        many.append(percentiles(
            lambda j: project.features.online({"customer_id": keys[j * args.batch:(j + 1) * args.batch]}, refs), n))  # fmt: skip
    return {"one": _median(one), "many": _median(many)}


def over_http(
    command: list[str], port: int, entities: int, args: argparse.Namespace, cwd: Path
) -> dict[str, Any]:
    server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(port, server)
        rng = np.random.default_rng(2)
        one = [
            {"features": ["stats:*"], "entities": {"customer_id": [int(k)]}}
            for k in rng.integers(0, entities, 200)
        ]
        many = [{"features": ["stats:*"], "entities": {"customer_id": rng.integers(0, entities, args.batch).tolist()}}
                for _ in range(20)]  # fmt: skip
        script = WORK / "http_client.py"
        script.write_text(CLIENT)
        runs = []
        for _ in range(args.repeat):
            done = subprocess.run(
                [sys.executable, str(script), f"http://127.0.0.1:{port}/v1/features/online", json.dumps(one),
                 json.dumps(many), str(args.http_reads), str(max(args.http_reads // 20, 20))],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs.append(json.loads(done.stdout))
        return {"one": _median([r["one"] for r in runs]), "many": _median([r["many"] for r in runs])}
    finally:
        server.terminate()
        server.wait(10)


def materialization(root: Path, args: argparse.Namespace, online_url: str | None) -> float:
    project = make_project(root, args.materialize_entities, online_url)
    try:
        report = project.features.materialize(NOW - timedelta(days=1), NOW)
        return report.values_per_second
    finally:
        project.close()


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _show(name: str, value: Any) -> Any:
    print(f"  {time.strftime('%H:%M:%S')} {name}: {value}", flush=True)
    return value


def _median(pairs: list[list[float]]) -> list[float]:
    return [statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20_000, help="in-process 1-entity reads per repetition")
    parser.add_argument("--http-reads", type=int, default=5_000, help="HTTP 1-entity requests per repetition")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--materialize-entities", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-reads", type=int, default=2_000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    redis = online_lookup.start_redis()
    mloop = Path(sys.executable).parent / "mloop"
    try:
        for backend, url in (("sqlite", None), ("redis", redis[0] if redis else None)):
            if backend == "redis" and url is None:
                print("  (redis skipped: no redis-server; apt-get install redis-server)")
                continue
            root = Path(tempfile.mkdtemp(prefix=f"serve-{backend}-", dir=WORK))
            try:
                project = make_project(root, args.entities, url)
                project.features.materialize(NOW - timedelta(days=1), NOW)
                figures[f"{backend} in process"] = _show(
                    f"{backend} in process", in_process(project, args.entities, args)
                )
                project.close()
                port = _port()
                env_url = ["env", f"MLOOP_ONLINE_URL={url}"] if url else []
                command = [*env_url, str(mloop), "-C", str(root), "serve", "--port", str(port)]
                figures[f"{backend} HTTP"] = _show(
                    f"{backend} HTTP", over_http(command, port, args.entities, args, root)
                )
                if backend == "sqlite":
                    script = WORK / "floor_app.py"
                    script.write_text(FLOOR_APP)
                    port = _port()
                    command = [sys.executable, str(script), str(root / ".mloop" / "online.db"), str(port)]
                    floor = over_http(command, port, args.entities, args, root)
                    figures["HTTP floor: bare FastAPI + sqlite3"] = _show("HTTP floor", floor)
                figures[f"{backend} materialize"] = _show(
                    f"{backend} materialize", materialization(root / "big", args, url)
                )
            finally:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        if redis:
            redis[1].terminate()
            redis[1].wait(10)
            shutil.rmtree(redis[2], ignore_errors=True)
    peer = None
    if not args.no_peer:
        peer_args = argparse.Namespace(entities=args.entities, peer_reads=args.peer_reads, batch=args.batch,
                                       repeat=args.repeat)  # fmt: skip
        peer = online_lookup.run_peer(peer_args)

    print(f"\n{args.entities:,} entities x 50 features; medians of {args.repeat} runs")
    print(f"{'':<44}{'1 entity p50':>13}{'p99':>9}{f'{args.batch} entities p50':>20}{'p99':>10}   (us)")
    rows = [(k, v) for k, v in figures.items() if "materialize" not in k]
    if peer:
        rows.append(
            ("Feast 0.67 get_online_features (SQLite)", {"one": peer["full_one"], "many": peer["full_many"]})
        )
    for name, value in rows:
        print(
            f"{name:<44}{value['one'][0]:>13.1f}{value['one'][1]:>9.1f}{value['many'][0]:>20.1f}{value['many'][1]:>10.1f}"
        )
    for name, value in figures.items():
        if "materialize" in name:
            print(f"{name:<44}{value:>13,.0f} feature values/s ({args.materialize_entities:,} entities x 50)")
    sq = figures["sqlite in process"]
    if peer:
        print(f"\nFeast SDK read / mloop in process (SQLite), p50: 1 entity {peer['full_one'][0] / sq['one'][0]:.1f}x, "
              f"{args.batch} entities {peer['full_many'][0] / sq['many'][0]:.1f}x   (goal >= 5x)")  # fmt: skip
    http, floor = figures.get("sqlite HTTP"), figures.get("HTTP floor: bare FastAPI + sqlite3")
    if http and floor:
        print(f"mloop HTTP / bare FastAPI floor, p50 1 entity: {http['one'][0] / floor['one'][0]:.2f}x")
    print(f"goals: in-process SQLite p99 {sq['one'][1]:.0f} us (<= 200)"
          + (f"; Redis p99 {figures['redis in process']['one'][1]:.0f} us (<= 1000)" if "redis in process" in figures else "")
          + (f"; HTTP p99 {http['one'][1]:.0f} us (<= 2000)" if http else ""))  # fmt: skip


if __name__ == "__main__":
    main()

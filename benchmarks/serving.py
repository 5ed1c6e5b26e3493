"""Benchmark: the inference service (``mloop serve``) against a bare FastAPI floor and ``mlflow models serve``.

One LightGBM model (100 trees, 31 leaves, binary) on 20 features: 10 from the online store (a feature view
``customer_profile`` over 10,000 customers, materialized to the embedded SQLite online store) and 10 sent
in the request. The same booster is served by:

- **floor**: benchmarks/serving_floor.py, a bare FastAPI + uvicorn app that reads all 20 features from the
  request and calls ``booster.predict`` (no lookup, no validation, no log, no metrics);
- **mloop**: ``mloop serve`` (one worker, default settings), endpoint ``bench``: online lookup of the 10
  stored features in one round trip, signature check, prediction, prediction log, Prometheus metrics;
- **mloop batched**: the same server, endpoint ``bench_batched`` deployed with ``max_batch_size=32,
  max_wait_ms=1``;
- **mlflow**: ``mlflow models serve --env-manager local`` of the booster saved with ``mlflow.lightgbm``
  (MLflow 3.17.2 in its throwaway venv), all 20 features in a ``dataframe_split`` body.

Load comes from benchmarks/loadgen.py in a separate process on loopback (raw HTTP/1.1 keep-alive,
uvloop): open-loop at --rates (latency from each request's scheduled time: coordinated-omission safe),
then closed-loop at each of --concurrency (max throughput, latency from the send). Each server runs alone
(the machine has 2 cores: one for the server, one for the load). Then the overload run: mloop, open-loop at
twice the max throughput it reached, with 256 connections: the share of admitted requests answered 200 and
how fast the shed ones got their 503. Medians of --repeat for the open-loop figures.

    .venv/bin/python benchmarks/serving.py                       # about 6 minutes
    .venv/bin/python benchmarks/serving.py --seconds 4 --no-peer

The peer venv:  python3 -m venv benchmarks/.peers/mlflow && benchmarks/.peers/mlflow/bin/pip install
"mlflow==3.17.2" "lightgbm==4.7.0"

Goals (issue 5): server overhead over the floor at 500 rps p50 <= 1 ms, p99 <= 3 ms; with batching >= 50% of
the floor's max throughput at p99 <= 10 ms; >= 3x MLflow serve's max throughput; at 2x saturation >= 99.9%
of admitted requests succeed and the rest get 429/503 within 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd

import mloop as ml

HERE = Path(__file__).parent
WORK = HERE / ".work" / "serving"
PEER = HERE / ".peers" / "mlflow" / "bin"
CUSTOMERS = 10_000
STORED = [f"c{i}" for i in range(10)]
SENT = [f"r{i}" for i in range(10)]
BODIES = 500

SAVE_MLFLOW = r"""
import sys, lightgbm, mlflow.lightgbm
mlflow.lightgbm.save_model(lightgbm.Booster(model_file=sys.argv[1]), sys.argv[2])
"""


def build(root: Path) -> tuple[dict[str, list[dict[str, Any]]], Path]:
    """The project with both endpoints deployed; request bodies per server; the booster's model file."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC).replace(microsecond=0)
    profile = pd.DataFrame(
        {"customer_id": np.arange(CUSTOMERS, dtype=np.int64), "ts": now - timedelta(hours=1)}
    )
    for name in STORED:
        profile[name] = rng.normal(size=CUSTOMERS)
    profile["ts"] = profile["ts"].astype("datetime64[us, UTC]")
    profile.to_parquet(root / "profile.parquet", index=False)
    project = ml.Project.open(root, env={})
    customer = ml.Entity("customer", join_keys=["customer_id"])
    view = ml.FeatureView("customer_profile", entities=[customer], ttl="3650d",
                          source=ml.ParquetSource(str(root / "profile.parquet"), timestamp="ts"),
                          features=[ml.Field(n, "float64") for n in STORED])  # fmt: skip
    project.apply([view])
    project.features.materialize(now - timedelta(days=1), now)
    n = 20_000
    ids = rng.integers(0, CUSTOMERS, n)
    frame = profile.iloc[ids][STORED].reset_index(drop=True)
    for name in SENT:
        frame[name] = rng.normal(size=n)
    score = frame[STORED[:5]].sum(axis=1) - frame[SENT[:5]].sum(axis=1) + rng.normal(size=n)
    label = (score > 1.0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1).fit(frame, label)
    with project.run("serving-bench") as run:
        run.register(model, "bench", input_example=frame.head(1000),
                     lineage={"features": [f"customer_profile:{c}" for c in STORED]})  # fmt: skip
    project.deploy("bench", "bench", version=1)
    project.deploy("bench_batched", "bench", version=1, options={"max_batch_size": 32, "max_wait_ms": 1})
    model_file = root / "model.txt"
    model.booster_.save_model(str(model_file))
    # Request bodies: the same rows for every server, each in its own format.
    chosen = rng.integers(0, CUSTOMERS, BODIES)
    sent = rng.normal(size=(BODIES, len(SENT))).round(6)
    bodies: dict[str, list[dict[str, Any]]] = {"mloop": [], "floor": [], "mlflow": []}
    for k, values in zip(chosen, sent, strict=True):
        request = dict(zip(SENT, values.tolist(), strict=True))
        stored = {c: float(profile.at[int(k), c]) for c in STORED}
        bodies["mloop"].append({"rows": [{"customer_id": int(k), **request}]})
        bodies["floor"].append({"rows": [{**stored, **request}]})
        columns = STORED + SENT
        row = {**stored, **request}
        bodies["mlflow"].append(
            {"dataframe_split": {"columns": columns, "data": [[row[c] for c in columns]]}}
        )
    check(project, bodies, model)
    project.close()
    return bodies, model_file


def check(project: ml.Project, bodies: dict[str, list[dict[str, Any]]], model: Any) -> None:
    """mloop's answer for the first bodies equals the booster's on the floor's rows: same model, same inputs."""
    from fastapi.testclient import TestClient

    from mloop.serving.http.app import create_app

    with TestClient(create_app(project)) as client:
        for mine, floor in zip(bodies["mloop"][:20], bodies["floor"][:20], strict=True):
            got = client.post("/v1/endpoints/bench/predict", json=mine).json()["predictions"][0]
            row = pd.DataFrame(floor["rows"])[STORED + SENT]
            want = float(model.booster_.predict(row.to_numpy())[0])
            assert abs(got - want) < 1e-12, (got, want)


def port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], at: int, cwd: Path, seconds: float = 90) -> subprocess.Popen[bytes]:
    # The command's own bin folder first on PATH: mlflow models serve runs `uvicorn` from its venv.
    env = {**os.environ, "PATH": f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True, env=env)  # fmt: skip
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError((server.stderr.read() if server.stderr else b"").decode()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", at), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"{command[0]} did not listen on {at} within {seconds} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)


def load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "-"], input=json.dumps(config),
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(name: str, url: str, bodies: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Open-loop figures at each rate (medians of --repeat) and closed-loop ones at each concurrency."""
    load({"url": url, "bodies": bodies, "mode": "closed", "connections": 8, "seconds": 2})  # warm up
    out: dict[str, Any] = {"name": name, "open": {}, "closed": {}}
    for rate in args.rates:
        runs = [load({"url": url, "bodies": bodies, "mode": "open", "rate": rate, "seconds": args.seconds,
                      "connections": 64}) for _ in range(args.repeat)]  # fmt: skip
        ok = [r["status"].get("200", {}) for r in runs]
        out["open"][rate] = {
            "p50": statistics.median(s.get("p50_ms", float("nan")) for s in ok),
            "p99": statistics.median(s.get("p99_ms", float("nan")) for s in ok),
            "failed": sum(r["requests"] - r["ok"] for r in runs),
            "behind": max(r["behind_s"] for r in runs),
        }
        print(f"  {name:14} open {rate:>5} rps: p50 {out['open'][rate]['p50']:7.2f} ms  "
              f"p99 {out['open'][rate]['p99']:7.2f} ms  failed {out['open'][rate]['failed']}", flush=True)  # fmt: skip
    for connections in args.concurrency:
        r = load({"url": url, "bodies": bodies, "mode": "closed", "connections": connections,
                  "seconds": args.seconds})  # fmt: skip
        s = r["status"].get("200", {})
        out["closed"][connections] = {"rps": r["rps"], "p50": s.get("p50_ms"), "p99": s.get("p99_ms"),
                                      "failed": r["requests"] - r["ok"]}  # fmt: skip
        print(f"  {name:14} closed {connections:>3} conns: {r['rps']:8.0f} rps  p50 {s.get('p50_ms')} ms  "
              f"p99 {s.get('p99_ms')} ms  failed {r['requests'] - r['ok']}", flush=True)  # fmt: skip
    closed = out["closed"].values()
    out["max_rps"] = max(c["rps"] for c in closed)
    out["rps_p99_10ms"] = max(
        (c["rps"] for c in closed if c["p99"] is not None and c["p99"] <= 10), default=0.0
    )
    return out


def overload(url: str, bodies: list[dict[str, Any]], rate: float, args: argparse.Namespace) -> dict[str, Any]:
    r = load({"url": url, "bodies": bodies, "mode": "open", "rate": rate, "seconds": args.seconds,
              "connections": 256})  # fmt: skip
    by = r["status"]
    shed = sum(by.get(s, {}).get("count", 0) for s in ("429", "503"))
    admitted = r["requests"] - shed
    return {"offered_rps": rate, "requests": r["requests"], "ok": r["ok"], "shed": shed, "admitted": admitted,
            "admitted_ok_share": r["ok"] / admitted if admitted else float("nan"),
            "shed_sent_p50_ms": max((by[s].get("sent_p50_ms", 0.0) for s in ("429", "503") if s in by), default=None),
            "shed_sent_p99_ms": max((by[s].get("sent_p99_ms", 0.0) for s in ("429", "503") if s in by), default=None),
            "ok_p99_ms": by.get("200", {}).get("p99_ms"), "ok_sent_p99_ms": by.get("200", {}).get("sent_p99_ms"),
            "errors": {s: v["count"] for s, v in by.items() if s not in ("200", "429", "503")}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per load run")
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500, 1000])
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8, 16, 64]
    )
    parser.add_argument("--repeat", type=int, default=1, help="open-loop repetitions (medians)")
    parser.add_argument("--no-peer", action="store_true", help="skip mlflow models serve")
    args = parser.parse_args()
    root = WORK / "project"
    began = time.perf_counter()
    bodies, model_file = build(root)
    print(f"built the project and the model in {time.perf_counter() - began:.1f} s", flush=True)
    results: dict[str, Any] = {}

    at = port()
    server = start([sys.executable, str(HERE / "serving_floor.py"), str(model_file), str(at)], at, root)
    try:
        results["floor"] = measure("floor", f"http://127.0.0.1:{at}/predict", bodies["floor"], args)
    finally:
        stop(server)

    at = port()
    mloop_cli = [sys.executable, "-m", "mloop.cli.main", "--project", str(root), "serve", "--port", str(at)]
    server = start(mloop_cli, at, root)
    try:
        results["mloop"] = measure("mloop", f"http://127.0.0.1:{at}/v1/endpoints/bench/predict",
                                   bodies["mloop"], args)  # fmt: skip
        results["batched"] = measure("mloop batched", f"http://127.0.0.1:{at}/v1/endpoints/bench_batched/predict",
                                     bodies["mloop"], args)  # fmt: skip
    finally:
        stop(server)

    if not args.no_peer and (PEER / "mlflow").exists():
        saved = WORK / "mlflow-model"
        shutil.rmtree(saved, ignore_errors=True)
        subprocess.run([str(PEER / "python"), "-c", SAVE_MLFLOW, str(model_file), str(saved)], check=True,
                       capture_output=True)  # fmt: skip
        at = port()
        command = [str(PEER / "mlflow"), "models", "serve", "-m", str(saved), "--env-manager", "local",
                   "--host", "127.0.0.1", "--port", str(at)]  # fmt: skip
        server = start(command, at, WORK, seconds=180)
        try:
            results["mlflow"] = measure(
                "mlflow serve", f"http://127.0.0.1:{at}/invocations", bodies["mlflow"], args
            )
        finally:
            stop(server)

    at = port()
    server = start([*mloop_cli[:-1], str(at)], at, root)
    try:
        load({"url": f"http://127.0.0.1:{at}/v1/endpoints/bench/predict", "bodies": bodies["mloop"],
              "mode": "closed", "connections": 8, "seconds": 2})  # fmt: skip
        saturation = max(results["mloop"]["max_rps"], results["batched"]["max_rps"])
        results["overload"] = overload(f"http://127.0.0.1:{at}/v1/endpoints/bench/predict", bodies["mloop"],
                                       2 * results["mloop"]["max_rps"], args)  # fmt: skip
        results["overload"]["saturation_rps"] = saturation
    finally:
        stop(server)
    report(results)
    (WORK / "results.json").write_text(json.dumps(results, indent=2, default=str))


def report(results: dict[str, Any]) -> None:
    print("\nserver          " + "".join(f"{r:>7} rps p50/p99 ms " for r in results["floor"]["open"])
          + "  max rps   rps at p99<=10ms")  # fmt: skip
    for key in ("floor", "mloop", "batched", "mlflow"):
        if key not in results:
            continue
        r = results[key]
        cells = "".join(f"{o['p50']:>10.2f} / {o['p99']:<9.2f}" + ("!" if o["failed"] or o["behind"] > 0.5 else " ")
                        for o in r["open"].values())  # fmt: skip
        print(f"{r['name']:15} {cells} {r['max_rps']:>8.0f}   {r['rps_p99_10ms']:>8.0f}")
    print("(! = failed requests, or the load could not be kept up: the server is past its capacity)")
    floor, mine, batched = results["floor"], results["mloop"], results["batched"]
    at = 500 if 500 in floor["open"] else next(iter(floor["open"]))
    d50 = mine["open"][at]["p50"] - floor["open"][at]["p50"]
    d99 = mine["open"][at]["p99"] - floor["open"][at]["p99"]
    print(
        f"\noverhead over the floor at {at} rps: p50 +{d50:.2f} ms (goal <= 1), p99 +{d99:.2f} ms (goal <= 3)"
    )
    share = batched["rps_p99_10ms"] / floor["max_rps"]
    print(f"batched throughput at p99 <= 10 ms: {batched['rps_p99_10ms']:.0f} rps = {share:.0%} of the floor's "
          f"max {floor['max_rps']:.0f} rps (goal >= 50%)")  # fmt: skip
    if "mlflow" in results:
        best = max(mine["max_rps"], batched["max_rps"])
        print(f"max throughput vs mlflow models serve: {best:.0f} / {results['mlflow']['max_rps']:.0f} rps = "
              f"{best / results['mlflow']['max_rps']:.1f}x (goal >= 3x)")  # fmt: skip
    o = results["overload"]
    print(f"overload at {o['offered_rps']:.0f} rps offered (2x mloop's max): {o['ok']} ok, {o['shed']} shed, "
          f"{o['admitted_ok_share']:.4%} of admitted ok (goal >= 99.9%), shed answered p50 "
          f"{o['shed_sent_p50_ms']} / p99 {o['shed_sent_p99_ms']} ms from the send (goal <= 5); admitted p99 {o['ok_sent_p99_ms']} ms from the "
          f"send, {o['ok_p99_ms']} ms from the schedule; other errors {o['errors']}")  # fmt: skip


if __name__ == "__main__":
    main()

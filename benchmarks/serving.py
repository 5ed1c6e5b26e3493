"""Benchmark: the inference service (``mloop serve``) against a bare FastAPI floor and ``mlflow models serve``.

One LightGBM model (100 trees, 31 leaves, binary) on 20 features, served by:

- **floor**: benchmarks/serving_floor.py, a bare FastAPI + uvicorn app that reads all 20 features from the
  request and calls ``booster.predict`` (no validation, no log, no metrics);
- **mloop**: ``mloop serve`` (one worker, default settings), endpoint ``bench_sent``: the same 20 features
  in the request, signature check, prediction, prediction log, Prometheus metrics: the like-for-like figure;
- **mloop lookup**: endpoint ``bench``: 10 features sent, 10 looked up in the online store (SQLite);
- **mloop batched**: endpoint ``bench_batched`` (as ``bench_sent``, deployed with ``max_batch_size=32,
  max_wait_ms=1``);
- **mloop 2 workers**: ``mloop serve --workers 2``, endpoint ``bench_sent``;
- **mlflow**: ``mlflow models serve --env-manager local`` of the booster saved with ``mlflow.lightgbm``
  (MLflow 3.17.2 in its throwaway venv), all 20 features in a ``dataframe_split`` body.

Each server runs alone, its load from a separate process on loopback (2 cores: one for the server, one for
the load): closed loop at --concurrency with wrk (``apt-get install wrk``; benchmarks/loadgen.py when wrk is
missing), then open loop at --rates and at 80% of mloop's capacity with benchmarks/loadgen.py (latency
from each request's scheduled time: coordinated-omission safe). For each run: throughput, p50/p99/p99.9/
max, requests over 10 ms, shed requests (429/503), and for mloop the longest event-loop lag the server
measured itself (``mloop_event_loop_lag_seconds``: the upper bound of the highest bucket that counted a
measurement during the run). Then the overload run: mloop, open loop at twice its capacity with 256
connections: the share of admitted requests answered 200 and how fast the shed ones got their 503.

    .venv/bin/python benchmarks/serving.py                       # about 8 minutes
    .venv/bin/python benchmarks/serving.py --seconds 4 --no-peer

The peer venv:  python3 -m venv benchmarks/.peers/mlflow && benchmarks/.peers/mlflow/bin/pip install
"mlflow==3.17.2" "lightgbm==4.7.0"

Goals (issue 18): at c=1 and open-loop rates up to 80% of capacity, p99 <= 3x the floor's and <= 5 ms; at
c=16 p99 <= 3x the floor's and zero shed; p99.9 <= 20 ms; longest loop stall <= 10 ms; zero shed below 80%
of capacity; throughput >= 80% of the floor's without batching, >= the floor's with; >= 3x MLflow's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from serving_setup import HERE, PEER, WORK, build, port, start, stop

LUA = HERE / "wrk_report.lua"


def load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "-"], input=json.dumps(config),
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def wrk(url: str, bodies: Path, connections: int, seconds: float) -> dict[str, Any]:
    """Closed loop at ``connections`` with wrk, in loadgen's terms."""
    parts = urlsplit(url)
    env = {"WRK_PATH": parts.path, "WRK_BODIES": str(bodies), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(LUA),
                          f"{parts.scheme}://{parts.netloc}"], env=env, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    r = json.loads(out.split("WRK ", 1)[1])
    ok = r["requests"] - r["non2xx"]
    return {"rps": ok / r["seconds"], "p50": r["p50_ms"], "p99": r["p99_ms"], "p999": r["p999_ms"],
            "max": r["max_ms"], "over10": r["over_10ms"], "shed": r["non2xx"], "errors": r["socket_errors"]}  # fmt: skip


def closed(
    url: str, bodies: list[dict[str, Any]], path: Path, connections: int, seconds: float
) -> dict[str, Any]:
    if shutil.which("wrk"):
        return wrk(url, path, connections, seconds)
    r = load({"url": url, "bodies": bodies, "mode": "closed", "connections": connections, "seconds": seconds})
    return _figures(r)


def opened(
    url: str, bodies: list[dict[str, Any]], rate: float, seconds: float, connections: int = 64
) -> dict[str, Any]:
    r = load({"url": url, "bodies": bodies, "mode": "open", "rate": rate, "seconds": seconds,
              "connections": connections})  # fmt: skip
    return {**_figures(r), "behind": r["behind_s"]}


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    ok = r["status"].get("200", {})
    shed = sum(r["status"].get(s, {}).get("count", 0) for s in ("429", "503"))
    return {"rps": r["rps"], "p50": ok.get("p50_ms"), "p99": ok.get("p99_ms"), "p999": ok.get("p999_ms"),
            "max": ok.get("max_ms"), "over10": ok.get("over_10ms", 0), "shed": shed,
            "errors": r["requests"] - r["ok"] - shed}  # fmt: skip


def lag_buckets(base: str) -> dict[float, float]:
    """The server's loop-lag histogram: {upper bound in seconds: cumulative count}."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("mloop_event_loop_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(bound)] = float(line.rsplit(" ", 1)[1])
    return out


def max_lag_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The upper bound (ms) of the highest bucket that counted a measurement between the two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    for i in range(len(bounds) - 1, 0, -1):
        if counts[i] > counts[i - 1]:
            return bounds[i] * 1000
    return bounds[0] * 1000 if counts and counts[0] > 0 else None


def measure(name: str, url: str, bodies: list[dict[str, Any]], args: argparse.Namespace, rates: list[float],
            metrics: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Closed-loop runs at each concurrency, then open-loop runs at each rate; ``metrics``: the server's
    base URL, for its own loop-lag figure."""
    path = WORK / f"bodies-{name.replace(' ', '_')}.txt"
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    load({"url": url, "bodies": bodies, "mode": "closed", "connections": 8, "seconds": 2})  # warm up
    runs: dict[str, dict[str, Any]] = {}
    plan = [(f"c={c}", lambda c=c: closed(url, bodies, path, c, args.seconds)) for c in args.concurrency]
    plan += [(f"{r:.0f} rps", lambda r=r: opened(url, bodies, r, args.seconds)) for r in rates]
    for label, run in plan:
        before = lag_buckets(metrics) if metrics else {}
        figures = run()
        if metrics:
            figures["lag"] = max_lag_ms(before, lag_buckets(metrics))
        runs[label] = figures
        print(f"  {name:16} {label:>9}: {row(figures)}", flush=True)
    return {
        "name": name,
        "runs": runs,
        "max_rps": max((r["rps"] for k, r in runs.items() if k.startswith("c=")), default=0.0),
    }


def row(f: dict[str, Any]) -> str:
    lag = f.get("lag")
    return (f"{f['rps']:7.0f} rps  p50 {f['p50'] or 0:6.2f}  p99 {f['p99'] or 0:7.2f}  p99.9 {f['p999'] or 0:7.2f}  "
            f"max {f['max'] or 0:7.1f} ms  >10ms {f['over10']:5}  shed {f['shed']:5}  "
            f"stall {'-' if lag is None else f'<={lag:g}'} ms" + ("  BEHIND" if f.get("behind", 0) > 0.5 else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per load run")
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500, 1000, 2000]
    )
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    parser.add_argument("--no-peer", action="store_true", help="skip mlflow models serve")
    args = parser.parse_args()
    root = WORK / "project"
    began = time.perf_counter()
    bodies, model_file = build(root)
    print(f"built the project and the model in {time.perf_counter() - began:.1f} s", flush=True)
    results: dict[str, Any] = {}
    mloop_cli = [sys.executable, "-m", "mloop.cli.main", "--project", str(root), "serve", "--port"]

    def endpoint(at: int, name: str) -> str:
        return f"http://127.0.0.1:{at}/v1/endpoints/{name}/predict"

    at = port()
    server = start([*mloop_cli, str(at)], at, root)
    base = f"http://127.0.0.1:{at}"
    try:  # mloop first: its capacity sets the open-loop rate at 80% of it for every server
        results["mloop"] = measure(
            "mloop", endpoint(at, "bench_sent"), bodies["sent"], args, args.rates, base
        )
        capacity = results["mloop"]["max_rps"]
        rates = [*args.rates, round(0.8 * capacity)]
        results["mloop"]["runs"].update(
            measure("mloop", endpoint(at, "bench_sent"), bodies["sent"],
                    argparse.Namespace(**{**vars(args), "concurrency": []}), rates[-1:], base)["runs"]
        )  # fmt: skip
        results["lookup"] = measure(
            "mloop lookup", endpoint(at, "bench"), bodies["lookup"], args, rates, base
        )
        results["batched"] = measure(
            "mloop batched", endpoint(at, "bench_batched"), bodies["sent"], args, [], base
        )
        load({"url": endpoint(at, "bench_sent"), "bodies": bodies["sent"], "mode": "closed", "connections": 8,
              "seconds": 2})  # fmt: skip
        over = load({"url": endpoint(at, "bench_sent"), "bodies": bodies["sent"], "mode": "open",
                     "rate": 2 * capacity, "seconds": args.seconds, "connections": 256})  # fmt: skip
        results["overload"] = overload(over, 2 * capacity)
    finally:
        stop(server)

    at = port()
    server = start([sys.executable, str(HERE / "serving_floor.py"), str(model_file), str(at)], at, root)
    try:
        results["floor"] = measure("floor", f"http://127.0.0.1:{at}/predict", bodies["sent"], args, rates)
    finally:
        stop(server)

    at = port()
    server = start([*mloop_cli, str(at), "--workers", "2"], at, root)
    try:
        results["workers"] = measure("mloop 2 workers", endpoint(at, "bench_sent"), bodies["sent"],
                                     argparse.Namespace(**{**vars(args), "concurrency": [16, 64]}), [],
                                     f"http://127.0.0.1:{at}")  # fmt: skip
    finally:
        stop(server)

    if not args.no_peer and (PEER / "mlflow").exists():
        saved = WORK / "mlflow-model"
        shutil.rmtree(saved, ignore_errors=True)
        save = "import sys, lightgbm, mlflow.lightgbm\nmlflow.lightgbm.save_model(lightgbm.Booster(model_file=sys.argv[1]), sys.argv[2])"
        subprocess.run([str(PEER / "python"), "-c", save, str(model_file), str(saved)], check=True,
                       capture_output=True)  # fmt: skip
        at = port()
        command = [str(PEER / "mlflow"), "models", "serve", "-m", str(saved), "--env-manager", "local",
                   "--host", "127.0.0.1", "--port", str(at)]  # fmt: skip
        server = start(command, at, WORK, seconds=180)
        try:
            results["mlflow"] = measure("mlflow serve", f"http://127.0.0.1:{at}/invocations", bodies["mlflow"],
                                        args, args.rates[:2])  # fmt: skip
        finally:
            stop(server)
    report(results, rates)
    (WORK / "results.json").write_text(json.dumps(results, indent=2, default=str))


def overload(r: dict[str, Any], rate: float) -> dict[str, Any]:
    by = r["status"]
    shed = sum(by.get(s, {}).get("count", 0) for s in ("429", "503"))
    admitted = r["requests"] - shed
    refusals = [by[s] for s in ("429", "503") if s in by]
    return {"offered_rps": rate, "ok": r["ok"], "shed": shed, "admitted": admitted,
            "admitted_ok_share": r["ok"] / admitted if admitted else float("nan"),
            "shed_sent_p50_ms": max((s.get("sent_p50_ms", 0.0) for s in refusals), default=None),
            "shed_sent_p99_ms": max((s.get("sent_p99_ms", 0.0) for s in refusals), default=None),
            "ok_sent_p99_ms": by.get("200", {}).get("sent_p99_ms"),
            "errors": {s: v["count"] for s, v in by.items() if s not in ("200", "429", "503")}}  # fmt: skip


def report(results: dict[str, Any], rates: list[float]) -> None:
    print("\nserver           load       figures")
    for key in ("floor", "mloop", "lookup", "batched", "workers", "mlflow"):
        for label, figures in results.get(key, {}).get("runs", {}).items():
            print(f"{results[key]['name']:16} {label:>9}  {row(figures)}")
    floor, mine = results["floor"]["runs"], results["mloop"]["runs"]
    capacity = results["mloop"]["max_rps"]
    print(f"\ngoals (mloop = endpoint bench_sent, one worker; capacity {capacity:.0f} rps):")
    checks = []
    for label in ["c=1", *[f"{r:.0f} rps" for r in rates if r <= 0.8 * capacity + 1]]:
        m, f = mine[label], floor[label]
        checks.append((f"{label}: p99 {m['p99']:.2f} <= 3x floor {f['p99']:.2f} and <= 5 ms",
                       m["p99"] <= 3 * f["p99"] and m["p99"] <= 5))  # fmt: skip
        checks.append((f"{label}: {m['shed']} shed (goal 0)", m["shed"] == 0))
    if "c=16" in mine:
        m, f = mine["c=16"], floor["c=16"]
        checks.append((f"c=16: p99 {m['p99']:.2f} <= 3x floor {f['p99']:.2f}, {m['shed']} shed (goal 0)",
                       m["p99"] <= 3 * f["p99"] and m["shed"] == 0))  # fmt: skip
    calm = {
        k: v
        for k, v in mine.items()
        if k in ("c=1", "c=16") or (k.endswith("rps") and float(k.split()[0]) <= 0.8 * capacity + 1)
    }
    worst999 = max(v["p999"] for v in calm.values())
    checks.append(
        (f"p99.9 at c=1, c=16 and rates <= 80%: worst {worst999:.2f} ms (goal <= 20)", worst999 <= 20)
    )
    stall = max((v["lag"] or 0) for v in calm.values())
    checks.append((f"longest loop stall in those runs: <= {stall:g} ms (goal <= 10)", stall <= 10))
    share = capacity / results["floor"]["max_rps"]
    checks.append(
        (
            f"throughput {capacity:.0f} rps = {share:.0%} of the floor's {results['floor']['max_rps']:.0f} (goal >= 80%)",
            share >= 0.8,
        )
    )
    batched = results["batched"]["max_rps"]
    checks.append((f"batched {batched:.0f} rps = {batched / results['floor']['max_rps']:.0%} of the floor's (goal >= 100%)",
                   batched >= results["floor"]["max_rps"]))  # fmt: skip
    if "mlflow" in results:
        best = max(capacity, batched)
        checks.append((f"vs mlflow models serve: {best:.0f} / {results['mlflow']['max_rps']:.0f} rps = "
                       f"{best / results['mlflow']['max_rps']:.1f}x (goal >= 3x)", best >= 3 * results["mlflow"]["max_rps"]))  # fmt: skip
    for text, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {text}")
    w = results["workers"]["max_rps"]
    print(f"\n2 workers: {w:.0f} rps ({w / capacity:.2f}x one worker)")
    o = results["overload"]
    print(f"overload at {o['offered_rps']:.0f} rps offered (2x capacity): {o['ok']} ok, {o['shed']} shed, "
          f"{o['admitted_ok_share']:.4%} of admitted ok (goal >= 99.9%); refusals answered p50 "
          f"{o['shed_sent_p50_ms']} / p99 {o['shed_sent_p99_ms']} ms from the send (goal <= 5); admitted p99 "
          f"{o['ok_sent_p99_ms']} ms from the send; other errors {o['errors']}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: what explanations cost a real ``mloop serve`` (issue 26's serving figures).

The model of benchmarks/serving.py (LightGBM, 100 trees × 31 leaves, binary, 20 features, all sent in the
request), served by ``mloop serve`` (one worker) on two endpoints: ``bench_sent`` (explain_sample 0, the
default) and ``bench_explained`` (the same version, deployed with ``explain_sample=0.1``: one answer in ten
explained off the request path into the prediction log). Load from benchmarks/loadgen.py in a separate
process on loopback, closed loop:

1. predict throughput at --concurrency connections, explain_sample 0 against 0.1 (interleaved, --pairs
   times; the medians, since this 2-core machine is shared), and how many samples the server explained
   and dropped (``mloop_explained_predictions_total``): a cost bought by dropping every sample is no cost;
   and the server's CPU seconds per answer in each run (its process and children, from /proc), a figure
   other load on the machine disturbs less than throughput; then, below capacity (open loop at --rate), the
   CPU per answer of each endpoint, where every sample is explained as it comes;
2. at c=1: p99 of ``POST /explain`` (one row, exact TreeSHAP) against p99 of ``POST /predict`` of the
   same endpoint and rows.

    .venv/bin/python benchmarks/explain_serving.py                 # about a minute
    .venv/bin/python benchmarks/explain_serving.py --seconds 5 --concurrency 8

Goals (issue 26): sampled attribution logging at 10% costs <= 10% of predict throughput; explain p99 at
c=1 <= 3x the same endpoint's predict p99.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import mloop as ml
from serving_setup import HERE, WORK, build, port, start, stop


def load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "-"], input=json.dumps(config),
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def closed(url: str, bodies: list[dict[str, Any]], connections: int, seconds: float) -> dict[str, Any]:
    r = load({"url": url, "bodies": bodies, "mode": "closed", "connections": connections, "seconds": seconds})
    ok = r["status"].get("200", {})
    return {"rps": r["rps"], "p50": ok.get("p50_ms"), "p99": ok.get("p99_ms"), "ok": r["ok"],
            "requests": r["requests"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Per figure.")
    parser.add_argument("--concurrency", type=int, default=8, help="Connections of the throughput runs.")
    parser.add_argument("--pairs", type=int, default=3, help="Throughput runs of each endpoint, interleaved.")
    parser.add_argument("--rate", type=float, default=400.0, help="Requests/s of the runs below capacity.")
    args = parser.parse_args()
    root = WORK.parent / "explain_serving"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    bodies, _ = build(root)
    project = ml.Project.open(root, env={})
    project.deploy("bench_explained", "bench_sent", version=1, options={"explain_sample": 0.1})
    project.close()
    sent = bodies["sent"]
    at = port()
    server = start([sys.executable, "-m", "mloop.cli.main", "--project", str(root), "serve", "--port", str(at)],
                   at, root)  # fmt: skip
    base = f"http://127.0.0.1:{at}/v1/endpoints"
    try:
        for path in ("bench_sent/predict", "bench_explained/predict", "bench_sent/explain"):  # warm up
            load({"url": f"{base}/{path}", "bodies": sent, "mode": "closed", "connections": 4, "seconds": 1})
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "sampled": []}
        for _ in range(args.pairs):
            for name, endpoint in (("off", "bench_sent"), ("sampled", "bench_explained")):
                before = cpu_seconds(server.pid)
                runs[name].append(closed(f"{base}/{endpoint}/predict", sent, args.concurrency, args.seconds))
                runs[name][-1]["cpu_ms"] = (
                    (cpu_seconds(server.pid) - before) * 1000 / max(1, runs[name][-1]["ok"])
                )
                print(f"  predict c={args.concurrency} explain_sample {'0.1' if name == 'sampled' else '0  '}: "
                      f"{runs[name][-1]['rps']:,.0f} req/s, p99 {runs[name][-1]['p99']:.2f} ms, "
                      f"{runs[name][-1]['cpu_ms']:.3f} CPU ms/answer", flush=True)  # fmt: skip
        samples = explained(f"http://127.0.0.1:{at}/metrics")
        # below capacity: every sample explained as it comes, so its CPU shows in each answer's share
        partial: dict[str, dict[str, Any]] = {}
        for name, endpoint in (("off", "bench_sent"), ("sampled", "bench_explained")):
            time.sleep(3)  # the queue of the saturated runs drained
            before, done = cpu_seconds(server.pid), explained(f"http://127.0.0.1:{at}/metrics").get("ok", 0.0)
            r = load({"url": f"{base}/{endpoint}/predict", "bodies": sent, "mode": "open", "rate": args.rate,
                      "seconds": args.seconds, "connections": 16})  # fmt: skip
            time.sleep(1)
            partial[name] = {"ok": r["ok"], "p99": r["status"].get("200", {}).get("p99_ms"),
                             "cpu_ms": (cpu_seconds(server.pid) - before) * 1000 / max(1, r["ok"]),
                             "explained": explained(f"http://127.0.0.1:{at}/metrics").get("ok", 0.0) - done}  # fmt: skip
            print(
                f"  predict {args.rate:.0f} req/s open loop, {name:7}: p99 {partial[name]['p99']:.2f} ms, "
                f"{partial[name]['cpu_ms']:.3f} CPU ms/answer, {partial[name]['explained']:.0f} explained",
                flush=True,
            )
        predict = closed(f"{base}/bench_sent/predict", sent, 1, args.seconds)
        explain = closed(f"{base}/bench_sent/explain", sent, 1, args.seconds)
    finally:
        stop(server)
    off = statistics.median(r["rps"] for r in runs["off"])
    sampled = statistics.median(r["rps"] for r in runs["sampled"])
    cost = 1 - sampled / off
    answered = sum(r["ok"] for r in runs["sampled"])
    cpu = {name: statistics.median(r["cpu_ms"] for r in found) for name, found in runs.items()}
    print(
        f"server CPU per answer (medians): explain_sample 0 {cpu['off']:.3f} ms, 0.1 {cpu['sampled']:.3f} ms: "
        f"+{cpu['sampled'] / cpu['off'] - 1:.1%}"
    )
    print(
        f"bench_explained: {answered:,} answers, {samples.get('ok', 0):,.0f} explained and logged, "
        f"{samples.get('dropped', 0):,.0f} dropped (queue full), {samples.get('error', 0):,.0f} failed"
    )
    ratio = explain["p99"] / predict["p99"]
    print(f"predict throughput c={args.concurrency} (medians): explain_sample 0 {off:,.0f} req/s, 0.1 {sampled:,.0f} req/s: "
          f"cost {cost:.1%} (goal <= 10%)")  # fmt: skip
    print(f"c=1 p50/p99: predict {predict['p50']:.2f}/{predict['p99']:.2f} ms, explain {explain['p50']:.2f}/"
          f"{explain['p99']:.2f} ms: explain p99 = {ratio:.2f}x predict's (goal <= 3x)")  # fmt: skip
    out = Path(root) / "result.json"
    extra = partial["sampled"]["cpu_ms"] / partial["off"]["cpu_ms"] - 1
    print(
        f"at {args.rate:.0f} req/s: every sample explained ({partial['sampled']['explained']:.0f} of "
        f"{partial['sampled']['ok']:,} answers), server CPU per answer +{extra:.1%}"
    )
    out.write_text(json.dumps({"throughput": runs, "samples": samples, "partial": partial, "predict_c1": predict,
                               "explain_c1": explain}, indent=2))  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` and its live children (the log compactor)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def explained(url: str) -> dict[str, float]:
    """``mloop_explained_predictions_total`` of ``bench_explained`` by status, from the server's /metrics."""
    out: dict[str, float] = {}
    for line in httpx.get(url, timeout=10).text.splitlines():
        if line.startswith("mloop_explained_predictions_total{") and 'endpoint="bench_explained"' in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            out[status] = out.get(status, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


if __name__ == "__main__":
    main()

"""Benchmark: serving throughput with 1 and 2 ``mloop serve`` replicas behind HAProxy (deploy/haproxy.cfg).

The model and requests of benchmarks/serving.py (LightGBM, 100 trees, 20 features; endpoint ``bench``: 10
sent, 10 looked up in the online store), served by:

- **floor**: one replica, the load sent to it directly (no load balancer);
- **1 replica + LB**: the same replica behind HAProxy (both ``server`` lines of haproxy.cfg point at it);
- **2 replicas + LB**: two replicas of the same project behind HAProxy.

Closed loop at --concurrency with benchmarks/loadgen.py in its own process, --repeat times each (median
throughput; p50/p99 of the median run), then the CPU each part used during the runs (from /proc), which
says where the time went. The replicas share the project's metadata store and data folder; their hot
path touches neither (deployments are polled every 0.5 s, the prediction log is per replica), so the
embedded SQLite stands in for PostgreSQL here (tests/serving/test_replicas.py runs them on PostgreSQL).

    .venv/bin/python benchmarks/scale_out_serving.py                  # about 4 minutes
    .venv/bin/python benchmarks/scale_out_serving.py --seconds 3 --repeat 1 --concurrency 16

The bottleneck on a 2-core machine is the cores: two replicas, HAProxy and the load generator share
them, so a second replica adds no CPU, only another process to schedule. The figure that carries to
machines with a core per replica is the load balancer's cost per request (1 replica + LB vs floor).
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

from serving import closed
from serving_setup import HERE, WORK, build, port, start, stop

HAPROXY_CFG = HERE.parent / "deploy" / "haproxy.cfg"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its waited-for children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def _children() -> float:
    """CPU seconds of this process's finished children: the load generator runs."""
    times = os.times()
    return times.children_user + times.children_system


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def haproxy(replicas: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    at = port()
    env = {**os.environ, "MLOOP_LB_BIND": f"127.0.0.1:{at}"}
    for i, replica in enumerate((replicas * 2)[:2], start=1):  # one replica: both server lines point at it
        env[f"MLOOP_REPLICA_{i}"] = f"127.0.0.1:{replica}"
    process = subprocess.Popen([binary, "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    return process, at


def measure(
    name: str, url: str, bodies: list[dict[str, Any]], args: argparse.Namespace, parts: dict[str, int]
) -> dict[str, Any]:
    """Closed-loop runs at each concurrency; the CPU seconds of each part in ``parts`` (name -> pid)."""
    path = WORK / "scale_out_bodies.json"
    path.write_text(json.dumps(bodies))
    closed(url, bodies, path, 8, 1.0)  # warm up: connections, caches, the first compactions
    before = {part: cpu_seconds(pid) for part, pid in parts.items()}
    loadgen = _children()
    busy, total = machine_busy()
    runs: dict[str, Any] = {}
    for c in args.concurrency:
        tries = sorted((closed(url, bodies, path, c, args.seconds) for _ in range(args.repeat)),
                       key=lambda r: r["rps"])  # fmt: skip
        middle = tries[len(tries) // 2]
        runs[str(c)] = {**middle, "rps": statistics.median(r["rps"] for r in tries)}
        print(f"{name:>16}  c={c:<3} {runs[str(c)]['rps']:>7.0f} rps  p50 {middle['p50']:.2f} ms  "
              f"p99 {middle['p99']:.2f} ms  errors {middle['errors']}  shed {middle['shed']}", flush=True)  # fmt: skip
    busy_after, total_after = machine_busy()
    wall = total_after - total
    cpu = {
        part: (cpu_seconds(pid) - before[part]) / wall * (os.cpu_count() or 1) for part, pid in parts.items()
    }
    cpu["load generator"] = (_children() - loadgen) / wall * (os.cpu_count() or 1)
    machine = (busy_after - busy) / wall * (os.cpu_count() or 1)
    cpu["anything else"] = max(0.0, machine - sum(cpu.values()))  # other processes of this machine
    cpu["machine"] = machine
    print(f"{'':>16}  cores used: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()), flush=True)
    return {"runs": runs, "cores": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="per load run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per concurrency (median)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64])
    args = parser.parse_args()
    root = WORK / "scale_out"
    began = time.perf_counter()
    bodies = build(root)[0]["lookup"]
    print(f"built the project and the model in {time.perf_counter() - began:.1f} s; {os.cpu_count()} cores",
          flush=True)  # fmt: skip
    serve = [sys.executable, "-m", "mloop.cli.main", "--project", str(root), "serve", "--port"]
    path = "/v1/endpoints/bench/predict"
    results: dict[str, Any] = {}
    ports = [port(), port()]
    replicas = [start([*serve, str(at)], at, root) for at in ports]
    try:
        first = {"replica 1": replicas[0].pid}
        results["floor"] = measure(
            "floor (direct)", f"http://127.0.0.1:{ports[0]}{path}", bodies, args, first
        )
        for label, used in (("1 replica + LB", ports[:1]), ("2 replicas + LB", ports)):
            balancer, at = haproxy(used)
            try:
                time.sleep(2.5)  # HAProxy's first health checks (rise 2, a second apart)
                pids = {f"replica {i + 1}": replicas[i].pid for i in range(len(used))} | {
                    "haproxy": balancer.pid
                }
                results[label] = measure(label, f"http://127.0.0.1:{at}{path}", bodies, args, pids)
            finally:
                stop(balancer)
    finally:
        for replica in replicas:
            stop(replica)
    report(results, args.concurrency)
    (WORK / "scale_out_results.json").write_text(json.dumps(results, indent=2, default=str))


def report(results: dict[str, Any], concurrency: list[int]) -> None:
    floor = results["floor"]["runs"]
    print("\n| setup | connections | rps | p50 ms | p99 ms | rps / floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        for c in concurrency:
            r = result["runs"][str(c)]
            ratio = r["rps"] / floor[str(c)]["rps"]
            print(f"| {name} | {c} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {ratio:.2f} |")
    print("\ncores used during each setup's runs (of the machine's):")
    for name, result in results.items():
        print(f"- {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result["cores"].items()))


if __name__ == "__main__":
    main()

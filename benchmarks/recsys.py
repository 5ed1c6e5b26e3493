"""Benchmark: the recommendations case under load (issue 20's "Performance"), in one run.

1. ANN against exact search and an alternative library: ``--items`` x 64-d clustered item embeddings,
   recall@100, queries/s (one query at a time and a batch), the ratio to exact, build time and add rate
   (benchmarks/vector_index.py's code, imported).
2. The two-stage request served by a real ``mloop serve`` child process, on a project built in a temp
   folder: a torch user tower (20 pushed numeric user features -> 64-d) whose version holds the vector
   index of ``--items`` item embeddings, 4 item features per item in the online store, a LightGBM
   ``LGBMRanker`` trained on synthetic (user, item) rows (its endpoint looks up 5 user and 4 item features
   itself) and the pipeline ``recs``: retrieve k=200 -> rank -> top n=20. benchmarks/loadgen.py sends one
   user per request, open loop at ``--rate`` for ``--seconds``. Client-side p50/p99/max of the whole
   request, per stage p50/p99 from the pipeline's prediction-log rows (``stage.<name>.seconds``), errors.
   Goal: p99 <= 50 ms at 100 rps.
3. The index's build time and the incremental add rate through ``project.models.add_to_index``, and the
   time to load the index with its additions (what a server does when the stamp moves).

The load average (``os.getloadavg``) is printed beside each part: on a shared machine it explains much.

    PYTHONPATH=src .venv/bin/python benchmarks/recsys.py            # 100k items, 30 s at 100 rps
    PYTHONPATH=src .venv/bin/python benchmarks/recsys.py --quick    # 10k items, 10 s
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

import mloop as ml
import vector_index as ann  # benchmarks/vector_index.py: this script's folder is on sys.path
from mloop.examples.fraud.live import Server
from mloop.models.vector_index import VectorIndex
from mloop.predictions.log import PredictionLog, predictions_folder

HERE = Path(__file__).parent
DIM = 64
USER_FEATURES = [f"u{i}" for i in range(20)]
RANKER_USER = USER_FEATURES[:5]  # the user features the ranker was trained on
ITEM_FEATURES = ["price", "popularity", "category_code", "age_days"]
STAGES = ["retrieve", "rank", "top"]


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}), {os.cpu_count()} cores"


def pct(values: Any, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) * 1000


# ---- 1. ANN against exact and usearch ---------------------------------------------------------------


def compare_libraries(args: argparse.Namespace) -> None:
    print(f"\n## 1. ANN vs exact: {args.items:,} items x {DIM}-d (clustered), k=100, {args.queries:,} "
          f"queries; {load_average()}", flush=True)  # fmt: skip
    add = args.items // 10
    everything = ann.data(args.items + add + args.queries, DIM, "clustered", seed=0)
    base, extra = everything[: args.items], everything[args.items : args.items + add]
    queries = everything[args.items + add :]
    truth = ann.exact_topk(base, queries, 100)
    floor = ann.run_exact(base, extra, queries, 100, truth)
    sides = [floor]
    for runner in (ann.run_faiss, ann.run_usearch):
        try:
            sides.append(runner(base, extra, queries, 100, truth, 32, 100, 128))
        except ImportError as exc:
            print(f"  ({runner.__name__[4:]} not installed: {exc})")
    ann.show(sides, floor)


# ---- 2. the served two-stage request ----------------------------------------------------------------


def build_project(root: Path, args: argparse.Namespace) -> tuple[ml.Project, dict[str, float]]:
    """Feature views and pushed features, the user tower v1 with its index, the ranker, both endpoints
    deployed and the pipeline in mloop.yaml; the seconds each step took."""
    import lightgbm
    import torch

    took: dict[str, float] = {}
    rng = np.random.default_rng(0)
    project = ml.Project.open(root, env={})
    user = ml.Entity("user", join_keys=["user_id"])
    item = ml.Entity("item", join_keys=["item_id"])
    ufields = [ml.Field(c, "float64") for c in USER_FEATURES]
    ifields = [ml.Field(c, "float64") for c in ITEM_FEATURES]
    users = ml.PushSource(
        "users", schema=[ml.Field("user_id", "int64"), ml.Field("ts", "timestamp"), *ufields]
    )
    items = ml.PushSource(
        "items", schema=[ml.Field("item_id", "int64"), ml.Field("ts", "timestamp"), *ifields]
    )
    project.apply([user, item, users, items,
                   ml.FeatureView("user_profile", entities=[user], source=users, ttl="30d", features=ufields),
                   ml.FeatureView("item_stats", entities=[item], source=items, ttl="30d", features=ifields)])  # fmt: skip
    now = datetime.now(UTC)
    profile = pd.DataFrame(rng.normal(size=(args.users, len(USER_FEATURES))), columns=USER_FEATURES)
    catalogue = pd.DataFrame({
        "price": rng.lognormal(3, 1, args.items), "popularity": rng.pareto(1.5, args.items),
        "category_code": rng.integers(0, 8, args.items).astype(float),
        "age_days": rng.integers(0, 365, args.items).astype(float)})  # fmt: skip
    started = time.perf_counter()
    project.features.push("users", pd.DataFrame({"user_id": np.arange(args.users), "ts": now, **profile}))
    project.features.push("items", pd.DataFrame({"item_id": np.arange(args.items), "ts": now, **catalogue}))
    took["push features"] = time.perf_counter() - started

    torch.manual_seed(0)
    tower = torch.nn.Sequential(
        torch.nn.Linear(len(USER_FEATURES), 64), torch.nn.ReLU(), torch.nn.Linear(64, DIM)
    )
    project.models.register("user_tower", tower.eval(), input_example=profile.head(8),
                            lineage={"features": [f"user_profile:{c}" for c in USER_FEATURES]})  # fmt: skip
    vectors = ann.data(args.items, DIM, "clustered", seed=1)
    attributes = pd.DataFrame({"category": catalogue["category_code"].astype(int).astype(str),
                               "in_stock": rng.random(args.items) < 0.95})  # fmt: skip
    started = time.perf_counter()
    index = VectorIndex.build(np.arange(args.items), vectors, attributes, source=("user_tower", 1))
    took["index build"] = time.perf_counter() - started
    started = time.perf_counter()
    project.models.attach_index("user_tower", 1, index)
    took["index attach"] = time.perf_counter() - started

    # Ranker: 2,000 synthetic queries of 20 candidates; a click is likelier for popular, cheap items that
    # match the user's first features, and for a high retrieval score.
    queries, per = 2_000, 20
    qu = rng.integers(0, args.users, queries).repeat(per)
    qi = rng.integers(0, args.items, queries * per)
    x = pd.concat([profile.iloc[qu][RANKER_USER].reset_index(drop=True),
                   catalogue.iloc[qi].reset_index(drop=True)], axis=1)  # fmt: skip
    x["retrieval_score"] = rng.normal(size=len(x))
    utility = (x["u0"] * (x["category_code"] - 3.5) / 3 + np.log1p(x["popularity"]) - np.log(x["price"]) / 3
               + x["retrieval_score"] + rng.normal(size=len(x)))  # fmt: skip
    label = (utility > np.quantile(utility, 0.8)).astype(int) + (utility > np.quantile(utility, 0.95))
    started = time.perf_counter()
    ranker = lightgbm.LGBMRanker(objective="lambdarank", n_estimators=100, num_leaves=31, verbose=-1)
    ranker.fit(x, label, group=[per] * queries)
    project.models.register("ranker", ranker, input_example=x.head(200), lineage={
        "features": [f"user_profile:{c}" for c in RANKER_USER] + [f"item_stats:{c}" for c in ITEM_FEATURES]})  # fmt: skip
    took["ranker fit + register"] = time.perf_counter() - started
    project.deploy("recs-towers", "user_tower", version=1)
    project.deploy("recs-ranker", "ranker", version=1)

    settings = root / "mloop.yaml"
    config = (yaml.safe_load(settings.read_text()) if settings.exists() else None) or {}
    config["pipelines"] = {"recs": {"n": args.n, "stages": [
        {"name": "retrieve", "kind": "retrieve", "endpoint": "recs-towers", "k": args.k},
        {"name": "rank", "kind": "rank", "endpoint": "recs-ranker"},
        {"name": "top", "kind": "top", "n": args.n}]}}  # fmt: skip
    if args.max_queue_ms is not None:  # the guard's shedding threshold (docs/serving: serving.max_queue_ms)
        config.setdefault("serving", {})["max_queue_ms"] = args.max_queue_ms
    settings.write_text(yaml.safe_dump(config, sort_keys=False))
    return project, took


class Served(Server):
    """The fraud demo's :class:`Server` (``mloop serve`` on a free loopback port, ``wait``, ``stop``) with
    ``--workers``."""

    def __init__(self, folder: Path, workers: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "mloop.cli.main", "-C", str(folder), "serve", "--port", str(self.port),
                   "--workers", str(workers)]  # fmt: skip
        self.log = (folder / ".mloop" / "server.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)


def loadgen(config: dict[str, Any]) -> dict[str, Any]:
    """benchmarks/loadgen.py in its own process (its own interpreter and GIL), one JSON report."""
    done = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "-"], input=json.dumps(config),
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def serve_and_load(root: Path, project: ml.Project, args: argparse.Namespace) -> None:
    print(f"\n## 2. two-stage request over HTTP: retrieve k={args.k} -> rank -> top n={args.n}, "
          f"{args.items:,} items, {args.users:,} users, open loop for {args.seconds:g} s at each rate, "
          f"mloop serve --workers {args.workers}, serving.max_queue_ms {args.max_queue_ms or 'default (10)'}",
          flush=True)  # fmt: skip
    server = Served(root, args.workers)
    runs: list[tuple[float, datetime, datetime, dict[str, Any], str]] = []
    try:
        server.wait("recs-towers")
        server.wait("recs-ranker")
        url = f"{server.url}/v1/endpoints/recs/predict"
        rng = np.random.default_rng(3)
        sample = warm_up(url, rng, args.users)
        got = sample["predictions"][0]
        print(
            f"  a sample answer: {len(got['items'])} items, cold_start {got['cold_start']}; stages "
            + ", ".join(
                f"{s}: v{v['version']} {v['seconds'] * 1000:.1f} ms" for s, v in sample["stages"].items()
            )
        )
        bodies = [{"inputs": [{"user_id": int(u)}]} for u in rng.integers(0, args.users, 2_000)]
        for rate in args.rate:
            before, load = datetime.now(UTC), os.getloadavg()[0]
            report = loadgen({"url": url, "bodies": bodies, "mode": "open", "rate": rate,
                              "seconds": args.seconds, "connections": 32})  # fmt: skip
            runs.append((rate, before, datetime.now(UTC), report, f"{load:.1f}-{os.getloadavg()[0]:.1f}"))
            time.sleep(1)  # the guard's shedding state clears between rates
    finally:
        server.stop()  # closes the server's prediction log: every row is on disk
    log = PredictionLog(predictions_folder(project.settings), parquet=project.parquet)
    logged = log.read("recs", since=runs[0][1] if runs else None)
    log.close()
    head = "  ".join(f"{s + ' p50/p99':>15}" for s in [*STAGES, "server"])
    print(
        f"  {'rps':>5} {'load avg':>9} {'answered':>9} {'errors':>7} {'client p50':>10} {'p99':>7} {'max':>7}  {head}"
    )
    for rate, since, until, report, load in runs:
        ok = report["status"].get("200", {})
        errors = report["requests"] - report["ok"]
        rows = logged[(logged["ts"] >= since) & (logged["ts"] < until)]
        split = [rows[f"stage.{s}.seconds"] for s in STAGES] + [rows["latency_s"]]
        stages = "  ".join(f"{pct(x, 50):6.2f} /{pct(x, 99):7.2f}" if len(x) else f"{'-':>15}" for x in split)
        print(f"  {rate:5g} {load:>9} {report['ok']:9,} {errors:7,} {ok.get('p50_ms', float('nan')):10.2f} "
              f"{ok.get('p99_ms', float('nan')):7.2f} {ok.get('max_ms', float('nan')):7.2f}  {stages}")  # fmt: skip
    for rate, _, _, report, _ in runs:
        statuses = {s: v["count"] for s, v in report["status"].items() if s != "200"}
        verdict = (
            "met" if report["status"].get("200", {}).get("p99_ms", 1e9) <= 50 and not statuses else "MISSED"
        )
        print(f"  {rate:g} rps: {report['rps']:.1f} answers/s, not 200: {statuses or 'none'}, generator "
              f"{report['behind_s']:.3f} s behind; p99 <= 50 ms with no errors: {verdict}")  # fmt: skip
    print(
        "  (ms; stages and server from the pipeline's prediction-log rows, stage.<name>.seconds and latency_s;"
        " client from benchmarks/loadgen.py, from each request's scheduled time)"
    )


def warm_up(url: str, rng: np.random.Generator, users: int) -> dict[str, Any]:
    """30 answers in a row (a first call loads the models and stalls the event loop, so the server's
    guard sheds a while: wait it out); the last answer. Each on a new connection, so that every worker
    of ``--workers N`` gets some (the kernel spreads connections, not requests, over them)."""
    with httpx.Client(timeout=30, headers={"Connection": "close"}) as client:
        ok, deadline = 0, time.monotonic() + 60
        while True:
            answer = client.post(url, json={"inputs": [{"user_id": int(rng.integers(0, users))}]})
            if answer.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            answer.raise_for_status()
            ok += 1
            if ok == 30:
                result: dict[str, Any] = answer.json()
                return result


# ---- 3. index build and incremental adds through the registry ---------------------------------------


def grow_index(project: ml.Project, took: dict[str, float], args: argparse.Namespace) -> None:
    print(f"\n## 3. index of {args.items:,} items in the registry; {load_average()}", flush=True)
    print(f"  build (faiss HNSW, VectorIndex.build) {took['index build']:.2f} s, attach_index "
          f"{took['index attach']:.2f} s; pushing {args.items:,} items' and {args.users:,} users' features "
          f"{took['push features']:.2f} s; ranker fit + register {took['ranker fit + register']:.2f} s")  # fmt: skip
    started = time.perf_counter()
    project.models.index("user_tower", 1)
    print(
        f"  project.models.index, no additions (what a server loads first): {time.perf_counter() - started:.2f} s"
    )
    rng = np.random.default_rng(4)
    next_id = args.items
    for batch, count in ((1, 20), (100, 10), (1_000, 3)):
        vectors = ann.data(batch * count, DIM, "clustered", seed=5)
        started = time.perf_counter()
        for j in range(count):
            ids = np.arange(next_id, next_id + batch)
            attributes = pd.DataFrame({"category": rng.integers(0, 8, batch).astype(str), "in_stock": True})
            project.models.add_to_index(
                "user_tower", 1, ids, vectors[j * batch : (j + 1) * batch], attributes
            )
            next_id += batch
        seconds = time.perf_counter() - started
        print(f"  add_to_index, {count} calls of {batch:,} items: {count * batch / seconds:,.0f} items/s "
              f"({seconds / count * 1000:.1f} ms a call)")  # fmt: skip
    started = time.perf_counter()
    index = project.models.index("user_tower", 1)
    print(f"  project.models.index with {next_id - args.items:,} added items (what a server reloads when the "
          f"stamp moves; the additions go into the graph then): {time.perf_counter() - started:.2f} s, "
          f"{len(index):,} items")  # fmt: skip


def profile(root: Path, args: argparse.Namespace) -> None:
    """``--profile N``: N requests through the pipeline in this process under cProfile (py-spy is not
    installed here), the top functions by own time and by cumulative time."""
    import cProfile
    import pstats

    from mloop.serving.http.app import create_app

    project = ml.Project.open(root, env={})  # again: reads the pipeline from mloop.yaml
    try:
        pipelines = create_app(project).state.pipelines
        users = np.random.default_rng(6).integers(0, args.users, args.profile + 20)
        for u in users[:20]:  # warm up: index and models load on first use
            pipelines.predict(project, "recs", [{"user_id": int(u)}])
        started = time.perf_counter()
        for u in users[20:]:
            pipelines.predict(project, "recs", [{"user_id": int(u)}])
        plain = (time.perf_counter() - started) / args.profile * 1000
        print(f"\n## {args.profile} requests in process without the profiler: {plain:.2f} ms each")
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for u in users[20:]:
            pipelines.predict(project, "recs", [{"user_id": int(u)}])
        profiler.disable()
        print(f"\n## profile: {args.profile} requests in process, {(time.perf_counter() - started) / args.profile * 1000:.2f} "
              f"ms each (with the profiler's overhead); {load_average()}")  # fmt: skip
        for order in ("tottime", "cumulative"):
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(args.profile_lines)
    finally:
        project.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10k items, 10 s of load")
    parser.add_argument("--items", type=int, default=None, help="items (100,000; --quick 10,000)")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000, help="queries of part 1")
    parser.add_argument("--rate", type=float, nargs="+", default=[100.0],
                        help="requests per second (one user each); several: one load run each")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=None, help="load duration (30; --quick 10)")
    parser.add_argument("--k", type=int, default=200, help="candidates retrieved")
    parser.add_argument("--n", type=int, default=20, help="items answered")
    parser.add_argument("--profile-lines", type=int, default=25, help="functions listed per ordering")
    parser.add_argument("--workers", type=int, default=1, help="mloop serve --workers")
    parser.add_argument("--max-queue-ms", type=float, default=None,
                        help="serving.max_queue_ms of the served project (default: the server's, 10 ms)")  # fmt: skip
    parser.add_argument("--skip-ann", action="store_true", help="leave part 1 out")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead of the load: N requests in process under cProfile")  # fmt: skip
    args = parser.parse_args()
    args.items = args.items or (10_000 if args.quick else 100_000)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)
    began = time.perf_counter()
    if not args.skip_ann:
        compare_libraries(args)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project, took = build_project(root, args)
        try:
            if args.profile:
                profile(root, args)
                return
            serve_and_load(root, project, args)
            grow_index(project, took, args)
        finally:
            project.close()
    print(f"\ntotal {time.perf_counter() - began:.0f} s; {load_average()}")


if __name__ == "__main__":
    main()

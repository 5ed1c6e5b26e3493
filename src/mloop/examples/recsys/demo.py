"""``mloop demo --case recsys``: a shop's recommender end to end, on embedded defaults.

A shop's history (users with latent tastes, a catalogue with popular hits, clicks) is ingested; feature
views turn the clicks into each user's recent taste; a two-tower model is trained (in-batch negatives) and
its item tower's embeddings of the catalogue become the vector index of its version; a LightGBM lambdarank
ranker learns to order the towers' candidates from what past visitors clicked
(:mod:`~mloop.examples.recsys.candidates`). The pipeline endpoint ``recs``
(user tower → index → ranker → top 20) serves behind ``mloop serve``; simulated users ask for
recommendations and click on what they like; new items arrive every day and join the index without a
restart. Then tastes shift: the click-through rate falls, the loop retrains the towers on the newest
day of clicks, the gate checks the challenger's recall@100, an A/B split sticky by user measures it
against v1 on live clicks, and the sequential test's decision ships it. ``report.html`` in the demo's
folder shows the daily CTR per version, the A/B arms and the loop's decisions.

Time: the shop's days are simulated (each request names its time with ``at``, so the features are those
of that moment); the loop runs on wall time, as in production, with its windows scaled to the demo.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

import mloop as ml
from mloop.examples.demo import fresh_folder, platform_log
from mloop.examples.fraud.live import Server
from mloop.examples.recsys import report, shop
from mloop.examples.recsys.candidates import candidate_lists
from mloop.examples.recsys.generate import World
from mloop.examples.recsys.retrain import TowersPipeline
from mloop.examples.recsys.traffic import Shoppers
from mloop.loop.controller import LoopController
from mloop.project import Project

START = datetime(2026, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Size:
    users: int = 3_000
    items: int = 6_000
    days: int = 36  # the world's days at most: the live part ends `rounds_after` rounds after shipping
    history: int = 21  # days 0..history-1 are the shop's past; serving starts on day `history`
    shift_day: int = 23
    per_day: int = 480  # requests a simulated day
    parts: int = 4  # rounds a day (a round: requests and clicks, then ingest, materialize, a loop tick)
    train_days: int = 3  # v1's training days
    k: int = 200  # candidates the retrieve stage hands the ranker: a few percent of the catalogue
    retrain_days: int = 1  # the loop's: after a shift, only the newest clicks say what users like
    epochs: int = 8
    trees: int = 150
    min_gain: float = 0.05  # recall@100 a challenger must add to the champion's on the newest day
    ctr_below: float = 0.15  # the loop retrains when the champion's CTR over `window` falls below this
    window: str = "15s"
    cooldown: str = "20s"  # after a failed gate: about a simulated day
    rounds_after: int = 4  # rounds served after the promotion, the challenger alone (4: a day)


FULL = Size()
FAST = Size(users=600, items=1_200, days=32, history=21, shift_day=23, per_day=420, parts=3, train_days=3,
            epochs=6, trees=60, k=50, min_gain=0.1, ctr_below=0.06, window="12s", cooldown="12s",
            rounds_after=1)  # fmt: skip


def run(folder: Path, *, fast: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    size = FAST if fast else FULL
    folder = fresh_folder(folder)
    started = time.perf_counter()
    console.print(Panel.fit("[bold]mloop demo[/bold] · recommendations · the closed loop", style="magenta"))
    (folder / "mloop.yaml").write_text(
        yaml.safe_dump(
            {
                "project": "recsys-demo",
                "log_level": "ERROR",
                "pipelines": {"recs": shop.pipeline(size.k)},
                "serving": {"max_queue_ms": 50},
            }
        )  # shed only past the request budget of 50 ms
    )
    world = World.make(size.users, size.items, size.days, shift_day=size.shift_day, seed=0, start=START)
    summary: dict[str, Any] = {}
    with platform_log(folder), Project.open(folder, env={}) as project:
        console.rule(f"1 · the shop's past: {size.history} days of lists shown and clicks")
        history = world.interactions(range(size.history))
        _ingest(project, world, history, size.history - 1, console)
        console.rule("2 · features: each user's clicks per category over 7 and 30 days; items' clicks")
        shop.define(project)
        project.features.materialize(START - timedelta(days=1), START + timedelta(days=size.history))
        console.rule("3 · two towers (in-batch negatives) and the vector index of v1; the ranker")
        towers = TowersPipeline(size.users, days=size.train_days, epochs=size.epochs)
        run_v1 = towers.run(project)
        project.models.set_alias("towers", "champion", 1)
        metrics = project.runs.get(run_v1.id).metrics
        console.print(f"towers v1: recall@100 {metrics['test_recall_at_100']:.3f} on day {size.history - 1}'s "
                      f"clicks; index of {len(project.models.index('towers', 1)):,} items (faiss HNSW)")  # fmt: skip
        lists = candidate_lists(project, 1, history, world.items, size.users, START, k=size.k)
        ranked = shop.ranker(lists, trees=size.trees).run(project)
        project.models.set_alias("ranker", "champion", 1)
        rank_metrics = project.runs.get(ranked.id).metrics
        summary["offline"] = {"recall@100": metrics["test_recall_at_100"],
                              "ndcg@10": rank_metrics.get("test_ndcg_at_10"), "mrr": rank_metrics.get("test_mrr")}  # fmt: skip
        console.print(f"ranker v1: NDCG@10 {rank_metrics.get('test_ndcg_at_10', float('nan')):.3f}, MRR "
                      f"{rank_metrics.get('test_mrr', float('nan')):.3f} on the last day's lists")  # fmt: skip
        console.rule(f"4 · serve: recs = retrieve {size.k} (towers) → rank (LightGBM) → top 20")
        project.deploy("recs-towers", "towers", version=1, sticky_key="user_id")
        project.deploy("recs-ranker", "ranker", version=1)
        server = Server(folder)
        try:
            server.wait("recs-towers")
            console.print(f"mloop serve on {server.url}: POST /v1/endpoints/recs/predict")
            console.rule(f"5 · live days {size.history}–: users click what they like; tastes shift on day "
                         f"{size.shift_day}")  # fmt: skip
            summary |= _live(project, world, size, server.url, console)
        except httpx.TransportError as exc:  # the server went away: say how, and where its log is
            raise server.lost(exc) from exc
        finally:
            server.stop()
        timeline = project.loop.timeline("recs-towers")
        summary |= _outcome(timeline, size)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        summary["report"] = str(report.write(folder / "report.html", summary, timeline))
    _print_summary(summary, console)
    console.print(
        f"The report: {summary['report']} · the project: mloop -C {folder} loop timeline recs-towers"
    )
    return summary


def _outcome(timeline: list[dict[str, Any]], size: Size) -> dict[str, Any]:
    """What the loop decided, from its events: the A/B test's last figures (those of the decision when
    there was one) and the version it shipped."""
    looks = [
        e for e in timeline if e["action"] in ("loop.ab", "loop.promote", "loop.rollback") and "numbers" in e
    ]
    looks = [e for e in looks if "arms" in e["numbers"]]
    shipped = next(
        (e for e in timeline if e["action"] == "loop.promote" and str(e.get("ab")) == "True"), None
    )
    return {"ab": looks[-1]["numbers"] if looks else {}, "shift_day": size.shift_day,
            "shipped": int(shipped["champion"]) if shipped else None}  # fmt: skip


def _ingest(project: Project, world: World, history: pd.DataFrame, last_day: int, console: Console) -> None:
    items = world.items[world.items["day_added"] <= last_day]
    project.data.ingest(shop.item_rows(items), shop.SCHEMAS["items"])
    clicks = history[history["event"] == "click"]
    report = project.data.ingest(shop.click_rows(clicks, world.items), shop.SCHEMAS["clicks"])
    shown = int((history["event"] == "impression").sum())
    console.print(f"{len(world.users):,} users · {len(items):,} items · {shown:,} items shown in "
                  f"{history['request_id'].nunique():,} lists · {report.rows_accepted:,} clicks")  # fmt: skip


def _live(project: Project, world: World, size: Size, url: str, console: Console) -> dict[str, Any]:
    policy = ml.LoopPolicy(
        endpoint="recs-towers", pipeline=TowersPipeline(size.users, days=size.retrain_days, epochs=size.epochs),
        triggers=[ml.OnPerformance(metric="ctr", below=size.ctr_below, window=size.window, min_labels=150)],
        gate=ml.Gate(metric="recall@100", min_gain=size.min_gain, max_latency_ms=50, ab_metric="ctr", ab_mde=0.5,
                     ab_sticky_key="user_id"),
        # the canary's latency limit is the server's, on a 2-core machine that also runs the shoppers
        rollout=ml.Canary(max_p99_ms=None, compare=None), cooldown=size.cooldown,
    )  # fmt: skip
    controller = LoopController(project, [policy], train="inprocess")
    shopper = Shoppers(url, world)
    activity = world.users["activity"].to_numpy()
    shipped_on: int | None = None
    after = 0  # rounds served since the promotion
    for day in range(size.history, size.days):
        _new_items(project, world, day)
        # the shop's other pages (search, popular lists) keep making clicks: the stream the loop learns from
        organic = world.interactions([day], impressions=False)
        organic = organic[organic["event"] == "click"]
        taken = pd.Timestamp(START + timedelta(days=day))
        for part in range(size.parts):
            users = np.random.default_rng([3, day, part]).choice(
                world.users["user_id"].to_numpy(), size.per_day // size.parts, p=activity / activity.sum()
            )
            visits = [(int(user), day, START + timedelta(days=day, hours=8 + (14 * part + 14 * i / len(users)) / size.parts),
                       (11, day, part, i)) for i, user in enumerate(users)]  # fmt: skip
            with ThreadPoolExecutor(3) as pool:  # three shoppers at a time
                list(pool.map(lambda visit: shopper.visit(*visit), visits))
            shopper.report()
            at = visits[-1][2]
            until = (
                pd.Timestamp(at) if part < size.parts - 1 else pd.Timestamp(START + timedelta(days=day + 1))
            )
            stream = organic[(organic["ts"] > taken) & (organic["ts"] <= until)]
            clicks = pd.concat([shopper.take_clicks(), stream[["user_id", "item_id", "ts", "request_id"]]])
            taken, at = until, until.to_pydatetime()
            if len(clicks):
                project.data.ingest(shop.click_rows(clicks, world.items), shop.SCHEMAS["clicks"])
            project.features.materialize_incremental(at)
            for decision in controller.tick():
                if decision["decision"] not in ("quiet", "cooldown", "ab"):
                    console.print(f"  day {day} · [bold]{decision['decision']}[/bold]: {decision['reason']}")
                if decision["decision"] == "promote":
                    shipped_on, after = day, -1
            after += shipped_on is not None
            if after >= size.rounds_after:
                break
        today = [a for a in shopper.answers if a["day"] == day]
        versions = sorted({a["version"] for a in today if a["version"] is not None})
        ctr = {v: [a["clicked"] for a in today if a["version"] == v] for v in versions}
        console.print(f"day {day}{' (tastes shifted)' if day == size.shift_day else ''}: {len(today)} requests · "
                      + " · ".join(f"v{v} CTR {np.mean(c):.3f} of {len(c)}" for v, c in ctr.items()))  # fmt: skip
        if after >= size.rounds_after:
            break
    answers = pd.DataFrame(shopper.answers)
    stages = {s: _p99(answers[f"{s}_s"]) for s in ("retrieve", "rank", "top") if f"{s}_s" in answers}
    counts = answers.groupby(["day", "version"])["clicked"].agg(["mean", "size"])
    daily = counts.loc[counts["size"] >= 20, "mean"]  # a version's few answers after a deploy say little
    return {"shipped_on": shipped_on, "requests": len(answers), "retried_503": shopper.retried,
            "p99_ms": _p99(answers["seconds"]), "stage_p99_ms": stages, "ctr_by_day": daily.to_dict()}  # fmt: skip


def _new_items(project: Project, world: World, day: int) -> None:
    """The day's new items join the catalogue and the index of every served towers version (embedded by
    that version's item tower), without a restart."""
    new = world.new_items(day)
    if new.empty:
        return
    rows = shop.item_rows(new)
    project.data.ingest(rows, shop.SCHEMAS["items"])
    for version in project.deployments.get("recs-towers").versions:
        item_tower = project.models.load("item_tower", version)
        attributes = pd.DataFrame({"category": rows["category"], "in_stock": rows["in_stock"]})
        project.models.add_to_index("towers", version, rows["item_id"].to_numpy("int64"),
                                    shop.embed(item_tower, rows), attributes)  # fmt: skip


def _p99(seconds: pd.Series) -> float:
    values = pd.to_numeric(seconds, errors="coerce").dropna()
    return round(float(np.percentile(values, 99)) * 1000, 2) if len(values) else float("nan")


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="recommendations · summary")
    table.add_column("figure")
    table.add_column("value", justify="right")
    offline = summary.get("offline", {})
    table.add_row(
        "towers v1 recall@100 (offline, last day)", f"{offline.get('recall@100', float('nan')):.3f}"
    )
    table.add_row("ranker NDCG@10 (offline, last day)", f"{offline.get('ndcg@10') or float('nan'):.3f}")
    for arm in summary.get("ab", {}).get("arms", []):
        low, high = arm.get("low"), arm.get("high")
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        table.add_row(f"CTR v{arm['version']} (A/B arm)", f"{arm['mean']:.3f}{interval} n={arm['n']:,}")
    ab = summary.get("ab", {})
    if ab.get("lift_low") is not None and ab.get("lift_high") is not None:
        table.add_row("A/B lift (always-valid interval, p)",
                      f"{ab['lift']:+.3f} [{ab['lift_low']:+.3f}, {ab['lift_high']:+.3f}], p {ab['p_value']:.4f}")  # fmt: skip
    table.add_row(
        "A/B decision",
        f"{ab.get('decision')}" + (f": shipped v{summary['shipped']}" if summary.get("shipped") else ""),
    )
    table.add_row("p99 whole request (client, retries after a 503 included)", f"{summary.get('p99_ms')} ms")
    table.add_row(
        "requests shed (503) and retried", f"{summary.get('retried_503')} of {summary.get('requests')}"
    )
    for stage, p99 in summary.get("stage_p99_ms", {}).items():
        table.add_row(f"p99 stage {stage}", f"{p99} ms")
    table.add_row("wall time", f"{summary.get('seconds')} s")
    console.print(table)


__all__ = ["FAST", "FULL", "Size", "run"]

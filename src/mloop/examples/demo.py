"""``mloop demo``: the fraud-detection loop end to end, on embedded defaults.

A month of card payments is ingested (bad rows quarantined), customer features are built and served,
v1 is trained and deployed behind a real HTTP server, and live traffic flows with fraud labels arriving
late. Then prices rise and a new fraud pattern appears: monitoring sees the drift, the champion's live
AUC falls, the loop retrains, gates, canaries and promotes a challenger with no human step (v2, or a
later version when the gate turns an early attempt down). Then the data team ships a pipeline whose model
fails on payments in a currency it never saw; the canary catches it and rolls it back. The live days run
until that has happened (or ``days`` is reached), so a faster or slower machine tells the same story.
The timeline prints as it happens; a summary table and the HTML monitoring report end the run.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.panel import Panel

import mloop as ml
from mloop.data.schema import Dataset
from mloop.errors import MloopError
from mloop.examples.fraud import SCHEMA_YAML, features, scenario
from mloop.examples.fraud.generate import corrupt
from mloop.examples.fraud.live import Server, Traffic
from mloop.examples.fraud.summary import print_event, summarise
from mloop.loop.controller import LoopController
from mloop.project import Project

MARKER = ".mloop-demo"
LABEL_COLUMNS = ["txn_id", "customer_id", "ts", "asof", *features.REQUEST, "is_fraud"]


@dataclass(frozen=True)
class Size:
    history_days: int = 30
    history_per_day: int = 700
    per_day: int = 700  # live payments per simulated day (as many as in the history: the same customers)
    days: int = 24  # live days, at most: the run ends with the day the broken version is rolled back
    parts: int = 6  # rounds per day (a round: send, report due labels, ingest, materialize)
    shift_day: int = 2
    window: str = "5s"  # monitoring windows (wall time: a simulated day passes in seconds)
    min_requests: int = 100
    trees: int = 300
    cooldown: str = "10s"  # after a failed attempt or a promotion
    round_seconds: float = 1.2  # a round takes at least this long (wall), so windows hold similar traffic


FULL = Size()
FAST = Size(history_days=24, history_per_day=400, per_day=400, parts=4, window="3s", min_requests=30,
            trees=120, cooldown="6s", round_seconds=0.8)  # fmt: skip
START = datetime(2026, 1, 1, tzinfo=UTC)


def run(folder: Path, *, fast: bool = False, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    size = FAST if fast else FULL
    folder = _fresh(folder)
    started = time.perf_counter()
    console.print(Panel.fit("[bold]mloop demo[/bold] · fraud detection · the closed loop", style="cyan"))
    (folder / "mloop.yaml").write_text(yaml.safe_dump(_settings(size)), encoding="utf-8")
    logging.getLogger("mloop.alerts").setLevel(logging.ERROR)  # alerts print in the timeline instead
    project = Project.open(folder, env={})
    labels_path = folder / "labels.parquet"

    console.rule("1 · ingest a month of payments (bad rows quarantined with reasons)")
    history = scenario.history(size.history_days, size.history_per_day, START)
    now = START + timedelta(days=size.history_days)
    _ingest_history(project, folder, history, console)
    accepted = set(project.data.read("transactions")["txn_id"])
    known = history[history["txn_id"].isin(accepted)]

    console.rule("2 · features: customer window aggregations, materialized for serving")
    features.define(project)
    project.features.materialize(now - timedelta(days=size.history_days + 1), now)
    console.print(
        "customer_stats (7d mean, 1h/24h counts, 24h max, 24h distinct merchants) · payment (request time)"
    )

    console.rule("3 · train v1, register it as champion, deploy it behind the HTTP server")
    scenario.arrived(known, now)[LABEL_COLUMNS].to_parquet(labels_path, index=False)
    run1 = features.pipeline(str(labels_path), rounds=size.trees).run(project)
    project.models.set_alias("fraud", "champion", run1.model_version.version)
    project.deploy("fraud", "fraud", alias="champion")
    server = Server(folder)
    traffic: Traffic | None = None
    controller_project = Project.open(folder, env={})
    stop = None
    outcome: dict[str, Any] = {}
    try:
        server.wait()
        console.print(f"v1: test ROC AUC {project.runs.get(run1.id).metrics['test_roc_auc']:.3f} · "
                      f"serving on {server.url}")  # fmt: skip
        controller = LoopController(controller_project, [_policy(labels_path, size)])
        stop = controller.start(interval=1.0)
        traffic = Traffic(server.url)
        console.rule("4 · live traffic with delayed labels; the loop runs by itself")
        outcome = _live(project, controller, traffic, known, labels_path, size, console, now)
    finally:
        if stop is not None:
            stop.set()
        if traffic is not None:
            traffic.close()
        server.stop()
        controller_project.close()
    console.rule("5 · summary")
    summary = summarise(project, traffic, outcome, console)
    from mloop.monitoring.report import write_html

    report = write_html(project.monitoring.report("fraud", since="1h"), folder / "report.html")
    console.print(Panel.fit(
        f"done in {time.perf_counter() - started:.0f} s · monitoring report: {report}\n"
        f"  mloop -C {folder} loop timeline fraud\n  mloop -C {folder} monitor alerts fraud\n"
        f"  mloop -C {folder} models list", title="explore", style="green"))  # fmt: skip
    project.close()
    return summary


def _live(project: Project, controller: LoopController, traffic: Traffic, known: pd.DataFrame, labels: Path,
          size: Size, console: Console, first: datetime) -> dict[str, Any]:  # fmt: skip
    seen, swiss, labelled, last = 0, False, known, 0.0
    outcome: dict[str, Any] = {"shift": None, "shift_sim": None, "rounds": []}
    for index in range(size.days):
        start, shifted = first + timedelta(days=index), index >= size.shift_day
        if shifted and outcome["shift"] is None:
            outcome["shift"], outcome["shift_sim"] = time.time(), start
            console.print(f"[bold yellow]>> {start:%b %d}: prices rise 60%, a third of in-store payments move to "
                          "mobile, and money mules appear[/bold yellow]")  # fmt: skip
        day = scenario.live_day(index, start, size.per_day, shifted=shifted, swiss=swiss)
        step = timedelta(days=1) / size.parts
        for part in range(size.parts):
            time.sleep(max(0.0, size.round_seconds - (time.monotonic() - last)))
            last, until = time.monotonic(), start + step * (part + 1)
            payments = day[(day["ts"] >= pd.Timestamp(until - step)) & (day["ts"] < pd.Timestamp(until))]
            _record(project, payments, until)
            traffic.send(payments)
            traffic.deliver(until)
            labelled = pd.concat([labelled, payments], ignore_index=True)
            _write_labels(labelled, labels, until)
            seen = _print_new(project, seen, console, until)
            outcome["rounds"].append((time.time(), until))
        timeline = project.loop.timeline("fraud", alerts=False)
        promoted = [e for e in timeline if e["action"] == "loop.promote"]
        if promoted and not swiss:
            swiss = True
            console.print("[bold yellow]>> the Swiss market opens (payments in CHF); the team ships a pipeline "
                          "whose model converts amounts to euros[/bold yellow]")  # fmt: skip
            controller.policies = [_policy(labels, size, currency=True)]
        if promoted and _rolled_back_after(timeline, promoted[-1]["champion"]):
            break
    else:
        time.sleep(3.0)  # out of days: give the loop a moment for its last decisions
    _print_new(project, seen, console, until)
    return outcome


def _rolled_back_after(timeline: list[dict[str, Any]], champion: int) -> bool:
    return any(e["action"] == "loop.rollback" and (e.get("challenger") or 0) > champion for e in timeline)


def _record(project: Project, payments: pd.DataFrame, until: datetime) -> None:
    """The switch records each payment in the feed as it authorises it: the round's payments are
    ingested (CHF ones quarantined by the schema) and materialized before they are scored; a payment's
    features are looked up as of just before it (``at``), as in the training set, so it never counts itself."""
    path = Path(project.root) / "incoming" / f"live-{time.time_ns()}.parquet"
    payments.drop(columns=["is_fraud", "label_ts", "asof"]).to_parquet(path, index=False)
    project.data.ingest(path, "transactions")
    project.features.materialize_incremental(until)


def _write_labels(labelled: pd.DataFrame, labels: Path, now: datetime) -> None:
    """The labels that have arrived by ``now`` (CHF payments never reached the dataset), atomically."""
    usable = scenario.arrived(labelled[labelled["currency"] != "CHF"], now)
    tmp = labels.with_suffix(".tmp")
    usable[LABEL_COLUMNS].to_parquet(tmp, index=False)
    tmp.replace(labels)


def _policy(labels: Path, size: Size, *, currency: bool = False) -> ml.LoopPolicy:
    triggers: list[Any] = [ml.OnNewData(rows=1)] if currency else [
        ml.OnDrift(psi=0.2, features="top:5"),
        ml.OnPerformance(metric="auc", below=0.9, window="30s", min_labels=150),
    ]  # fmt: skip
    split = ml.TimeSplit(valid="12h", test="1d")  # the newest labels: the gate's holdout
    # a retrain must beat the champion with 90% confidence; the team's new pipeline must not be worse
    # by more than 0.01 AUC with 90% confidence (non-inferiority: the champion is near perfect by then)
    # The gate times single-row calls in the training child while the server and the traffic share the
    # cores; a limit near the model's own cost (~1 ms) would measure the machine's load, not the model.
    gate = ml.Gate(metric="auc", min_gain=-0.01 if currency else 0.0, confidence=0.9, max_latency_ms=250,
                   max_fairness_gap=None)  # fmt: skip
    return ml.LoopPolicy(
        "fraud", features.pipeline(str(labels), currency=currency, rounds=size.trees, split=split), triggers=triggers,
        gate=gate,
        rollout=ml.Canary(steps=[0.05, 0.25, 1.0], min_requests=size.min_requests, max_error_rate=0.01,
                          max_p99_ms=250, compare=None),
        rollback=ml.OnSLOBreach(), cooldown=size.cooldown,
    )  # fmt: skip


def _ingest_history(project: Project, folder: Path, history: pd.DataFrame, console: Console) -> None:
    schema = Dataset.from_yaml(SCHEMA_YAML)
    incoming = folder / "incoming"
    incoming.mkdir()
    cut = history["ts"].max() - pd.Timedelta(days=5)
    clean, feed = history[history["ts"] <= cut], history[history["ts"] > cut]
    payments = ["is_fraud", "label_ts", "asof"]
    clean.drop(columns=payments).to_parquet(incoming / "history.parquet", index=False)
    first = project.data.ingest(incoming / "history.parquet", schema)
    import csv

    with (incoming / "last-week.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(corrupt(feed.drop(columns=payments)))
    second = project.data.ingest(incoming / "last-week.csv", "transactions")
    reasons = sorted(second.by_reason.items(), key=lambda kv: -kv[1])[:4]
    console.print(f"history.parquet: {first.rows_accepted:,} rows · last-week.csv (a feed with defects): "
                  f"{second.rows_accepted:,} accepted, {second.rows_quarantined:,} quarantined")  # fmt: skip
    for reason, count in reasons:
        console.print(f"  [dim]{count:>4} × {reason}[/dim]")


def _print_new(project: Project, seen: int, console: Console, sim: datetime) -> int:
    events = [e for e in project.loop.timeline("fraud") if e["seq"] > seen]
    for event in events:
        print_event(event, console, sim)
    return events[-1]["seq"] if events else seen


def _settings(size: Size) -> dict[str, Any]:
    return {
        "project": "fraud-demo", "log_level": "WARNING",
        "serving": {"max_queue_ms": None},
        "monitoring": {"window": size.window, "label_horizon": "2m", "endpoints": {"fraud": {
            "drift": {"thresholds": {"psi": 0.2, "jensen_shannon": 0.15}, "severity": "ticket"},
            "performance": {"min_labels": 100, "slices": ["pay_device"]},
            "slos": [{"kind": "latency", "target": 0.99, "threshold_ms": 50},
                     {"kind": "availability", "target": 0.999}],
        }}},
    }  # fmt: skip


def _fresh(folder: Path) -> Path:
    """Recreate the demo folder; refuse to delete a folder the demo did not make."""
    folder = folder.resolve()
    if folder.exists():
        if not (folder / MARKER).exists() and any(folder.iterdir()):
            raise MloopError(
                f"{folder} exists and is not a demo folder; pass --dir with a new or empty folder."
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("created by `mloop demo`; deleted and recreated by the next run\n")
    return folder

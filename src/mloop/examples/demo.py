"""``mloop demo``: the fraud-detection loop end to end, on embedded defaults.

A month of card payments is ingested (bad rows quarantined), customer features are built and served,
v1 is trained and deployed behind a real HTTP server, and live traffic flows with fraud labels arriving
late. Then prices rise and a new fraud pattern appears: monitoring sees the drift, the champion's live
AUC falls, the loop retrains, gates, canaries and promotes a challenger with no human step (v2, or a
later version when the gate turns an early attempt down). Then the data team ships a pipeline whose model
fails on payments in a currency it never saw; the canary catches it and rolls it back. The live days run
until that has happened (or ``days`` is reached), so a faster or slower machine tells the same story.
The timeline prints as it happens, with a status line of what is going on; a summary table and the HTML
monitoring report end the run.

Time: the demo's rounds are its clock (:mod:`mloop.examples.fraud.clock`). The controller ticks once per
round, and a retrain spans at most a simulated day of traffic, whatever the machine's speed; the
platform's own clocks (windows, cooldowns, the logs) run on wall time, and the closing box maps one onto
the other. The platform's log goes to ``.mloop/demo.log`` while the demo runs.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.status import Status

import mloop as ml
from mloop.data.schema import Dataset
from mloop.errors import MloopError
from mloop.examples.fraud import SCHEMA_YAML, features, scenario
from mloop.examples.fraud.clock import RoundTicker, SimClock
from mloop.examples.fraud.generate import corrupt
from mloop.examples.fraud.live import Server, Traffic
from mloop.examples.fraud.summary import explore, print_event, summarise
from mloop.logs import JsonFormatter
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
    min_requests: int = 50  # a canary step's requests (a fifth of the broken version's are in CHF by then)
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
    folder = fresh_folder(folder)
    started = time.perf_counter()
    console.print(Panel.fit("[bold]mloop demo[/bold] · fraud detection · the closed loop", style="cyan"))
    (folder / "mloop.yaml").write_text(yaml.safe_dump(_settings(size)), encoding="utf-8")
    with platform_log(folder), Project.open(folder, env={}) as project, console.status("starting") as status:
        outcome, traffic = _story(project, folder, size, console, status)
        console.rule("5 · summary")
        status.update("reading the prediction log back; writing the monitoring report…")
        summary = summarise(project, traffic, outcome, console)
        from mloop.monitoring.report import write_html

        report = write_html(project.monitoring.report("fraud", since="1h"), folder / "report.html")
    seconds = time.perf_counter() - started
    console.print(explore(folder, report, outcome["clock"].span(), seconds))
    return summary


def _story(project: Project, folder: Path, size: Size, console: Console, status: Status
           ) -> tuple[dict[str, Any], Traffic | None]:  # fmt: skip
    """Steps 1 to 4: the project set up, v1 served, then the live days; what happened, and the traffic."""
    server = Server(folder)  # it starts while the data is ingested and v1 trains, and serves v1 once deployed
    try:
        return _steps(project, folder, size, console, status, server)
    finally:
        server.stop()


def _steps(project: Project, folder: Path, size: Size, console: Console, status: Status, server: Server
           ) -> tuple[dict[str, Any], Traffic | None]:  # fmt: skip
    labels_path = folder / "labels.parquet"
    console.rule("1 · ingest a month of payments (bad rows quarantined with reasons)")
    status.update("generating a month of payments; ingesting them (schema checks in DuckDB)…")
    history = scenario.history(size.history_days, size.history_per_day, START)
    now = START + timedelta(days=size.history_days)
    _ingest_history(project, folder, history, console)
    accepted = set(project.data.read("transactions")["txn_id"])
    known = history[history["txn_id"].isin(accepted)]

    console.rule("2 · features: customer window aggregations, materialized for serving")
    status.update("materializing customer_stats to the online store…")
    features.define(project)
    project.features.materialize(now - timedelta(days=size.history_days + 1), now)
    console.print(
        "customer_stats (7d mean, 1h/24h counts, 24h max, 24h distinct merchants) · payment (request time)"
    )

    console.rule("3 · train v1, register it as champion, deploy it behind the HTTP server")
    arrived = scenario.arrived(known, now)[LABEL_COLUMNS]
    arrived.to_parquet(labels_path, index=False)
    status.update(f"training v1 on {len(arrived):,} labelled payments ({size.trees} boosting rounds)…")
    run1 = features.pipeline(str(labels_path), rounds=size.trees).run(project)
    project.models.set_alias("fraud", "champion", run1.model_version.version)
    project.deploy("fraud", "fraud", alias="champion")
    status.update("waiting for mloop serve to serve v1…")
    traffic: Traffic | None = None
    ticker: RoundTicker | None = None
    controller_project = Project.open(folder, env={})
    try:
        server.wait("fraud")
        console.print(f"v1: test ROC AUC {project.runs.get(run1.id).metrics['test_roc_auc']:.3f} · "
                      f"serving on {server.url}")  # fmt: skip
        ticker = RoundTicker(LoopController(controller_project, [_policy(labels_path, size)]))
        traffic = Traffic(server.url)
        console.rule("4 · live traffic with delayed labels; the loop runs by itself")
        live = Live(project, ticker, traffic, labels_path, size, console, status)
        return live.days(known, now), traffic
    finally:  # the loop's last tick ends before its project closes, and before the logs go back
        if ticker is not None:
            status.update("waiting for the loop controller's last tick…")
            ticker.close()
        if traffic is not None:
            traffic.close()
        controller_project.close()


class Live:
    """Step 4, round by round: the switch records and scores the round's payments, reports the labels due,
    the controller ticks, and the timeline and a status line show what happens. The days run until the
    broken version is rolled back (or ``size.days`` is reached)."""

    def __init__(self, project: Project, ticker: RoundTicker, traffic: Traffic, labels: Path, size: Size,
                 console: Console, status: Status) -> None:  # fmt: skip
        self.project, self.ticker, self.traffic, self.labels = project, ticker, traffic, labels
        self.size, self.console, self.status = size, console, status
        self.events: list[dict[str, Any]] = []
        self.rows = 0  # labelled payments the next training set can use
        self.training: tuple[int, int, float, int] | None = (
            None  # retrain in progress: version, rows, since, round
        )
        self.round = 0
        self.recorder = ThreadPoolExecutor(1, thread_name_prefix="mloop-demo-feed")

    def days(self, known: pd.DataFrame, first: datetime) -> dict[str, Any]:
        size, clock = self.size, SimClock(first)
        outcome: dict[str, Any] = {"shift": None, "shift_sim": None, "clock": clock}
        self.console.print(f"[dim]{clock.mapping()}: a simulated day passes in seconds; the event log, the "
                           "CLI and the report show wall-clock times[/dim]")  # fmt: skip
        swiss, labelled, last, until = False, known, 0.0, first
        step = timedelta(days=1) / size.parts
        for index in range(size.days):
            start, shifted = first + timedelta(days=index), index >= size.shift_day
            if shifted and outcome["shift"] is None:
                outcome["shift"], outcome["shift_sim"] = time.time(), start
                self.console.print(f"[bold yellow]>> {start:%b %d}: prices rise 60%, a third of in-store payments "
                                   "move to mobile, and money mules appear[/bold yellow]")  # fmt: skip
            day = scenario.live_day(index, start, size.per_day, shifted=shifted, swiss=swiss)
            rounds = [(start + step * (p + 1), _between(day, start + step * p, start + step * (p + 1)))
                      for p in range(size.parts)]  # fmt: skip
            recorded = self.recorder.submit(_record, self.project, rounds[0][1], rounds[0][0])
            for part, (until, payments) in enumerate(rounds):
                time.sleep(max(0.0, size.round_seconds - (time.monotonic() - last)))
                last = time.monotonic()
                recorded.result()
                if part + 1 < len(rounds):  # the next round's payments are recorded while this one is scored
                    recorded = self.recorder.submit(
                        _record, self.project, rounds[part + 1][1], rounds[part + 1][0]
                    )
                self.traffic.send(payments)
                self.traffic.deliver(until)
                recorded.result()  # the project is used by one thread at a time
                labelled = pd.concat([labelled, payments], ignore_index=True)
                self.rows = _write_labels(labelled, self.labels, until)
                clock.ended(until)
                self.ticker.round_ended()
                self.round += 1
                self._print_new(until)
                self._hold(until, index)
                self.status.update(self._line(until, index))
                if swiss and self._broken_rolled_back():
                    break
            else:
                if not swiss and any(e["action"] == "loop.promote" for e in self.events):
                    swiss = True
                    self.console.print("[bold yellow]>> the Swiss market opens (a fifth of payments in CHF); the "
                                       "team ships a pipeline whose model converts amounts to euros[/bold yellow]")  # fmt: skip
                    self.ticker.controller.policies = [_policy(self.labels, size, currency=True)]
                continue
            break
        else:
            time.sleep(3.0)  # out of days: give the loop a moment for its last decisions
            self.ticker.round_ended()
        self.recorder.shutdown()
        self.status.update("waiting for the loop controller's last tick…")
        self.ticker.close()
        self._print_new(until)
        return outcome

    def _broken_rolled_back(self) -> bool:
        """The version after the last promoted champion was rolled back: the story has ended."""
        promoted = [e["champion"] for e in self.events if e["action"] == "loop.promote"]
        return bool(promoted) and any(e["action"] == "loop.rollback" and (e.get("challenger") or 0) > promoted[-1]
                                      for e in self.events)  # fmt: skip

    def _print_new(self, sim: datetime) -> None:
        seen = self.events[-1]["seq"] if self.events else 0
        for event in [e for e in self.project.loop.timeline("fraud") if e["seq"] > seen]:
            print_event(event, self.console, sim)
            self.events.append(event)
            if event["action"] == "loop.trigger":
                versions = self.project.models.list_versions("fraud")
                self.training = (
                    max((v.version for v in versions), default=0) + 1,
                    self.rows,
                    time.monotonic(),
                    self.round,
                )
            elif event["action"] in ("loop.gate", "loop.train_failed"):
                self.training = None

    def _hold(self, sim: datetime, index: int) -> None:
        """A retrain spans at most a simulated day: past that the traffic waits for it, so a slow machine
        does not play more of the story while a challenger trains than a fast one."""
        if self.training is None or self.round - self.training[3] < self.size.parts:
            return
        while self.ticker.busy_since is not None:
            self.status.update(self._line(sim, index) + " · the traffic waits for it")
            time.sleep(0.2)
        self._print_new(sim)

    def _line(self, sim: datetime, index: int) -> str:
        """The status line: where the story is, and what the loop is doing."""
        line = (f"{sim:%b %d %H:%M} (live day {index + 1}) · {len(self.traffic.answers):,} payments scored · "
                f"{self.traffic.delivered:,} labels reported · loop: ")  # fmt: skip
        if self.training is not None:
            version, rows, since, _ = self.training
            return line + (f"retraining v{version} in a child process (training on {rows:,} labelled payments, "
                           f"{time.monotonic() - since:.0f} s)…")  # fmt: skip
        reasons = [str(d.get("reason", "")) for d in self.ticker.decisions]
        return line + ("; ".join(reasons) if reasons else "first tick…")


def _between(day: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return day[(day["ts"] >= pd.Timestamp(start)) & (day["ts"] < pd.Timestamp(end))]


def _record(project: Project, payments: pd.DataFrame, until: datetime) -> None:
    """The switch records each payment in the feed as it authorises it: the round's payments are
    ingested (CHF ones quarantined by the schema) and materialized before they are scored; a payment's
    features are looked up as of just before it (``at``), as in the training set, so it never counts itself,
    nor any later payment (the next round's, recorded while this one is scored)."""
    path = Path(project.root) / "incoming" / f"live-{time.time_ns()}.parquet"
    payments.drop(columns=["is_fraud", "label_ts", "asof"]).to_parquet(path, index=False)
    project.data.ingest(path, "transactions")
    project.features.materialize_incremental(until)


def _write_labels(labelled: pd.DataFrame, labels: Path, now: datetime) -> int:
    """The labels that have arrived by ``now`` (CHF payments never reached the dataset), atomically; how many."""
    usable = scenario.arrived(labelled[labelled["currency"] != "CHF"], now)
    tmp = labels.with_suffix(".tmp")
    usable[LABEL_COLUMNS].to_parquet(tmp, index=False)
    tmp.replace(labels)
    return len(usable)


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


def _settings(size: Size) -> dict[str, Any]:
    return {
        "project": "fraud-demo", "log_level": "WARNING",
        "serving": {"max_queue_ms": None},
        "monitoring": {"window": size.window, "label_horizon": "2m", "endpoints": {"fraud": {
            # min_rows 100: a window of a few seconds holds 100-400 payments, fewer on a loaded machine, and
            # the default 200 then kept the shift from ever alerting; PSI's chance level at 100 rows over
            # decile bins is ~0.1, half the threshold
            "drift": {"thresholds": {"psi": 0.2, "jensen_shannon": 0.15}, "severity": "ticket", "min_rows": 100},
            "performance": {"min_labels": 100, "slices": ["pay_device"]},
            # 250 ms, as the gate's and the canary's limits: on a busy machine a 50 ms objective can page on the
            # machine's own load (6% of answers slower over the run is a 6x burn) and roll a healthy canary back
            "slos": [{"kind": "latency", "target": 0.99, "threshold_ms": 250},
                     {"kind": "availability", "target": 0.999}],
        }}},
        # what `mloop review` checks the endpoint against (docs/review.md shows the demo's review)
        "review": {"requirements": {"fraud": {"mode": "real-time", "p99_ms": 250, "availability": 0.999,
                                              "budget_per_1k": 0.01}}},
        # what `mloop explain fraud --counterfactual` may change to let a blocked payment through
        # (docs/explain.md): a smaller amount, another device; everything else is the customer's history
        "explain": {"counterfactuals": {"fraud": {"threshold": 0.5, "want": "below", "k": 3, "features": {
            "pay_amount": {"min": 1, "direction": "down", "step": 1},
            "amount_ratio": {"min": 0, "direction": "down"},
            "pay_device": {},
        }}}},
    }  # fmt: skip


def fresh_folder(folder: Path) -> Path:
    """Recreate a demo's folder; refuse to delete a folder no demo made (its marker file is missing)."""
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


@contextlib.contextmanager
def platform_log(folder: Path) -> Iterator[None]:
    """The platform's log goes to ``.mloop/demo.log`` while the demo runs (its alerts and decisions print in
    the timeline); the ``mloop`` logger's own set-up is restored after, once no demo thread logs any more."""
    logger = logging.getLogger("mloop")
    saved = logger.handlers[:], logger.level, logger.propagate
    (folder / ".mloop").mkdir(exist_ok=True)
    handler = logging.FileHandler(folder / ".mloop" / "demo.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.handlers[:], level, logger.propagate = saved
        logger.setLevel(level)
        handler.close()

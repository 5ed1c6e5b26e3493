"""The demo's running timeline and its closing summary: versions, AUC before and after, time to detect,
time to recover, requests served, errors; every figure read back from the event log, the prediction log
and the traffic's own record of answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from mloop.examples.fraud.clock import wall_time
from mloop.loop.live import version_stats
from mloop.predictions.files import read_predictions
from mloop.predictions.log import predictions_folder
from mloop.project import Project

_STYLE = {"loop.promote": "bold green", "loop.rollback": "bold red", "loop.gate": "cyan",
          "monitoring.alert": "yellow", "loop.trigger": "magenta"}  # fmt: skip


def print_event(event: dict[str, Any], console: Console, sim: datetime | None = None) -> None:
    when = f"{datetime.fromisoformat(event['ts']):%H:%M:%S}" + (f" {sim:%b %d %H:%M}" if sim else "")
    action = event["action"]
    if action.startswith("monitoring."):
        alert = event.get("alert", {})
        text = f"{alert.get('severity', '')} {alert.get('summary', '')}"
        if action == "monitoring.resolve":
            why = alert.get("resolution")
            text = f"resolved{f' ({why})' if why else ''}: {alert.get('summary', '')}"
    else:
        text = str(event.get("reason", ""))
    style = _STYLE.get(action, "")
    console.print(f"[dim]{when}[/dim]  [{style}]{action:<18}[/{style}] {text}" if style else
                  f"[dim]{when}[/dim]  {action:<18} {text}")  # fmt: skip


def summarise(project: Project, traffic: Any, outcome: dict[str, Any], console: Console) -> dict[str, Any]:
    timeline = project.loop.timeline("fraud")
    shift_wall = outcome.get("shift")
    ts = {e["seq"]: datetime.fromisoformat(e["ts"]) for e in timeline}
    drift = next((e for e in timeline if e["action"] == "monitoring.alert" and e["alert"]["name"] == "drift"
                  and shift_wall and ts[e["seq"]].timestamp() >= shift_wall), None)  # fmt: skip
    promotes = [e for e in timeline if e["action"] == "loop.promote"]
    rollbacks = [e for e in timeline if e["action"] == "loop.rollback"]
    answers = traffic.answers if traffic else []
    frame = read_predictions(predictions_folder(project.settings), "fraud", parquet=project.parquet)
    first_live = min((a["wall"] for a in answers), default=None)
    folder = predictions_folder(project.settings)
    stats: dict[int, dict[str, Any]] = {}
    phases: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
    if first_live:
        stats = version_stats(
            folder, "fraud", datetime.fromtimestamp(first_live, UTC), min_labels=100, parquet=project.parquet
        )
    if first_live and shift_wall:  # live AUC before and after the shift, each version on its own traffic
        cut = datetime.fromtimestamp(shift_wall, UTC)
        phases = (version_stats(folder, "fraud", datetime.fromtimestamp(first_live, UTC), cut, min_labels=100, parquet=project.parquet),
                  version_stats(folder, "fraud", cut, min_labels=100, parquet=project.parquet))  # fmt: skip
    out: dict[str, Any] = {"requests": len(answers), "errors": sum(a["status"] >= 500 for a in answers)}
    out["promoted"] = [e["champion"] for e in promotes]
    out["rolled_back"] = [e.get("challenger") for e in rollbacks]
    out["versions"] = _versions(project, stats, phases)
    if drift and shift_wall:
        out["detect_wall_s"] = ts[drift["seq"]].timestamp() - shift_wall
        clock = outcome.get("clock")
        sim = clock.at(ts[drift["seq"]].timestamp()) if clock is not None else None
        if sim is not None and outcome.get("shift_sim") is not None:
            out["detect_sim_h"] = (sim - outcome["shift_sim"]).total_seconds() / 3600
        if promotes:
            out["recover_wall_s"] = ts[promotes[0]["seq"]].timestamp() - ts[drift["seq"]].timestamp()
    broken = rollbacks[-1] if rollbacks else None
    if broken is not None and len(frame):
        failed = frame[(frame["status"] == "error") & (frame["version"] == broken["challenger"])]
        if len(failed):
            out["rollback_after_first_error_s"] = (
                ts[broken["seq"]].timestamp() - failed["ts"].min().timestamp()
            )
        out["rollback_after_measure_s"] = broken.get("seconds")
        served = frame[(frame["version"] == broken["challenger"])]["ts"]
        if broken.get("measured_at") is not None and len(served):
            # the broken version's last answer after the breach was measured: how long the server took to switch
            out["broken_served_after_measure_s"] = max(0.0, served.max().timestamp() - broken["measured_at"])
        out["errors_outside_canary"] = int(
            ((frame["status"] == "error") & (frame["version"] != broken["challenger"])).sum()
        )
    latency = np.array([a["seconds"] for a in answers if a["status"] == 200]) * 1000
    out["p99_ms"] = float(np.percentile(latency, 99)) if len(latency) else None
    out["p99_ms_training"] = _training_p99(timeline, ts, answers)
    _table(out, console)
    return out


def _versions(project: Project, stats: dict[int, dict[str, Any]],
              phases: tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for v in project.models.list_versions("fraud"):
        run = project.runs.get(v.run_id) if v.run_id else None
        live = stats.get(v.version, {})
        before, after = (phase.get(v.version, {}).get("live_auc") for phase in phases)
        out.append({"version": v.version, "aliases": v.aliases, "test_auc": (run.metrics if run else {}).get("test_roc_auc"),
                    "live_auc": live.get("live_auc"), "live_auc_before_shift": before, "live_auc_after_shift": after,
                    "requests": live.get("requests", 0), "errors": live.get("errors", 0)})  # fmt: skip
    return out


def _training_p99(
    timeline: list[dict[str, Any]], ts: dict[int, datetime], answers: list[dict[str, Any]]
) -> float | None:
    spans, start = [], None
    for event in timeline:
        if event["action"] == "loop.trigger":
            start = ts[event["seq"]].timestamp()
        elif event["action"] in ("loop.gate", "loop.train_failed") and start is not None:
            spans.append((start, ts[event["seq"]].timestamp()))
            start = None
    during = [
        a["seconds"] * 1000
        for a in answers
        if a["status"] == 200 and any(lo <= a["wall"] <= hi for lo, hi in spans)
    ]
    return float(np.percentile(during, 99)) if during else None


def _table(out: dict[str, Any], console: Console) -> None:
    table = Table(title="versions", header_style="bold", title_justify="left")
    for column in (
        "version",
        "aliases",
        "holdout AUC",
        "live AUC before the shift",
        "after",
        "requests",
        "failed",
    ):
        table.add_column(column, justify="right")
    for v in out["versions"]:
        table.add_row(f"v{v['version']}", ", ".join(v["aliases"]) or "-", _f(v["test_auc"]),
                      _f(v["live_auc_before_shift"]), _f(v["live_auc_after_shift"]),
                      f"{v['requests']:,}", f"{v['errors']:,}")  # fmt: skip
    console.print(table)
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    rows = [
        ("requests served", f"{out['requests']:,} ({out['errors']:,} failed, "
                            f"{out.get('errors_outside_canary', 0):,} outside the canary)"),
        ("shift → drift alert", _dur(out.get("detect_wall_s")) + (f" ({out['detect_sim_h']:.0f} h simulated)"
                                                                  if out.get("detect_sim_h") is not None else "")),
        ("drift alert → promoted", _dur(out.get("recover_wall_s"))),
        ("first failure → rollback", _dur(out.get("rollback_after_first_error_s"))
                                     + f" (breach measured → rolled back {_dur(out.get('rollback_after_measure_s'), 2)}, "
                                       f"last answer by the broken version {_dur(out.get('broken_served_after_measure_s'), 2)} "
                                       "after)"),
        ("p99 latency (all / while training)", f"{_f(out['p99_ms'], 1)} ms / {_f(out['p99_ms_training'], 1)} ms"),
    ]  # fmt: skip
    for key, value in rows:
        facts.add_row(key, value)
    console.print(facts)


def explore(folder: Path, report: Path, span: dict[str, Any], seconds: float) -> Panel:
    """The closing box: how long it took, how simulated time mapped onto the wall clock the CLI and the
    report show, and the commands to explore the project, as the user can run them from here."""
    mloop, where, speed = _command(), _shorter(folder), span["speed"]
    return Panel.fit(
        f"done in {seconds:.0f} s · monitoring report: {_shorter(report)}\n"
        f"simulated {span['sim'][0]:%b %d %H:%M} – {span['sim'][1]:%b %d %H:%M} ran "
        f"{wall_time(span['wall'][0])} – {wall_time(span['wall'][1])} UTC" + (f" (×{speed:,.0f})" if speed else "")
        + ": the CLI and the report show wall-clock times\n"
        f"  {mloop} -C {where} loop timeline fraud\n  {mloop} -C {where} monitor alerts fraud\n"
        f"  {mloop} -C {where} models list\n  {mloop} -C {where} review", title="explore", style="green")  # fmt: skip


def _command() -> str:
    """How to run mloop from here: ``mloop`` when that is this one, else this one's path
    (``.venv/bin/mloop`` after ``make demo``, where the virtual environment is not activated)."""
    mine, found = Path(os.path.abspath(sys.executable)).parent / "mloop", shutil.which("mloop")
    if found and (not mine.exists() or Path(found).resolve() == mine.resolve()):
        return "mloop"
    if mine.exists():
        return _shorter(mine)
    return f"{_shorter(Path(sys.executable))} -m mloop.cli.main"


def _shorter(path: Path) -> str:
    """``path`` relative to the working folder when that is shorter."""
    full = os.path.abspath(path)
    with contextlib.suppress(ValueError):  # another drive (Windows)
        relative = os.path.relpath(full)
        return relative if len(relative) < len(full) else full
    return full


def _dur(seconds: float | None, digits: int = 1) -> str:
    return "-" if seconds is None else f"{seconds:.{digits}f} s"


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"

"""``mloop monitor drift | performance | slo | alerts | check | report``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="Drift, live performance, SLOs, alerts and reports of the served endpoints.",
                  no_args_is_help=True)  # fmt: skip
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
EndpointArg = typer.Argument(..., help="The endpoint name.")
SinceOpt = typer.Option("1d", "--since", help="How far back: a duration (7d, 12h) or an ISO time; never before "
                        "the endpoint's first prediction.")  # fmt: skip
WindowOpt = typer.Option(None, "--window", help="Window size (default monitoring.window, coarser when the range "
                         "would hold over 1,000 of them), e.g. 5m, 1h.")  # fmt: skip
PartialOpt = typer.Option(False, "--partial", help="Also the window still open now (not stored).")


@app.command()
def drift(endpoint: str = EndpointArg, since: str = SinceOpt, window: str | None = WindowOpt,
          partial: bool = PartialOpt, show_all: bool = typer.Option(False, "--all", help="Also the windows "
          "without data."), as_json: bool = JsonOpt) -> None:  # fmt: skip
    """Drift of every input and of the prediction per complete window and model version (stored); the
    drifted windows first.

    Example:

      $ mloop monitor drift fraud --since 12h
    """
    from mloop.monitoring.report import drift_rows

    monitoring = _state.project().monitoring
    span = _range(endpoint, since, window)
    found = monitoring.drift(
        endpoint, since=span.since, until=span.until, window=span.window, partial=partial
    )
    if as_json:
        out.emit_json(found)
        return
    shown, hidden = drift_rows(found, show_all=show_all)
    rows = [(e["start"], _v(e), e["rows"], _drifted(e)) for e in shown]
    out.table(f"Drift of {endpoint}", ["window start", "version", "rows", "drifted"], rows)
    if hidden:
        out.console.print(f"{_count(hidden, 'window')} without data hidden; --all to show")


@app.command()
def performance(endpoint: str = EndpointArg, since: str = SinceOpt, window: str | None = WindowOpt,
                partial: bool = PartialOpt, as_json: bool = JsonOpt) -> None:  # fmt: skip
    """Realised performance from the labels so far, and the estimate from the scores, per window.

    Example:

      $ mloop monitor performance fraud --since 7d --window 1d
    """
    span = _range(endpoint, since, window)
    found = _state.project().monitoring.performance(endpoint, since=span.since, until=span.until,
                                                    window=span.window, partial=partial)  # fmt: skip
    if as_json:
        out.emit_json(found)
        return
    names = (
        ["roc_auc", "precision", "recall"] if any(e["task"] == "binary" for e in found) else ["rmse", "mae"]
    )
    rows = [(e["start"], _v(e), e["rows"], e["labelled"], e["coverage"],
             *[(e["realised"] or {}).get(n) for n in names], (e["estimated"] or {}).get("roc_auc"),
             "; ".join([e["note"], *e["problems"]]).strip("; "))
            for e in found]  # fmt: skip
    out.table(f"Performance of {endpoint}", ["window start", "version", "rows", "labelled", "coverage", *names,
                                             "est. roc_auc", "note"], rows)  # fmt: skip


@app.command()
def slo(endpoint: str = EndpointArg, as_json: bool = JsonOpt) -> None:
    """Each SLO of the endpoint: SLI, error budget left, burn rates, and the alerts firing.

    Example:

      $ mloop monitor slo fraud
    """
    found = _state.project().monitoring.slo(endpoint)
    if as_json:
        out.emit_json(found)
        return
    if not found:
        out.warn(
            f"{endpoint} has no SLOs: declare them under monitoring.endpoints.{endpoint}.slos in mloop.yaml."
        )
        return
    rows = [(s["name"], s["target"], s["sli"], s["events"], s["bad"], s["remaining"], s["burn_rates"].get("1h"),
             s["burn_rates"].get("6h"), s["burn_rates"].get("3d"), ", ".join(a["severity"] for a in s["alerts"]))
            for s in found]  # fmt: skip
    out.table(f"SLOs of {endpoint}", ["slo", "target", "sli", "events", "bad", "budget left", "burn 1h",
                                      "burn 6h", "burn 3d", "firing"], rows)  # fmt: skip


@app.command()
def check(endpoint: str = EndpointArg, as_json: bool = JsonOpt) -> None:
    """Compute the windows not stored yet, evaluate the alert rules, notify the sinks of changes.

    Example:

      $ mloop monitor check fraud
    """
    found = _state.project().monitoring.update(endpoint)
    if as_json:
        out.emit_json(found)
        return
    alerts = found["alerts"]
    out.success(f"{endpoint}: {len(found['drift'])} drift and {_count(len(found['performance']), 'performance window')}; "
                f"{_count(len(alerts['opened']), 'alert')} opened, {len(alerts['resolved'])} resolved, "
                f"{len(alerts['firing'])} firing")  # fmt: skip
    _alert_table(alerts["firing"])


@app.command()
def alerts(
    endpoint: str | None = typer.Argument(None, help="Only this endpoint."),
    open_only: bool = typer.Option(False, "--open", help="Only incidents still firing."),
    since: str | None = typer.Option(None, "--since", help="Open then or resolved since (7d, ISO time)."),
    as_json: bool = JsonOpt,
) -> None:
    """Incidents, newest first: one per alert, however long it fired.

    Example:

      $ mloop monitor alerts --open
    """
    found = _state.project().monitoring.alerts(endpoint, open_only=open_only, since=since)
    out.emit_json(found) if as_json else _alert_table(found)


@app.command()
def sensors(
    dataset: str | None = typer.Argument(None, help="Only this dataset."),
    open_only: bool = typer.Option(False, "--open", help="Only incidents still firing."),
    check: bool = typer.Option(False, "--check", help="First check the dataset's newest ingestion again."),
    as_json: bool = JsonOpt,
) -> None:
    """Sensor incidents, newest first: one per sensor and rule (stuck, range, spike, silence).

    Example:

      $ mloop monitor sensors soil --open
    """
    project = _state.project()
    if check:
        if dataset is None:
            raise typer.BadParameter("--check needs a DATASET: the one whose newest ingestion to check.")
        project.sensors.check(dataset)
    found = project.sensors.incidents(dataset, open_only=open_only)
    if as_json:
        out.emit_json(found)
        return
    # one sensor's incidents read across: which sensor, what rule, how many readings (gaps for silence)
    rows = [([] if dataset else [a["labels"].get("dataset", "")]) + [
        a["labels"].get("sensor", ""), a["name"].removeprefix("sensor_"), a["labels"].get("value", ""),
        a["labels"].get("count", ""), a["status"], a["labels"].get("last", "")[:10]] for a in found]  # fmt: skip
    columns = ["sensor", "rule", "column", "count", "status", "last"]
    out.table(
        f"Sensor incidents of {dataset or 'every dataset'}", ([] if dataset else ["dataset"]) + columns, rows
    )


@app.command()
def report(
    endpoint: str = EndpointArg,
    since: str = typer.Option(
        "7d",
        "--since",
        help="How far back: a duration (7d) or an ISO time; the report "
        "spans the endpoint's predictions within it.",
    ),
    window: str | None = WindowOpt,
    out_path: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's data as JSON instead."),
) -> None:
    """A self-contained HTML report (plots embedded, opens offline): drift, predictions, performance, SLOs.

    Example:

      $ mloop monitor report fraud -o report.html
    """
    from mloop.monitoring.report import summary_text, write_html

    found = _state.project().monitoring.report(endpoint, since=since, window=window)
    if as_json:
        out.emit_json(found)
        return
    path = write_html(found, out_path)
    out.console.print(summary_text(found))
    out.success(f"wrote {path}")


def _range(endpoint: str, since: str, window: str | None) -> Any:
    """The range the command reads; says so when the window was coarsened."""
    span = _state.project().monitoring.range(endpoint, since=since, window=window)
    if span.note:
        out.warn(span.note)
    return span


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _v(entry: Mapping[str, Any]) -> str:
    return f"v{entry['version']}" if entry.get("version") else "-"


def _drifted(entry: Mapping[str, Any]) -> str:
    if entry.get("empty"):
        return "no data: undecided"
    if entry.get("note"):
        return str(entry["note"])
    return ", ".join(entry["drifted"]) or "none"


def _alert_table(found: list[dict[str, Any]]) -> None:
    rows = [(a["severity"], a["status"], a["summary"], a["started_at"], a.get("resolved_at")) for a in found]
    out.table("Alerts", ["severity", "status", "summary", "started", "resolved"], rows)

"""``mloop metrics``: delivery (DORA) and ML team metrics from the event log."""

from __future__ import annotations

from typing import Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state


def metrics(
    since: str = typer.Option("90d", "--since", help="How far back: a duration (90d, 12w) or an ISO time."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only this endpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """Delivery metrics (DORA: deployment frequency, lead time for changes, change-failure rate, time to
    restore) per endpoint and per week, and ML team metrics (time to detect drift, alert to fix,
    experiment rate, feature reuse, share of predictions from a gated model), read from the event log.

    Examples:

      $ mloop metrics
      $ mloop metrics --since 30d --endpoint fraud
      $ mloop metrics --json
    """
    result = _state.project().reviews.metrics(since=since, endpoint=endpoint)
    if as_json:
        out.emit_json(result.to_dict())
        return
    scope = f" on {endpoint}" if endpoint else ""
    title = f"Delivery{scope}, {result.since:%Y-%m-%d} to {result.until:%Y-%m-%d}"
    rows = [_dora("all endpoints" if endpoint is None else endpoint, result.overall)]
    if endpoint is None:
        rows += [_dora(name, figures) for name, figures in result.endpoints.items()]
    out.table(title, DORA_COLUMNS, rows)
    if result.weeks:
        out.table("Per week", ["week", *DORA_COLUMNS],
                  [(w["week"], *_dora("all" if w["endpoint"] == "*" else w["endpoint"], w)) for w in result.weeks])  # fmt: skip
    ml = result.ml
    gated, reuse = ml["gated_share"], ml["feature_reuse"]
    out.table("ML team", ["metric", "value", "behind it"], [
        ("time to detect drift", _spread(ml["drift_detection_s"]), f"{ml['drift_detection_s']['count']} drift alerts"),
        ("alert to promoted fix", _spread(ml["alert_to_fix_s"]),
         f"{ml['alert_to_fix_s']['count']} fixed, {ml['alert_to_fix_s']['unfixed']} waiting"),
        ("experiment rate", f"{ml['experiments']['runs']} runs",
         ", ".join(f"{w}: {n}" for w, n in ml["experiments"]["per_week"].items()) or "no runs"),
        ("features reused", _share(reuse["share"]), f"{reuse['reused']} of {reuse['views']} views in 2+ models"),
        ("served by a gated model", _share(gated["share"]), f"{gated['gated']} of {gated['requests']} requests"),
    ])  # fmt: skip


DORA_COLUMNS = ["endpoint", "changes", "per week", "canaries", "lead time (median · p90)", "change failure",
                "restore (median · p90)"]  # fmt: skip


def _dora(name: str, f: dict[str, Any]) -> tuple[Any, ...]:
    failure, restore = f["change_failure"], f["restore_s"]
    rate = (
        "-"
        if failure["rate"] is None
        else f"{failure['rate']:.0%} ({failure['failed']}/{failure['changes']})"
    )
    per_week = f["deployments"]["per_week"]
    return (name, f["deployments"]["changes"], "-" if per_week is None else f"{per_week:.2f}",
            f["deployments"]["canary_starts"], _spread(f["lead_time_s"]), rate,
            _spread(restore) + (f", {restore['open']} open" if restore["open"] else ""))  # fmt: skip


def _spread(figure: dict[str, Any]) -> str:
    if not figure["count"]:
        return "-"
    return f"{_duration(figure['median'])} · {_duration(figure['p90'])} (n={figure['count']})"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"

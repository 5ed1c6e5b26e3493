"""``mloop cost``: cost and energy per training run, per 1,000 predictions and of what the project stores."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state


def cost(
    since: str = typer.Option("7d", "--since", help="Window of runs and predictions: 7d, 24h, 90m."),
    alert: bool = typer.Option(
        False,
        "--alert",
        help="Open an incident (sent to monitoring.sinks) per endpoint over its budget_per_1k.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:
    """What the project costs, from what mloop measured and review.prices / review.energy in mloop.yaml.

    Examples:

      $ mloop cost
      $ mloop cost --since 24h --json
      $ mloop cost --alert          # on a schedule: an incident per endpoint over its budget
    """
    found = _state.project().reviews.cost(since=since, alert=alert)
    if as_json:
        out.emit_json(found.to_dict())
        return
    money = found.currency
    out.table(f"per 1,000 predictions, {found.start:%Y-%m-%d %H:%M} to {found.end:%Y-%m-%d %H:%M} UTC",
              ["endpoint", "requests", "CPU s", "GB-h", f"{money} / 1k", "budget", "kWh / 1k", "g CO2e / 1k"],
              [(e.endpoint, e.requests, f"{e.cpu_seconds:.2f}", f"{e.use.gb_hours:.4f}", _n(e.per_1k),
                _n(e.budget_per_1k) + (" ✗" if e.over_budget else ""), _n(e.kwh_per_1k),
                _n(e.grams_co2e_per_1k)) for e in found.endpoints.values()])  # fmt: skip
    out.table(f"{len(found.runs)} training runs",
              ["run", "experiment", "wall s", "CPU s", "peak GB", "GPU s", money, "kWh", "g CO2e"],
              [(r.run[:12], r.experiment, f"{r.wall_seconds:.1f}", f"{r.cpu_seconds:.1f}", _n(r.peak_gb),
                f"{r.gpu_seconds:.1f}", _n(r.cost), _n(r.kwh), _n(r.grams_co2e)) for r in found.runs])  # fmt: skip
    out.table("storage", ["what", "bytes", f"{money} / month", "retention"],
              [(s.what, "?" if s.bytes is None else f"{s.bytes:,}", _n(s.cost_per_month), s.retention)
               for s in found.storage])  # fmt: skip
    for incident in found.alerts:
        out.err.print(f"[yellow]alert {incident['status']}[/yellow]: {incident['summary']}")


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"

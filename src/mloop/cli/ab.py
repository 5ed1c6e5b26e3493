"""``mloop ab report``: the A/B analysis of an endpoint split between versions."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="A/B analysis: the business metric per arm, lift, sequential test, decision.",
                  no_args_is_help=True)  # fmt: skip


@app.command()
def report(
    endpoint: str = typer.Argument(..., help="The endpoint (plain, or a stage of a pipeline endpoint)."),
    metric: str = typer.Option("ctr", "--metric", help="ctr (labels true/false, 1/0) or mean (numeric outcome)."),
    since: str = typer.Option("24h", "--since", help="How far back: a duration (24h, 7d) or an ISO time."),
    alpha: float = typer.Option(0.05, "--alpha", help="False-positive rate of the sequential test."),
    mde: float = typer.Option(0.1, "--mde", help="Relative lift to plan for (0.1 = 10%); sets the mixing scale."),
    missing: str = typer.Option("awaiting", "--missing", help="awaiting, or no_click/zero: a row still "
                                "unlabelled after --wait counts as 0."),
    wait: str = typer.Option("1h", "--wait", help="The attribution window for --missing no_click."),
    control: int | None = typer.Option(None, "--control", help="Control version (default: the champion)."),
    treatment: int | None = typer.Option(None, "--treatment", help="Treatment version (default: the newest other)."),
    max_samples: int | None = typer.Option(None, "--max-samples", help="Per arm: stop and keep the champion "
                                           "when reached without significance."),
    pipeline: str | None = typer.Option(None, "--pipeline", help="The pipeline endpoint whose clicks a stage's "
                                        "arms are judged on (default: where the labels were filed)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    fmt: str = typer.Option("table", "--format", help="table or markdown."),
) -> None:  # fmt: skip
    """Per arm n and mean with interval, the lift with its always-valid interval, the always-valid p-value,
    the fixed-horizon sample size and the decision (ship, keep, need more data).

    Example:

      $ mloop ab report recs --metric ctr --since 24h
    """
    if fmt not in ("table", "markdown"):
        raise typer.BadParameter(f"--format {fmt!r}: use table or markdown (or --json).")
    found = _state.project().ab.report(endpoint, metric=metric, since=since, alpha=alpha, mde=mde,
                                       missing=missing, wait=wait, control=control, treatment=treatment,
                                       max_samples=max_samples, pipeline=pipeline)  # fmt: skip
    if as_json:
        out.emit_json(found.to_dict())
        return
    if fmt == "markdown":
        out.console.print(found.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        return
    role = {found.control: "control", found.treatment: "treatment"}
    out.table(f"A/B of {endpoint}: {metric}", ["arm", "version", "n", "awaiting", "mean", "low", "high"],
              [(role.get(a.version, ""), a.version, a.n, a.awaiting, a.mean, a.low, a.high) for a in found.arms])  # fmt: skip
    out.console.print(
        f"lift {_f(found.lift)} [{_f(found.lift_low)}, {_f(found.lift_high)}] (always-valid); p {found.p_value:.4g}; "
        f"fixed-horizon n per arm {found.min_samples if found.min_samples is not None else '-'}\n"
        f"decision: {found.decision}: {found.reason}", markup=False, highlight=False, soft_wrap=True)  # fmt: skip


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"

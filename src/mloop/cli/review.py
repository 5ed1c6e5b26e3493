"""``mloop review``: the architecture review of the live project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mloop.cli import _output as out
from mloop.cli import _state

if TYPE_CHECKING:
    from mloop.review.service import Review

STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "n/a": "dim", "error": "magenta"}
MARK = {"pass": "✓", "warn": "!", "fail": "✗", "n/a": "–", "error": "?"}
EVIDENCE_LINES = 4


def review(
    only: list[str] = typer.Option([], "--only", help="Run only checks whose id starts so (repeatable)."),
    fail_on: str | None = typer.Option(
        None, "--fail-on", help="Exit 1 if a finding weighs this or more: low, medium or high (for CI)."
    ),
    fmt: str = typer.Option("table", "--format", help="table, markdown, html or json."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the report to this file (its format from --format, else its suffix: .html, .md, .json).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines (same as --format json)."),
    list_checks: bool = typer.Option(False, "--list", help="List the checks and what each asks; run none."),
    all_rows: bool = typer.Option(False, "--all", help="Show passed and not-applicable checks in the table too."),
    probe: str | None = typer.Option(
        None, "--probe", help="First load-test this endpoint (bounded, recorded) and check it against its requirement."
    ),
    url: str | None = typer.Option(
        None, "--url", help="The server to probe (default http://127.0.0.1:8700); a non-loopback one only when named here."
    ),
    rps: float = typer.Option(100.0, "--rps", help="Requests per second the probe sends (at most 5,000)."),
    seconds: float = typer.Option(10.0, "--seconds", help="How long the probe runs (at most 60 s)."),
) -> None:  # fmt: skip
    """Review the running platform: about 40 checks across scalability, latency, fault tolerance,
    requirements, cost, security, collaboration, lifecycle, extensibility, maintainability and trade-offs,
    each with its evidence and fix; the ML Test Score and the MLOps maturity level they give.

    Examples:

      $ mloop review
      $ mloop review --only security --all
      $ mloop review --format html -o review.html
      $ mloop review --fail-on high          # in CI: exit 1 on a high finding
      $ mloop review --probe fraud --rps 200 --seconds 10
    """
    from mloop.review import render
    from mloop.review.checks import load

    fmt = "json" if as_json else fmt
    if fmt not in ("table", "markdown", "html", "json"):
        raise typer.BadParameter(f"{fmt!r}: use table, markdown, html or json", param_hint="--format")
    if list_checks:
        checks = sorted(load().values(), key=lambda c: c.id)
        if fmt == "json":
            out.emit_json([{"id": c.id, "concern": c.concern, "severity": c.severity, "title": c.title,
                            "fix": c.fix, "mlts": list(c.mlts), "maturity": c.maturity} for c in checks])  # fmt: skip
        elif fmt == "markdown":
            out.console.print(
                render.checks_markdown(checks), highlight=False, markup=False, soft_wrap=True, end=""
            )
        else:
            out.table(f"{len(checks)} checks", ["id", "severity", "what should hold", "ML Test Score"],
                      [(c.id, c.severity, c.title, ", ".join(c.mlts)) for c in checks])  # fmt: skip
        return
    project = _state.project()
    if probe is not None:
        found = project.reviews.probe(probe, url=url or "http://127.0.0.1:8700", rps=rps, seconds=seconds,
                                      allow_remote=url is not None)  # fmt: skip
        out.fields(f"Probe of {probe} at {found.url}", {
            "sent / answered": f"{found.sent:,} / {found.answered:,} in {found.seconds:g} s",
            "achieved": f"{found.achieved_rps:,.1f} rps (target {found.target_rps:g})",
            "latency p50 / p99 / max": f"{out.fmt(found.p50_ms)} / {out.fmt(found.p99_ms)} / {out.fmt(found.max_ms)} ms",
            "errors": ", ".join(f"{k}: {v}" for k, v in found.errors.items()) or "none",
            "recorded": f"event {found.event}",
        })  # fmt: skip
    result = project.review(only=only)
    if fail_on is not None:
        result.exceeds(fail_on)  # an unknown severity is an error before anything is printed
    if output is not None:
        render.save(result, output, render.format_of(output) if fmt == "table" else fmt)
        out.success(f"wrote {output} ({render.headline(result)})")
    elif fmt == "json":
        out.emit_json(result.to_dict())
    elif fmt in ("markdown", "html"):
        out.console.print(render.text(result, fmt), highlight=False, markup=False, soft_wrap=True, end="")
    else:
        _table(result, all_rows)
    if fail_on is not None and result.exceeds(fail_on):
        out.err.print(f"[red]✗ findings at {fail_on} severity or above[/red] (--fail-on {fail_on})")
        raise typer.Exit(1)


def _table(result: Review, all_rows: bool) -> None:
    """Findings grouped by concern, one block each (readable at any terminal width), then the scores."""
    from rich.markup import escape
    from rich.rule import Rule

    from mloop.review import render
    from mloop.review.model import CONCERNS

    out.console.print(
        f"[bold]Review of {escape(result.project)}[/bold]: {render.headline(result)}", highlight=False
    )
    for concern, findings in result.by_concern().items():
        shown = [f for f in findings if all_rows or f.status not in ("pass", "n/a")]
        if not shown:
            continue
        out.console.print(Rule(CONCERNS[concern], align="left", style="dim"))
        for f in shown:
            style = STYLE[f.status]
            weight = f" ({f.weight})" if f.weight else ""
            out.console.print(f"[{style}]{MARK[f.status]}[/{style}] [bold]{f.check.id}[/bold]{weight}: "
                              f"{escape(f.outcome.summary)}", highlight=False)  # fmt: skip
            if f.status not in ("pass", "n/a"):
                for line in f.outcome.evidence[:EVIDENCE_LINES]:
                    out.console.print(f"    [dim]{escape(line)}[/dim]", highlight=False)
                if len(f.outcome.evidence) > EVIDENCE_LINES:
                    out.console.print(
                        f"    [dim]… {len(f.outcome.evidence) - EVIDENCE_LINES} more (--json)[/dim]"
                    )
                out.console.print(f"    fix: {escape(f.fix)}", highlight=False)
    out.console.print(Rule("Scores", align="left", style="dim"))
    out.console.print(f"ML Test Score   {result.mlts.line()}", highlight=False)
    out.console.print(
        f"MLOps maturity  level {result.maturity.level}: {result.maturity.name}", highlight=False
    )
    if result.maturity.next_failing:
        out.console.print(f"  next level needs: {', '.join(result.maturity.next_failing)}", highlight=False)
    if not all_rows:
        out.console.print("[dim]passed and not-applicable checks hidden: --all shows them; "
                          "--format html -o review.html writes the full report[/dim]")  # fmt: skip

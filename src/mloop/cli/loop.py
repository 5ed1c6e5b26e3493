"""``mloop loop run | tick | status | timeline | pause | resume | approve``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state
from mloop.errors import NotFound

if TYPE_CHECKING:
    from mloop.project import Project

app = typer.Typer(help="The continuous-training loop: trigger, retrain, gate, canary, promote or roll back.",
                  no_args_is_help=True)  # fmt: skip
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


@app.command()
def tick(as_json: bool = JsonOpt) -> None:
    """Evaluate every policy once (for cron and tests) and print the decisions.

    Example:

      $ mloop loop tick
    """
    from mloop.loop.controller import LoopController

    project = _state.project()
    controller = LoopController.for_project(project, jobs=_jobs(project))
    try:
        decisions = controller.tick()
    finally:
        controller.release()
    failed = [d for d in decisions if d["decision"] == "error"]
    if as_json:
        out.emit_json(decisions)
    else:
        out.table(
            "Loop",
            ["endpoint", "decision", "reason"],
            [(d["endpoint"], d["decision"], d["reason"]) for d in decisions],
        )
    for decision in failed:
        out.err.print(f"[red]error:[/red] the loop policy of {decision['endpoint']} failed: {decision['reason']}",
                      highlight=False, soft_wrap=True, markup=True)  # fmt: skip
    if failed:
        raise typer.Exit(1)


@app.command()
def run(interval: float | None = typer.Option(None, "--interval", help="Seconds between ticks (default loop.interval_seconds).")) -> None:  # fmt: skip
    """Run the controller until interrupted (one acts at a time: the others stand by).

    Example:

      $ mloop loop run --interval 60
    """
    from mloop.loop.controller import LoopController

    project = _state.project()
    controller = LoopController.for_project(project, jobs=_jobs(project))
    out.success(f"loop controller {controller.holder} running; Ctrl-C to stop")
    controller.run(interval if interval is not None else project.settings.loop.interval_seconds)


@app.command()
def status(endpoint: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Where the loop stands for an endpoint: phase, champion, challenger, step, paused.

    Example:

      $ mloop loop status fraud
    """
    state = _known(endpoint).loop.state(endpoint).to_dict()
    out.emit_json(state) if as_json else out.fields(f"Loop of {endpoint}", state)


@app.command()
def timeline(endpoint: str | None = typer.Argument(None), as_json: bool = JsonOpt) -> None:
    """Every loop decision (and monitoring alert) with its reason, oldest first.

    Examples:

      $ mloop loop timeline fraud
      $ mloop loop timeline --json
    """
    found = (_known(endpoint) if endpoint else _state.project()).loop.timeline(endpoint)
    if as_json:
        out.emit_json(found)
        return
    # Times never wrap (a split timestamp reads as two numbers); the reason folds instead.
    out.table("Timeline", ["#", "time (UTC)", "endpoint", "decision", "reason"],
              [(e["seq"], out.short_time(e.get("at") or e["ts"]), e["endpoint"], e["action"], _reason(e))
               for e in found], no_wrap=("#", "time (UTC)", "decision"))  # fmt: skip


@app.command()
def pause(endpoint: str = typer.Argument(...), reason: str = typer.Option("", "--reason")) -> None:
    """Stop the loop acting on an endpoint until `mloop loop resume`.

    Example:

      $ mloop loop pause fraud --reason 'label backfill'
    """
    _known(endpoint).loop.pause(endpoint, reason=reason)
    out.success(f"{endpoint}: loop paused")


@app.command()
def resume(endpoint: str = typer.Argument(...)) -> None:
    """Let the loop act on an endpoint again.

    Example:

      $ mloop loop resume fraud
    """
    _known(endpoint).loop.resume(endpoint)
    out.success(f"{endpoint}: loop resumed")


@app.command()
def approve(endpoint: str = typer.Argument(...)) -> None:
    """Let a canary that waits for approval take its final step.

    Example:

      $ mloop loop approve fraud
    """
    state = _known(endpoint).loop.approve(endpoint)
    out.success(f"{endpoint}: v{state.challenger} approved; the next tick takes the final step")


def _known(endpoint: str) -> Project:
    """The project, once ``endpoint`` is one it deploys or runs a loop policy for; else an error naming those."""
    project = _state.project()
    known = {d.endpoint for d in project.deployments.list(include_inactive=True)}
    known |= {str(p.get("endpoint")) for p in project.settings.loop.policies if p.get("endpoint")}
    if endpoint not in known:
        raise NotFound(
            f"No endpoint {endpoint!r} (endpoints: {', '.join(sorted(known)) or 'none yet'}). Deploy one with "
            f"`mloop deploy {endpoint} MODEL --version N`, or give it a policy under loop.policies in mloop.yaml."
        )
    return project


def _reason(event: dict[str, Any]) -> str:
    if "alert" in event:
        return str(event["alert"].get("summary", ""))
    return str(event.get("reason", ""))


def _jobs(project: Any) -> list[Any]:
    from mloop.serving.scoring.scheduled import jobs_from_settings

    return list(jobs_from_settings(project.settings.loop.jobs, project.root))

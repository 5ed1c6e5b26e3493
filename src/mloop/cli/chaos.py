"""``mloop chaos run``: a fault injected on purpose into your own deployment on this machine, under load."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="Faults on purpose in your own deployment on this machine, measured under load.",
                  no_args_is_help=True)  # fmt: skip


@app.command()
def run(
    fault: str = typer.Argument(..., help="online-store-pause or worker-kill."),
    endpoint: str = typer.Option(..., "--endpoint", help="The endpoint to load (its recent logged rows are sent)."),
    url: str = typer.Option("http://127.0.0.1:8700", "--url", help="The server: this machine only (loopback)."),
    seconds: float = typer.Option(10.0, "--seconds", help="How long the fault lasts (at most 120 s)."),
    rps: float = typer.Option(50.0, "--rps", help="Requests per second, before, during and after the fault."),
    allow_outage: bool = typer.Option(False, "--allow-outage", help="worker-kill: kill a single-process server "
                                      "too (an outage nothing ends)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:  # fmt: skip
    """Load ENDPOINT steadily, inject FAULT in the middle for --seconds (it ends by itself, even if this
    command is interrupted), keep loading until the clients are back to the latency before it, and print
    what they saw: answers, failures by cause, latency before / during / after, the recovery time and
    answered requests missing from the prediction log.

    Examples:

      $ mloop chaos run online-store-pause --endpoint fraud --seconds 10
      $ mloop chaos run worker-kill --endpoint fraud --url http://127.0.0.1:8700 --json
    """
    from mloop.chaos import run as run_fault

    found = run_fault(_state.project(), fault, endpoint=endpoint, url=url, seconds=seconds, rps=rps,
                      allow_outage=allow_outage)  # fmt: skip
    if as_json:
        out.emit_json(found.to_dict())
        return
    out.table(f"{found.fault} for {found.seconds:g} s on {found.endpoint} at {found.url} ({found.rps:g} rps)",
              ["phase", "sent", "answered", "with defaults", "failed", "p50 ms", "p99 ms"],
              [(p.name, p.sent, p.answered, p.defaulted,
                ", ".join(f"{cause}: {n}" for cause, n in p.failed.items()) or "none", p.p50_ms, p.p99_ms)
               for p in found.phases])  # fmt: skip
    out.fields("Recovery", {
        "first good answer": _seconds(found.first_answer_s, "after the fault's end"),
        "back to baseline latency": _seconds(found.baseline_s, "after the fault's end"),
        "answered, not in the log": found.lost if found.lost is not None else "–",
        "log check": found.lost_note,
        **{k.replace("_", " "): v for k, v in found.target.items()},
    })  # fmt: skip


def _seconds(value: float | None, what: str) -> str:
    return "not within the run" if value is None else f"{value:.3f} s {what}"

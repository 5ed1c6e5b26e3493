"""``mloop audit``: verify the hash-chained event log and read it."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


@app.command()
def verify(as_json: bool = JsonOpt) -> None:
    """Check every event against the hash chain. Exit code 1 if any was edited or deleted.

    Example:

      $ mloop audit verify
    """
    report = _state.project().audit.verify()
    if as_json:
        out.emit_json(report.to_dict())
    elif report.ok:
        out.success(
            f"audit log intact: {report.checked:,} events, head {report.head_seq} {report.head_hash[:16]}…"
        )
    else:
        out.err.print(f"[red]✗ audit log tampered with[/red] ({report.checked:,} events checked):")
        for problem in report.problems:
            out.err.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def head(as_json: bool = JsonOpt) -> None:
    """The chain's newest sequence number and hash: record it elsewhere to anchor the log.

    Example:

      $ mloop audit head >> audit-anchors.txt
    """
    report = _state.project().audit.verify()
    value = {"seq": report.head_seq, "hash": report.head_hash, "ok": report.ok}
    if as_json:
        out.emit_json(value)
    else:
        out.console.print(f"{report.head_seq} {report.head_hash}", highlight=False)


@app.command("log")
def log(
    action: str | None = typer.Option(None, "--action", help="Filter, * allowed: data.*"),
    resource: str | None = typer.Option(None, "--resource", help="Filter, * allowed: dataset:*"),
    actor: str | None = typer.Option(None, "--actor", help="Only this actor's events."),
    after: int = typer.Option(0, "--after", help="Only events after this sequence number."),
    limit: int = typer.Option(100, "--limit", "-n"),
    as_json: bool = JsonOpt,
) -> None:
    """Events in order: who did what, to what, when.

    Example:

      $ mloop audit log --action 'models.*' --actor alice -n 20
    """
    events = _state.project().audit.events(
        after=after, action=action, resource=resource, actor=actor, limit=limit
    )
    if as_json:
        out.emit_json([e.to_dict() for e in events])
        return
    out.table("Audit log", ["seq", "time (UTC)", "actor", "action", "resource", "details"],
              [(e.seq, e.ts, e.actor, e.action, e.resource, _brief(e.payload)) for e in events])  # fmt: skip


def _brief(payload: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in payload.items() if k not in ("fingerprint", "source"))[:120]

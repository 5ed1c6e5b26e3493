"""``mloop decisions``: architecture decisions recorded in the metadata store, with their trade-offs."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(
    help="Architecture decisions: context, options, choice, trade-off, owner, review date.",
    no_args_is_help=True,
)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


@app.command("add")
def add(
    title: str = typer.Option(..., "--title", help="What was decided, in a few words."),
    context: str = typer.Option("", "--context", help="The forces at play: requirements, constraints."),
    option: list[str] = typer.Option([], "--option", help="An option considered (repeatable)."),
    choice: str = typer.Option(..., "--choice", help="The option chosen (one of the --option values)."),
    tradeoff: str = typer.Option(..., "--tradeoff", help="What the choice gives up."),
    owner: str = typer.Option(..., "--owner", help="The user who owns the decision."),
    review_by: str = typer.Option(..., "--review-by", help="When to look at it again: YYYY-MM-DD."),
    link: list[str] = typer.Option(
        [], "--link", help="An object it concerns: endpoint:fraud, model:fraud/2."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Record an architecture decision (it gets the next id, ADR-n).

    Example:

      $ mloop decisions add --title 'Online store in Redis' --context 'p99 < 20 ms at 2k rps' \\
          --option SQLite --option Redis --choice Redis --tradeoff 'one more server to run' \\
          --owner alice --review-by 2027-03-01 --link endpoint:fraud
    """
    decision = _state.project().decisions.add(
        title, context=context, options=option, choice=choice, tradeoff=tradeoff, owner=owner,
        review_by=review_by, links=link,
    )  # fmt: skip
    if as_json:
        out.emit_json(decision.to_dict())
        return
    out.success(f"recorded {decision.id}: {decision.title} (review by {decision.review_by.isoformat()})")


@app.command("list")
def list_decisions(
    due: bool = typer.Option(False, "--due", help="Only accepted decisions whose review date has passed."),
    as_json: bool = JsonOpt,
) -> None:
    """Decisions, oldest first.

    Examples:

      $ mloop decisions list
      $ mloop decisions list --due --json
    """
    found = _state.project().decisions.list(due=due)
    if as_json:
        out.emit_json([d.to_dict() for d in found])
        return
    out.table(
        "Decisions" + (" due for review" if due else ""),
        ["id", "title", "choice", "trade-off", "owner", "status", "review by"],
        [(d.id, d.title, d.choice, d.tradeoff, d.owner, d.state, d.review_by.isoformat()) for d in found],
        no_wrap=("id", "review by"),
    )


@app.command("show")
def show(id: str = typer.Argument(..., help="The decision: ADR-n."), as_json: bool = JsonOpt) -> None:
    """One decision in full.

    Example:

      $ mloop decisions show ADR-1
    """
    decision = _state.project().decisions.get(id)
    if as_json:
        out.emit_json(decision.to_dict())
        return
    shown = {
        **decision.to_dict(),
        "created_at": decision.created_at,
    }  # a datetime prints without microseconds
    out.fields(
        f"{decision.id}: {decision.title}", {k: v for k, v in shown.items() if k not in ("id", "title")}
    )


@app.command("supersede")
def supersede(
    id: str = typer.Argument(..., help="The decision replaced: ADR-n."),
    by: str = typer.Option(..., "--by", help="The accepted decision that replaces it: ADR-m."),
) -> None:
    """Mark a decision superseded by a newer one (record that one first with `mloop decisions add`).

    Example:

      $ mloop decisions supersede ADR-1 --by ADR-3
    """
    decision = _state.project().decisions.supersede(id, by=by)
    out.success(f"{decision.id} is {decision.state}")

"""``mloop artifacts``: check the artifact store."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="The content-addressed artifact store.", no_args_is_help=True)


@app.command()
def verify(as_json: bool = typer.Option(False, "--json", help="Print JSON for machines.")) -> None:
    """Re-hash every blob; list the corrupt ones (exit code 1 if any).

    Examples:

      $ mloop artifacts verify
      $ mloop artifacts verify --json
    """
    store = _state.project().artifacts
    digests = list(store.digests())
    corrupt = [d for d in digests if not store.verify(d)]
    if as_json:
        out.emit_json({"checked": len(digests), "corrupt": corrupt})
    elif corrupt:
        out.err.print(f"[red]✗ {len(corrupt)} corrupt blob(s)[/red] of {len(digests)} in {store.url}:")
        for digest in corrupt:
            out.err.print(f"  - sha256:{digest}")
    else:
        out.success(f"{len(digests)} blob(s) intact in {store.url}")
    if corrupt:
        raise typer.Exit(1)

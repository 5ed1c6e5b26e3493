"""``mloop artifacts``: check the artifact store, and clear what killed uploads left in it."""

from __future__ import annotations

import typer

from mloop._time import parse_duration
from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="The content-addressed artifact store.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")


@app.command()
def verify(as_json: bool = JsonOpt) -> None:
    """Re-hash every blob; list the corrupt ones (exit code 1 if any) and the temp files of uploads
    (in flight, or left by a killed process: `mloop artifacts clean` removes the old ones).

    Examples:

      $ mloop artifacts verify
      $ mloop artifacts verify --json
    """
    report = _state.project().housekeeping.verify_artifacts()
    if as_json:
        out.emit_json(report.to_dict())
    elif report.corrupt:
        out.err.print(
            f"[red]✗ {len(report.corrupt)} corrupt blob(s)[/red] of {report.checked} in {report.url}:"
        )
        for digest in report.corrupt:
            out.err.print(f"  - sha256:{digest}")
    else:
        out.success(f"{report.checked} blob(s) intact in {report.url}")
    if report.temp_files and not as_json:
        out.err.print(f"{len(report.temp_files)} temp file(s) of uploads (path, bytes, age):")
        for temp in report.temp_files:
            shown = temp.to_dict(report.at)
            line = f"  - {shown['path']}  {shown['size']:,} B  {shown['age_seconds']:,.0f} s old"
            out.err.print(line, soft_wrap=True, markup=False)
        out.err.print(
            "Those older than an hour were left by killed uploads: `mloop artifacts clean` removes them.",
            soft_wrap=True,
        )
    if report.corrupt:
        raise typer.Exit(1)


@app.command()
def clean(
    older_than: str = typer.Option(
        "1h", "--older-than", help="Remove temp files not written to for this long."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Remove the temp files that killed uploads left in the artifact store (needs project.admin).

    Files younger than --older-than (default 1h) are left alone: they may be uploads in flight.

    Examples:

      $ mloop artifacts clean
      $ mloop artifacts clean --older-than 1d --json
    """
    age = parse_duration(older_than, what="--older-than")
    project = _state.project()
    removed = project.housekeeping.clean_temp_files(*([] if age is None else [age]))
    if as_json:
        out.emit_json({"removed": [t.key for t in removed], "bytes": sum(t.size for t in removed)})
    else:
        out.success(
            f"removed {len(removed)} temp file(s), {sum(t.size for t in removed):,} bytes, from {project.artifacts.url}"
        )

"""``mloop score``: batch predictions for a Parquet file, with features from the offline store."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli import _output as out
from mloop.cli import _state


def score(
    target: str = typer.Argument(
        ..., help="Endpoint (its primary version) or model: fraud (alias champion, else newest), fraud:3, fraud@champion."
    ),
    input_path: Path = typer.Option(..., "--input", "-i", help="Parquet file of rows to score.", dir_okay=False),
    output_path: Path = typer.Option(..., "--output", "-o", help="Parquet file to write (replaced atomically).",
                                     dir_okay=False),
    timestamp: str = typer.Option("ts", "--timestamp", help="Column of each row's time (for the feature lookup)."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows per chunk."),
    workers: int | None = typer.Option(None, "--workers", help="Processes; default min(CPUs, 4); 1 = this one."),
    version: int | None = typer.Option(None, "--version", "-v", help="Model version to score with."),
    alias: str | None = typer.Option(None, "--alias", "-a", help="Model alias to score with."),
    keep: list[str] = typer.Option([], "--keep", help="Only these input columns in the output (repeat or a,b)."),
    executor: str | None = typer.Option(None, "--executor", help="ray, ray:HOST:PORT or ray://HOST:PORT: Ray Data "
                                        "on that cluster; inprocess; process. Default: compute.executor if Ray."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
) -> None:  # fmt: skip
    """Score every row of a Parquet file; features are looked up as of each row's time (point in time).

    Examples:

      $ mloop score fraud -i rows.parquet -o scored.parquet
      $ mloop score fraud@champion -i rows.parquet -o scored.parquet --keep id,ts
      $ mloop score fraud -i rows.parquet -o scored.parquet --executor ray
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from mloop.serving.scoring.job import score as run

    columns = [c.strip() for item in keep for c in item.split(",") if c.strip()]
    bar = Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=out.err, transient=True, disable=not out.err.is_terminal or as_json,
    )  # fmt: skip
    task = bar.add_task("scoring", total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        report = run(_state.project(), target, input_path, output_path, timestamp=timestamp, chunk_rows=chunk_rows,
                     workers=workers, version=version, alias=alias, keep=columns or None, progress=tick,
                     executor=executor)  # fmt: skip
    if as_json:
        out.emit_json(report.to_dict())
        return
    out.fields("Scored", {
        "model": f"{report.model} v{report.version}", "endpoint": report.endpoint, "rows": report.rows,
        "chunks": report.chunks, "workers": report.workers, "output": report.output,
        "columns": report.columns,
    })  # fmt: skip
    for note in report.notes:
        out.console.print(note, highlight=False)
    out.success(
        f"{report.rows:,} rows scored in {report.seconds:.2f} s ({report.rows_per_second:,.0f} rows/s) "
        f"→ {report.output}"
    )

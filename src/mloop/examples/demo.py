"""``mloop demo``: the fraud-detection case study on embedded defaults.

Today it shows the first stage of the loop, validated ingestion: a day of card transactions arrives with
the defects real feeds have; every row is checked against the schema, good rows land in the dataset,
bad rows are quarantined with a reason, re-sending the file changes nothing, and every change is in the
tamper-evident audit log. Later stages (features, training, serving, monitoring, the loop) extend it.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from mloop.data.schema import Dataset
from mloop.errors import MloopError
from mloop.examples.fraud import SAMPLE_CSV, SCHEMA_YAML
from mloop.examples.fraud.generate import generate
from mloop.project import Project

MARKER = ".mloop-demo"


def run(folder: Path, *, fast: bool = False, console: Console | None = None) -> Project:
    console = console or Console()
    folder = _fresh(folder)
    started = time.perf_counter()
    console.print(
        Panel.fit("[bold]mloop demo[/bold] · fraud detection · stage 1: validated ingestion", style="cyan")
    )
    project = Project.open(folder, env={})
    schema = Dataset.from_yaml(SCHEMA_YAML)
    console.print(
        f"project [bold]{folder}[/bold] · metadata {project.store.url} · acting as {project.actor.name}\n"
    )

    console.rule("1 · a day of card transactions arrives (CSV, with the defects real feeds have)")
    sample = folder / "incoming" / "transactions.csv"
    sample.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_CSV, sample)
    report = project.data.ingest(sample, schema)
    _report(console, report)

    console.rule("2 · what was quarantined, and why")
    bad = project.data.quarantine("transactions")
    bad = bad.groupby("_reason", sort=False).head(1).head(10)
    table = Table(header_style="bold")
    for column in ("where", "txn_id", "reason", "offending value"):
        table.add_column(column, overflow="fold")
    for _, row in bad.iterrows():
        column = str(row["_reason"]).split(":", 1)[0]
        if column.startswith("key ("):
            column = column[len("key (") : -1].split(",")[0]
        value = row.get("_raw") if column == "csv" else row.get(column)
        where = (
            f"line {_cell(row.get('_line'))}" if _cell(row.get("_line")) else f"row {_cell(row.get('_row'))}"
        )
        table.add_row(where, _cell(row.get("txn_id")), str(row["_reason"]), repr(_cell(value)))
    console.print(table)

    console.rule("3 · the feed re-sends the same file: nothing changes")
    again = project.data.ingest(sample, "transactions")
    console.print(f"skipped={again.skipped} · {again.notes[-1] if again.notes else ''}\n")

    console.rule("4 · the next batch arrives as Parquet, with replayed transactions from yesterday")
    rows = 2_000 if fast else 50_000
    txns, _ = generate(
        rows, start=datetime(2026, 1, 8, tzinfo=UTC), days=1, customers=400, merchants=80, seed=43
    )
    replayed = project.data.read("transactions", limit=25)
    batch = folder / "incoming" / "transactions-2026-01-08.parquet"
    import pandas as pd

    pd.concat([txns, replayed[txns.columns]], ignore_index=True).to_parquet(batch, index=False)
    second = project.data.ingest(batch, "transactions")
    _report(console, second)

    console.rule("5 · a file that is not what it claims to be")
    broken = folder / "incoming" / "truncated.parquet"
    broken.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    try:
        project.data.ingest(broken, "transactions")
    except MloopError as exc:
        console.print(f"[red]refused[/red]: {exc}\n")

    console.rule("6 · every change is in the hash-chained audit log")
    events = Table(header_style="bold")
    for column in ("seq", "actor", "action", "resource", "rows read", "accepted", "quarantined"):
        events.add_column(column)
    for event in project.audit.events():
        p = event.payload
        events.add_row(str(event.seq), event.actor, event.action, event.resource,
                       *[str(p.get(k, "")) for k in ("rows_read", "rows_accepted", "rows_quarantined")])  # fmt: skip
    console.print(events)
    verdict = project.audit.verify()
    console.print(f"audit verify: {'[green]intact[/green]' if verdict.ok else '[red]TAMPERED[/red]'} "
                  f"({verdict.checked} events, head {verdict.head_hash[:16]}…)\n")  # fmt: skip

    info = project.data.info("transactions")
    console.print(
        Panel.fit(
            f"dataset [bold]transactions[/bold]: {info.rows:,} rows in {info.files} Parquet files, "
            f"{info.quarantined:,} rows quarantined with reasons, {info.ingestions} ingestions\n"
            f"done in {time.perf_counter() - started:.1f} s. Explore it:\n"
            f"  mloop -C {folder} data show transactions\n"
            f"  mloop -C {folder} data quarantine transactions\n"
            f"  mloop -C {folder} audit log",
            title="summary",
            style="green",
        )
    )
    return project


def _report(console: Console, report: object) -> None:
    from mloop.data.report import IngestReport

    assert isinstance(report, IngestReport)
    console.print(
        f"read [bold]{report.rows_read:,}[/bold] · accepted [green]{report.rows_accepted:,}[/green] · "
        f"quarantined [yellow]{report.rows_quarantined:,}[/yellow] · {report.rows_per_second:,.0f} rows/s"
    )
    if report.by_reason:
        table = Table(header_style="bold")
        table.add_column("reason")
        table.add_column("rows", justify="right")
        for reason, count in sorted(report.by_reason.items(), key=lambda kv: -kv[1]):
            table.add_row(reason, f"{count:,}")
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
    console.print()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "" if text in ("nan", "NaT", "<NA>", "None") else text


def _fresh(folder: Path) -> Path:
    """Recreate the demo folder; refuse to delete a folder the demo did not make."""
    folder = folder.resolve()
    if folder.exists():
        if not (folder / MARKER).exists() and any(folder.iterdir()):
            raise MloopError(
                f"{folder} exists and is not a demo folder; pass --dir with a new or empty folder."
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("created by `mloop demo`; deleted and recreated by the next run\n")
    return folder

"""``mloop data``: ingest, validate and inspect datasets. Parsing and formatting only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state

if TYPE_CHECKING:
    from mloop.data.report import IngestReport

app = typer.Typer(help="Ingest, validate and inspect datasets.", no_args_is_help=True)

DatasetOpt = typer.Option(..., "--dataset", "-d", help="Dataset name.")
SchemaOpt = typer.Option(None, "--schema", "-s", help="Schema YAML (columns, types, rules) for the dataset.")
DelimOpt = typer.Option(None, "--delimiter", help="CSV field delimiter (default ',').")
EncodingOpt = typer.Option(None, "--encoding", help="CSV text encoding (default utf-8), e.g. latin-1.")
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
_INGESTIONS = 10  # listed by `data show` without --all


def _options(delimiter: str | None, encoding: str | None) -> dict[str, str]:
    options = {}
    if delimiter is not None:
        options["delimiter"] = "\t" if delimiter in ("\\t", "tab") else delimiter
    if encoding is not None:
        options["encoding"] = encoding
    return options


class _Bar:
    """A Rich progress bar fed by the ingestion engine's (phase, fraction) callback."""

    PHASES = ("fingerprint", "read", "validate", "write")

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
            console=out.err, transient=True, disable=not enabled,
        )  # fmt: skip
        self.tasks = {phase: self.progress.add_task(phase, total=1.0, visible=False) for phase in self.PHASES}

    def __call__(self, phase: str, fraction: float) -> None:
        task = self.tasks.get(phase)
        if task is not None:
            self.progress.update(task, completed=fraction, visible=True)


def _run(
    validate_only: bool, file: Path, dataset: str, schema: Path | None, options: dict[str, str], as_json: bool
) -> IngestReport:
    project = _state.project(create=not validate_only)
    bar = _Bar(enabled=out.err.is_terminal and not as_json)
    call = project.data.validate if validate_only else project.data.ingest
    with bar.progress:
        return call(str(file), dataset, schema=schema, progress=bar, **options)


@app.command()
def ingest(
    file: Path = typer.Argument(..., help="CSV, TSV or Parquet file (or a Parquet glob)."),
    dataset: str = DatasetOpt,
    schema: Path | None = SchemaOpt,
    delimiter: str | None = DelimOpt,
    encoding: str | None = EncodingOpt,
    as_json: bool = JsonOpt,
    strict: bool = typer.Option(False, "--strict", help="Exit with code 3 if any row was quarantined."),
) -> None:
    """Validate every row of FILE; add the valid rows to the dataset and quarantine the rest with reasons.

    Creates the project's state (.mloop/) in the folder if it is not in a project yet. Exit code 3 when no
    row was accepted or a whole column was rejected (and with --strict, when any row was).

    Examples:

      $ mloop data ingest transactions.csv --dataset transactions
      $ mloop data ingest export.tsv -d transactions --schema transactions.yaml --strict
    """
    report = _run(False, file, dataset, schema, _options(delimiter, encoding), as_json)
    show_report(report, as_json)
    problem = _data_problem(report)
    if problem:
        out.err.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(3)
    if strict and report.rows_quarantined:
        raise typer.Exit(3)


def _data_problem(report: IngestReport) -> str | None:
    """Why an ingestion failed as a whole: no row accepted, or one column rejected in every row."""
    if report.skipped or report.rows_read == 0:
        return None
    per_column: dict[str, int] = {}
    for reason, rows in report.by_reason.items():
        column, sep, _ = reason.partition(": ")
        if sep:
            per_column[column] = per_column.get(column, 0) + rows
    whole = [c for c, rows in per_column.items() if rows >= report.rows_read]
    fix = f"fix the file or the schema (mloop data schema {report.dataset}); the rows are in quarantine"
    if whole:
        what = ", ".join(f"{c!r} ({_reasons_of(report, c)})" for c in whole)
        return f"column {what} was rejected in every row; {fix}."
    if report.rows_accepted == 0:
        return f"no row of {report.source} was accepted ({report.rows_quarantined:,} quarantined); {fix}."
    return None


def _reasons_of(report: IngestReport, column: str) -> str:
    return ", ".join(r.partition(": ")[2] for r in report.by_reason if r.startswith(column + ": "))


@app.command()
def validate(
    file: Path = typer.Argument(..., help="CSV, TSV or Parquet file."),
    dataset: str = DatasetOpt,
    schema: Path | None = SchemaOpt,
    delimiter: str | None = DelimOpt,
    encoding: str | None = EncodingOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check FILE against the dataset's schema and report; writes nothing. Exit code 3 if rows would fail.

    Example:

      $ mloop data validate new-batch.csv -d transactions
    """
    report = _run(True, file, dataset, schema, _options(delimiter, encoding), as_json)
    show_report(report, as_json)
    if report.rows_quarantined:
        raise typer.Exit(3)


def show_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        out.emit_json(report.to_dict())
        return
    verb = "Validated" if report.dry_run else "Skipped (already ingested)" if report.skipped else "Ingested"
    out.fields(
        f"{verb}: {report.source} → {report.dataset}",
        {
            "rows read": report.rows_read,
            "accepted": report.rows_accepted,
            "quarantined": report.rows_quarantined,
            "ingest id": report.ingest_id,
            "time range": f"{out.fmt(report.min_ts)} → {out.fmt(report.max_ts)}" if report.min_ts else None,
            "files": len(report.files) if not report.dry_run else None,
            "quarantine": report.quarantine,
            "speed": f"{report.rows_per_second:,.0f} rows/s"
            if report.seconds and not report.skipped
            else None,
        },
    )
    if report.by_reason:
        out.table(
            "Quarantined, by reason",
            ["reason", "rows"],
            sorted(report.by_reason.items(), key=lambda kv: -kv[1]),
        )
    for note in report.notes:
        out.warn(note)


@app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """Datasets of the project.

    Example:

      $ mloop data list
    """
    infos = _state.project().data.list()
    if as_json:
        out.emit_json([i.to_dict() for i in infos])
        return
    out.table(
        "Datasets",
        ["name", "rows", "quarantined", "ingestions", "schema v", "from", "to"],
        [(i.name, i.rows, i.quarantined, i.ingestions, i.schema_version, i.min_ts, i.max_ts) for i in infos],
    )


@app.command()
def show(
    name: str = typer.Argument(..., help="Dataset name."),
    limit: int = typer.Option(10, "--limit", "-n", help="Rows to print."),
    every: bool = typer.Option(False, "--all", help="List every ingestion, not only the last 10."),
    as_json: bool = JsonOpt,
) -> None:
    """A dataset's summary, its last ingestions and its first rows (--json: every ingestion).

    Examples:

      $ mloop data show transactions
      $ mloop data show transactions --all --json
    """
    data = _state.project().data
    info, ingestions, head = data.info(name), data.ingestions(name), data.read(name, limit=limit)
    if as_json:
        out.emit_json({"info": info.to_dict(), "ingestions": [r.to_dict() for r in ingestions],
                       "head": head.astype(str).to_dict(orient="records")})  # fmt: skip
        return
    out.fields(f"Dataset {name}", info.to_dict())
    shown = ingestions if every else ingestions[-_INGESTIONS:]
    older = len(ingestions) - len(shown)
    out.table(
        f"Ingestions{f' (the last {len(shown)})' if older else ''}",
        ["id", "source", "read", "accepted", "quarantined"],
        [(r.ingest_id, r.source, r.rows_read, r.rows_accepted, r.rows_quarantined) for r in shown],
    )
    if older:
        out.console.print(f"… {older:,} older; --all lists them", highlight=False)
    out.table(f"First {len(head)} rows", list(head.columns), head.astype(str).itertuples(index=False))


@app.command()
def schema(
    name: str = typer.Argument(..., help="Dataset name."),
    set_: Path | None = typer.Option(
        None, "--set", help="Record this schema YAML as the dataset's next version."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Print the dataset's schema as YAML (or JSON); with --set, record a new schema version.

    Examples:

      $ mloop data schema transactions > transactions.yaml
      $ mloop data schema transactions --set transactions.yaml
    """
    data = _state.project().data
    if set_ is not None:
        from mloop.data.schema import Dataset

        version = data.set_schema(Dataset.from_yaml(set_, name=name))
        out.success(f"schema of {name} is now version {version}")
        return
    dataset = data.schema(name)
    if as_json:
        out.emit_json(dataset.to_dict())
    else:
        sys.stdout.write(dataset.to_yaml())


@app.command()
def quarantine(
    name: str = typer.Argument(..., help="Dataset name."),
    ingest_id: str | None = typer.Option(None, "--ingest", help="Only this ingestion's rows."),
    limit: int = typer.Option(20, "--limit", "-n", help="Rows to print."),
    as_json: bool = JsonOpt,
) -> None:
    """Quarantined rows with their reasons.

    Example:

      $ mloop data quarantine transactions -n 50
    """
    frame = _state.project().data.quarantine(name, ingest_id)
    if as_json:
        out.emit_json(frame.head(limit).astype(str).to_dict(orient="records"))
        return
    records = frame.head(limit).to_dict(orient="records")
    columns, rows = _quarantine_rows(records)
    out.table(f"Quarantine of {name}: {len(frame):,} rows (showing {len(records)})", columns, rows,
              no_wrap=("row", "line"))  # fmt: skip
    if records:
        line = "; line: a line of the file that could not be read" if "line" in columns else ""
        out.console.print(f"row: 1 is the first data row{line}. Every column: --json", highlight=False)


def _quarantine_rows(records: list[dict[Any, Any]]) -> tuple[list[str], list[list[Any]]]:
    """What a person wants first: where the row was, why it was refused, the values refused; no internals."""
    has_line = any(_present(r.get("_line")) for r in records)
    has_file = len({r.get("_file") for r in records if _present(r.get("_file"))}) > 1
    columns = [*(["file"] if has_file else []), "row", *(["line"] if has_line else []), "reasons", "values"]
    rows = []
    for r in records:
        reasons = str(r.get("_reasons") or r.get("_reason") or "")
        named = [part.partition(": ")[0] for part in reasons.split("; ")]
        values = ", ".join(f"{c}={r[c]!r}" for c in dict.fromkeys(named) if c in r and _present(r[c]))
        if not values and _present(r.get("_raw")):
            values = str(r["_raw"]).strip()
        row = int(r["_row"]) + 1 if _present(r.get("_row")) else None
        line = int(r["_line"]) if _present(r.get("_line")) else None
        rows.append(
            [*([r.get("_file")] if has_file else []), row, *([line] if has_line else []), reasons, values]
        )
    return columns, rows


def _present(value: Any) -> bool:
    return value is not None and value == value and value != ""  # NaN != NaN

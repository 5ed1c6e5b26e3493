"""``mloop forget`` and ``mloop retention``: erase a data subject, purge what retention no longer keeps.
Parsing and formatting only."""

from __future__ import annotations

import typer

from mloop.cli import _output as out
from mloop.cli import _state

retention_app = typer.Typer(
    help="Delete prediction-log days and quarantine past retention.", no_args_is_help=True
)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
DryOpt = typer.Option(False, "--dry-run", help="Count what would go; change nothing.")


def forget(
    entity: str = typer.Option(
        ..., "--entity", "-e", help="The subject as COLUMN=VALUE, e.g. customer_id=42."
    ),
    dry_run: bool = DryOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Erase a data subject: their rows in datasets, push logs, the online store, the prediction log and
    feedback. Lists the model versions trained on data that held them (retrain those).

    Examples:

      $ mloop forget --entity customer_id=42 --dry-run
      $ mloop forget --entity customer_id=42
    """
    column, sep, value = entity.partition("=")
    if not sep or not column or not value:
        raise typer.BadParameter(
            "write the subject as COLUMN=VALUE, e.g. --entity customer_id=42", param_hint="--entity"
        )
    report = _state.project().privacy.forget(column.strip(), value.strip(), dry_run=dry_run)
    if as_json:
        out.emit_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    out.table(f"{column}: {verb} (key HMAC {report.key_hmac[:16]}…)", ["where", "rows"], report.places())
    if report.predictions.pending:
        out.warn(f"{report.predictions.pending} logged row(s) are in a running server's open segment; "
                 "run this again in a minute to remove them")  # fmt: skip
    for view in report.features.composite:
        out.warn(
            f"view {view} is keyed by several columns: its online rows were not erased; re-materialize it"
        )
    for view in report.features.external:
        out.warn(
            f"view {view} reads a Parquet file mloop does not manage: remove the subject from it yourself"
        )
    if report.models:
        out.warn("trained on data that held the subject, retrain: " + ", ".join(report.models))
    if not report.removed:
        out.success(f"nothing {'to remove' if dry_run else 'removed'}: no row of {column}={value} was found")
    elif not dry_run:
        out.success(f"removed {report.removed:,} row(s) and key(s); audit event privacy.forget recorded")


@retention_app.command()
def purge(dry_run: bool = DryOpt, as_json: bool = JsonOpt) -> None:
    """Delete prediction-log days and quarantine files older than retention: allows in mloop.yaml
    (mloop serve does this every hour).

    Examples:

      $ mloop retention purge --dry-run
      $ mloop retention purge --json
    """
    report = _state.project().privacy.purge(dry_run=dry_run)
    if as_json:
        out.emit_json(report.to_dict())
        return
    if report.prediction_log_days is None and report.quarantine_days is None:
        out.warn(
            "retention: sets no limit in mloop.yaml (prediction_log_days, quarantine_days): nothing to purge"
        )
        return
    out.fields(
        "Retention" + (" (dry run)" if dry_run else ""),
        {"prediction-log days kept": report.prediction_log_days, "quarantine days kept": report.quarantine_days,
         "prediction-log partitions": report.partitions, "prediction-log files": report.prediction_files,
         "quarantine files": report.quarantine_files, "quarantine rows": report.quarantine_rows},
    )  # fmt: skip

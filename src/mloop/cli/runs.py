"""``mloop runs``: list, search, show and compare tracked runs."""

from __future__ import annotations

from typing import Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state

app = typer.Typer(help="Experiments and tracked runs: list, search, show, compare.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
_METRIC_COLUMNS = 4


@app.command("list")
def list_runs(
    experiment: str | None = typer.Option(None, "--experiment", help="Only runs of this experiment."),
    filter: str | None = typer.Option(
        None, "--filter", help='e.g. "metrics.auc > 0.9 and params.num_leaves = 31"'
    ),
    order_by: list[str] = typer.Option([], "--order-by", help="e.g. 'metrics.auc desc' (repeatable)."),
    limit: int = typer.Option(20, "--limit", "-n", help="At most this many runs."),
    as_json: bool = JsonOpt,
) -> None:
    """Runs, newest first, or as --filter and --order-by select them.

    Examples:

      $ mloop runs list --experiment fraud -n 10
      $ mloop runs list --filter 'metrics.auc > 0.9' --order-by 'metrics.auc desc'
    """
    runs = _state.project().runs.search(experiment, filter=filter, order_by=order_by or None, limit=limit)
    if as_json:
        out.emit_json([r.to_dict() for r in runs])
        return
    wide = out.console.width >= 120
    metrics = _metric_columns(runs, order_by, fixed=75 if wide else 62)
    out.table(
        "Runs",
        ["id", "experiment", *(["name"] if wide else []), "status", "started (UTC)", "seconds", *metrics],
        [
            (r.id[:8], r.experiment, *([r.name] if wide else []), r.status,
             r.started_at.strftime("%m-%d %H:%M:%S"), r.duration_seconds, *[r.metrics.get(m) for m in metrics])
            for r in runs
        ],
    )  # fmt: skip


@app.command()
def show(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix of 6+ characters)."),
    as_json: bool = JsonOpt,
) -> None:
    """Everything recorded about one run.

    Example:

      $ mloop runs show 3f2a9c
    """
    run = _state.project().runs.get(run_id)
    if as_json:
        out.emit_json(run.to_dict())
        return
    git = run.info.get("git") or {}
    out.fields(
        f"Run {run.id}",
        {
            "experiment": run.experiment,
            "name": run.name,
            "status": run.status,
            "error": run.error,
            "parent": run.parent_id,
            "started (UTC)": run.started_at,
            "ended (UTC)": run.ended_at,
            "wall seconds": run.info.get("wall_seconds"),
            "cpu seconds": run.info.get("cpu_seconds"),
            "git": f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}" if git else None,
            "host": run.info.get("host"),
            "python": run.info.get("python"),
            "created by": run.created_by,
        },
    )
    out.table("Params", ["name", "value"], sorted(run.params.items()))
    out.table("Metrics (latest)", ["name", "value"], sorted(run.metrics.items()))
    if run.tags:
        out.table("Tags", ["name", "value"], sorted(run.tags.items()))
    if run.artifacts:
        out.table("Artifacts", ["name", "sha256", "bytes"],
                  [(n, a["digest"][:16] + "…", a["size"]) for n, a in sorted(run.artifacts.items())])  # fmt: skip


@app.command()
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes)."),
    as_json: bool = JsonOpt,
) -> None:
    """Params, metrics and tags of runs side by side; * marks the rows that differ.

    Example:

      $ mloop runs compare 3f2a9c 8b41d0
    """
    table = _state.project().runs.compare(run_ids)
    if as_json:
        out.emit_json(table)
        return
    columns = ["", *[f"{r['name']}\n{r['id'][:12]}" for r in table["runs"]]]
    rows: list[tuple[Any, ...]] = []
    for part in ("params", "metrics", "tags"):
        differs = set(table["differs"][part])
        for key, values in table[part].items():
            rows.append((f"{'* ' if key in differs else '  '}{part[:-1]}.{key}", *values))
    out.table("Compare", columns, rows)


@app.command()
def experiments(as_json: bool = JsonOpt) -> None:
    """Experiments with their number of runs.

    Example:

      $ mloop runs experiments
    """
    found = _state.project().runs.experiments()
    if as_json:
        out.emit_json([e.to_dict() for e in found])
        return
    out.table("Experiments", ["name", "runs", "created (UTC)", "last run (UTC)"],
              [(e.name, e.runs, e.created_at, e.last_started_at) for e in found])  # fmt: skip


# A training pipeline's runs are tagged with their task; its primary metrics are those `pipeline.tune` and the
# loop's gate optimise by default (roc_auc for binary classification, rmse for regression), measured on the
# test split, then the validation split. Other runs: the metrics named like a model's quality, then the most
# common; counts, curves and thresholds only when nothing else is logged.
_PRIMARY = {"binary": ("roc_auc", "pr_auc", "f1"), "regression": ("rmse", "mae", "r2")}
_QUALITY = ("auc", "roc_auc", "pr_auc", "f1", "accuracy", "precision", "recall", "rmse", "mae", "r2", "loss")
_SECONDARY = ("rows", "positives", "curve", "threshold", "best_iteration", "tp", "fp", "tn", "fn")


def _metric_columns(runs: list[Any], order_by: list[str], fixed: int) -> list[str]:
    """The metrics to show: those ordered by, the runs' primary metrics, then the most common; up to four."""
    wanted = [o.split()[0].partition(".")[2] for o in order_by if o.split()[0].startswith("metrics.")]
    counts: dict[str, int] = {}
    primary: dict[str, int] = {}
    for run in runs:
        for key in run.metrics:
            counts[key] = counts.get(key, 0) + 1
        for order, name in enumerate(_PRIMARY.get(str(run.tags.get("task")), ())):
            for part, key in enumerate((f"test_{name}", f"valid_{name}")):
                if key in run.metrics:
                    primary[key] = min(primary.get(key, 99), order * 2 + part)

    def rank(key: str) -> tuple[int, int, str]:
        if key.endswith(_SECONDARY):
            kind = 2
        elif key in _QUALITY or key.endswith(tuple(f"_{q}" for q in _QUALITY)):
            kind = 0
        else:
            kind = 1
        return (kind, -counts[key], key)

    common = sorted(counts, key=rank)
    fit = max(1, (out.console.width - fixed) // 16)  # what fits beside the fixed columns without wrapping
    ordered = [*wanted, *sorted(primary, key=lambda k: primary[k]), *common]
    return list(dict.fromkeys(ordered))[: min(fit, _METRIC_COLUMNS)]

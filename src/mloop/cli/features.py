"""``mloop features``: apply, plan, list, show, materialize, get, push, delete. Parsing and formatting only."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from mloop.cli import _output as out
from mloop.cli import _state
from mloop.errors import MloopError

app = typer.Typer(help="Feature definitions, training sets, the online store.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print JSON for machines.")
FileArg = typer.Argument(Path("features.py"), help="Python file defining entities, views, push sources.")


def _plan_table(result: Any, title: str) -> None:
    rows = []
    for change in result.changes:
        rows.append((change.kind.replace("_", " "), change.name, change.action, change.version,
                     "\n".join(change.diff)))  # fmt: skip
    out.table(title, ["kind", "name", "action", "version", "diff"], rows)


@app.command()
def plan(file: Path = FileArg, as_json: bool = JsonOpt) -> None:
    """Show what `apply` would change, with a diff per definition.

    Example:

      $ mloop features plan features.py
    """
    from mloop.features.loader import load_file

    result = _state.project().features.plan(load_file(file))
    if as_json:
        out.emit_json(result.to_dict())
    else:
        _plan_table(result, f"Plan for {file}")


@app.command()
def apply(file: Path = FileArg, as_json: bool = JsonOpt) -> None:
    """Record new and changed definitions (each change a new version), all or nothing.

    Creates the project's state (.mloop/) in the folder if it is not in a project yet.

    Example:

      $ mloop features apply features.py
    """
    from mloop.features.loader import load_file

    result = _state.project(create=True).features.apply(load_file(file))
    if as_json:
        out.emit_json(result.to_dict())
        return
    _plan_table(result, f"Applied {file}")
    if result.pending:
        out.warn("changed views serve nulls until materialized: mloop features materialize --incremental")


@app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """Feature views with their features and freshness.

    Example:

      $ mloop features list
    """
    features = _state.project().features
    stored = features.definitions()
    fresh = {f.view: f for f in features.freshness()}
    rows = []
    for (kind, name), item in sorted(stored.items()):
        if kind not in ("feature_view", "on_demand_view"):
            continue
        spec = item.spec
        names = [f["name"] for f in spec.get("features", [])] + [
            a["name"] for a in spec.get("aggregations", [])
        ]
        names += [f["name"] for f in spec.get("outputs", [])]
        info = fresh.get(name)
        rows.append({
            "name": name, "kind": kind, "version": item.version, "features": names,
            "source": spec.get("source", {}).get("type", "on demand"), "ttl": spec.get("ttl"),
            "last_event_ts": info.last_event_ts if info else None,
            "lag_seconds": info.lag_seconds if info else None,
        })  # fmt: skip
    if as_json:
        out.emit_json(rows)
        return
    out.table("Feature views", ["name", "v", "source", "ttl", "features", "last event", "lag"],
              [(r["name"], r["version"], r["source"], r["ttl"], len(r["features"]), r["last_event_ts"],
                f"{r['lag_seconds']:,.0f} s" if r["lag_seconds"] is not None else None) for r in rows])  # fmt: skip


@app.command()
def show(view: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """A definition as stored (its newest version).

    Example:

      $ mloop features show customer_txn_stats
    """
    stored = _state.project().features.definitions()
    matches = [item for (kind, name), item in stored.items() if name == view]
    if not matches:
        raise MloopError(f"No definition named {view!r}; `mloop features list` shows them.")
    if as_json:
        out.emit_json([{"kind": m.kind, "version": m.version, "spec": m.spec} for m in matches])
        return
    for item in matches:
        out.fields(f"{item.kind.replace('_', ' ')} {item.name} (version {item.version})", item.spec)


@app.command()
def materialize(
    start: datetime | None = typer.Option(None, "--start", help="Start (exclusive), ISO time, UTC."),
    end: datetime | None = typer.Option(None, "--end", help="End (inclusive), ISO time, UTC; default now."),
    incremental: bool = typer.Option(False, "--incremental", help="From each view's watermark."),
    view: list[str] = typer.Option([], "--view", help="Only these views (repeat)."),
    chunk: str = typer.Option("1d", "--chunk", help="Chunk size; each chunk is committed."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="ray, ray:HOST:PORT or ray://HOST:PORT: chunks in parallel on Ray. Default: compute.executor.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Load the online store from the offline sources, chunk by chunk (resumable).

    Examples:

      $ mloop features materialize --incremental
      $ mloop features materialize --start 2026-01-01 --end 2026-02-01 --view customer_txn_stats
      $ mloop features materialize --incremental --executor ray
    """
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from mloop._time import as_utc, utcnow

    features = _state.project().features
    progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                        console=out.err, transient=True, disable=not out.err.is_terminal or as_json)  # fmt: skip
    task = progress.add_task("materializing", total=1.0)
    with progress:

        def tick(name: str, fraction: float) -> None:
            progress.update(task, description=name, completed=fraction)

        views = view or None
        if incremental or start is None:
            report = features.materialize_incremental(
                as_utc(end) if end else None, views=views, chunk=chunk, progress=tick, executor=executor
            )
        else:
            report = features.materialize(as_utc(start), as_utc(end) if end else utcnow(), views=views, chunk=chunk,
                                          progress=tick, executor=executor)  # fmt: skip
    if as_json:
        out.emit_json(report.to_dict())
        return
    out.table("Materialized", ["view", "chunks", "rows", "values", "last event"],
              [(n, v["chunks"], v["rows"], v["values"], v["last_event_ts"]) for n, v in report.views.items()])  # fmt: skip
    out.success(
        f"{report.values:,} feature values in {report.seconds:.2f} s ({report.values_per_second:,.0f}/s)"
    )


@app.command()
def get(
    entity: list[str] = typer.Option(
        ..., "--entity", "-e", help="Join key or request field: name=value (repeat)."
    ),
    feature: list[str] = typer.Option(..., "--feature", "-f", help="view:feature or view:* (repeat)."),
    as_json: bool = JsonOpt,
) -> None:
    """Read features from the online store for one entity.

    Example:

      $ mloop features get -e customer_id=42 -f customer_txn_stats:amount_count_24h
    """
    row: dict[str, Any] = {}
    for item in entity:
        name, sep, value = item.partition("=")
        if not sep:
            raise MloopError(f"--entity {item!r}: write it as name=value, e.g. --entity customer_id=42.")
        row[name] = _scalar(value)
    result = _state.project().features.online([row], feature)
    flat = {k: v[0] for k, v in result.items()}
    if as_json:
        out.emit_json(flat)
    else:
        out.fields("Online features", flat)


@app.command()
def push(
    source: str = typer.Argument(..., help="Push source name."),
    file: Path = typer.Argument(..., help="Rows as JSON (a list of objects), JSON lines, CSV or Parquet."),
    as_json: bool = JsonOpt,
) -> None:
    """Push rows: online at once, and appended to the offline log.

    Example:

      $ mloop features push txn_push rows.jsonl
    """
    report = _state.project().features.push(source, _rows(file))
    if as_json:
        out.emit_json(report.to_dict())
    else:
        out.success(f"pushed {report.rows} row(s) to {source} → views {', '.join(report.views) or 'none'}")


@app.command()
def delete(name: str = typer.Argument(...), kind: str = typer.Option("feature_view", "--kind")) -> None:
    """Delete a definition (refused while something depends on it).

    Example:

      $ mloop features delete customer_txn_stats
    """
    _state.project().features.delete(name, kind)
    out.success(f"deleted {kind.replace('_', ' ')} {name}")


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _rows(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise MloopError(f"No file {path}.")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json.loads(path.read_text())
    if suffix in (".jsonl", ".ndjson"):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise MloopError(f"Cannot read rows from {path}: use .json, .jsonl, .csv or .parquet.")

"""Output for the CLI: Rich tables on a terminal (no colour when piped or with NO_COLOR), JSON with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


def emit_json(value: Any) -> None:
    """JSON to stdout, unwrapped, for machines."""
    sys.stdout.write(json.dumps(value, indent=2, default=_default, sort_keys=False) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, no_wrap: Iterable[str] = ()
) -> None:
    """A table that fits the terminal: long text folds, but times (and the ``no_wrap`` columns) never
    wrap, since a timestamp split over two lines reads as two numbers."""
    rows = [list(row) for row in rows]
    keep = set(no_wrap)
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        whole = column in keep or any(isinstance(row[i], datetime) for row in rows if i < len(row))
        out.add_column(column, overflow="ellipsis" if whole else "fold", no_wrap=whole)
    for row in rows:
        out.add_row(*[fmt(v) for v in row])
    console.print(out)


def short_time(value: Any) -> Any:
    """An ISO time string as a datetime (shown as 2026-03-01 12:00:05, never wrapped); other values as given."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def fields(title: str, items: dict[str, Any]) -> None:
    out = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for key, value in items.items():
        out.add_row(key, fmt(value))
    console.print(out)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def success(message: str) -> None:
    console.print(f"[green]✓[/green] {message}")


def warn(message: str) -> None:
    err.print(f"[yellow]![/yellow] {message}")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):
        return value.item()
    return str(value)

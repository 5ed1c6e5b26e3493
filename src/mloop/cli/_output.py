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
_TIME = "%Y-%m-%d %H:%M:%S"


def emit_json(value: Any) -> None:
    """JSON to stdout, unwrapped, for machines."""
    sys.stdout.write(json.dumps(value, indent=2, default=_default, sort_keys=False) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, no_wrap: Iterable[str] = ()
) -> None:
    """A table that fits the terminal: long text folds, but times (and the ``no_wrap`` columns) never
    wrap, since a timestamp split over two lines reads as two numbers; on a narrow terminal times are
    shortened (``03-01 12:00``) so the other columns keep room."""
    rows = [list(row) for row in rows]
    keep = set(no_wrap)
    times = {i for i in range(len(columns)) if any(isinstance(r[i], datetime) for r in rows if i < len(r))}
    # 19 characters per full time, about 8 for every other column, 3 for each column's borders and padding.
    wanted = 19 * len(times) + 8 * (len(columns) - len(times)) + 3 * len(columns) + 1
    time_format = _TIME if wanted <= console.width else "%m-%d %H:%M"
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        whole = column in keep or i in times
        out.add_column(column, overflow="ellipsis" if whole else "fold", no_wrap=whole)
    for row in rows:
        out.add_row(*[v.strftime(time_format) if isinstance(v, datetime) else fmt(v) for v in row])
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
        return value.strftime(_TIME)
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

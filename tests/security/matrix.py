"""The permission tables of docs/security.md, read for the permission matrix test.

A table follows a ``<!-- permissions: NAME -->`` comment; its first column names a route
(`` `GET /v1/...` ``) or a command (`` `mloop data list` ``), the other columns are identities, and a cell
is ✓ (allowed) or empty (refused: 401 or 403, or the command's refusal)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
ALLOWED = "✓"


def table(name: str, doc: Path = DOC) -> dict[str, dict[str, bool]]:
    """``{row: {column: allowed}}`` of the table after ``<!-- permissions: name -->``."""
    lines, at = _table(name, doc)
    header = _cells(lines[at])
    rows: dict[str, dict[str, bool]] = {}
    for line in lines[at + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if len(cells) != len(header):
            raise AssertionError(f"{doc}: row {line!r} has {len(cells)} cells, the header {len(header)}")
        key = cells[0].strip("`").removeprefix("mloop ")
        if key in rows:
            raise AssertionError(f"{doc}: {key!r} is in table {name} twice")
        for column, cell in zip(header[1:], cells[1:], strict=True):
            if cell not in ("", ALLOWED):
                raise AssertionError(f"{doc}: cell {key!r} × {column!r} is {cell!r}; write ✓ or nothing")
        rows[key] = {
            column.strip("`"): cell == ALLOWED for column, cell in zip(header[1:], cells[1:], strict=True)
        }
    return rows


def notes(name: str, doc: Path = DOC) -> dict[str, str]:
    """``{row: reason}`` of a two-column table (what the matrix leaves out, and why)."""
    lines, at = _table(name, doc)
    out = {}
    for line in lines[at + 2 :]:
        if not line.startswith("|"):
            break
        key, reason = _cells(line)
        out[key.strip("`").removeprefix("mloop ")] = reason
    return out


def render(rows: dict[str, dict[str, bool]], first: str) -> str:
    """The markdown of a table (to paste into the docs when a route or command is added)."""
    columns = list(next(iter(rows.values())))
    out = [f"| {first} | " + " | ".join(f"`{c}`" if "@" in c else c for c in columns) + " |",
           "|---|" + ":-:|" * len(columns)]  # fmt: skip
    for key, cells in rows.items():
        out.append(f"| `{key}` | " + " | ".join(ALLOWED if cells[c] else "" for c in columns) + " |")
    return "\n".join(out)


def _table(name: str, doc: Path) -> tuple[list[str], int]:
    """The lines of ``doc`` and the index of the header of the table marked ``name``."""
    lines = doc.read_text().splitlines()
    marker = f"<!-- permissions: {name} -->"
    if marker not in lines:
        raise AssertionError(f"{doc} has no table marked {marker}")
    at = lines.index(marker) + 1
    while not lines[at].strip():
        at += 1
    return lines, at


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

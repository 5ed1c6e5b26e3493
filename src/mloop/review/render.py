"""A review as Markdown (for a pull request or a wiki) and as one self-contained HTML file (for a review
meeting: no script, no external URL, opens from a mail attachment)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from mloop._files import write_text
from mloop.errors import MalformedInput
from mloop.review.model import CONCERNS, Check
from mloop.review.scores import LEVELS, SECTION_NAMES
from mloop.review.service import Review

MARK = {"pass": "✓ pass", "warn": "! warn", "fail": "✗ fail", "n/a": "– n/a", "error": "? error"}

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def ticks(text: str) -> Markup:
    """``text`` escaped, with its `backticked` commands as <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


_ENV.filters["ticks"] = ticks


def headline(review: Review) -> str:
    """One line: the counts by status and the worst weight found."""
    counts = ", ".join(
        f"{review.count(s)} {s}" for s in ("fail", "warn", "pass", "n/a", "error") if review.count(s)
    )
    worst = next((s for s in ("high", "medium", "low") if any(f.weight == s for f in review.findings)), None)
    return f"{len(review.findings)} checks: {counts}" + (f" · worst finding: {worst}" if worst else "")


def markdown(review: Review) -> str:
    lines = [
        f"# Architecture review of {review.project}",
        "",
        f"{review.at:%Y-%m-%d %H:%M} UTC · {headline(review)}",
        "",
        f"- **ML Test Score**: {review.mlts.line()}",
        f"- **MLOps maturity** (Microsoft's levels 0–4): level {review.maturity.level}, {review.maturity.name}",
    ]
    if review.maturity.level < max(LEVELS):
        missing = ", ".join(f"`{c}`" for c in review.maturity.next_failing) or "none"
        lines.append(f"  - to reach level {review.maturity.level + 1}: {missing}")
    for concern, findings in review.by_concern().items():
        lines += ["", f"## {CONCERNS[concern]}", "", "| check | status | severity | finding | fix |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for f in findings:
            fix = "" if f.status in ("pass", "n/a") else _cell(f.fix)
            lines.append(
                f"| `{f.check.id}` | {MARK[f.status]} | {f.check.severity} | {_cell(f.outcome.summary)} | {fix} |"
            )
        details = [f for f in findings if f.outcome.evidence]
        for f in details:
            lines += ["", f"<details><summary><code>{f.check.id}</code>: evidence</summary>", ""]
            lines += [f"- {_cell(e)}" for e in f.outcome.evidence]
            if f.outcome.refs:
                lines.append(f"- refs: {', '.join(f'`{r}`' for r in f.outcome.refs)}")
            lines += ["", "</details>"]
    lines += [
        "",
        "## ML Test Score",
        "",
        "| test | section | score | how | checks |",
        "|---|---|---|---|---|",
    ]
    for t in review.mlts.tests:
        how = t.how + (f": {_cell(t.evidence)}" if t.evidence else "")
        lines.append(f"| {t.id} {t.title} | {SECTION_NAMES[t.id.split('-')[0]]} | {t.score:g} | {how} | "
                     f"{', '.join(t.checks) or '–'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def html(review: Review) -> str:
    return _ENV.get_template("review.html").render(
        review=review, concerns=CONCERNS, mark=MARK, headline=headline(review), levels=LEVELS,
        sections=SECTION_NAMES,
    )  # fmt: skip


def checks_markdown(checks: Iterable[Check]) -> str:
    """The table of checks that docs/review.md carries (``mloop review --list --format markdown``)."""
    order = list(CONCERNS)
    lines = [
        "| check | severity | what should hold | ML Test Score | maturity | fix |",
        "|---|---|---|---|---|---|",
    ]
    for c in sorted(checks, key=lambda c: (order.index(c.concern), c.id)):
        lines.append(f"| `{c.id}` | {c.severity} | {_cell(c.title)} | {', '.join(c.mlts) or '–'} | "
                     f"{c.maturity or '–'} | {_cell(c.fix)} |")  # fmt: skip
    return "\n".join(lines) + "\n"


FORMATS = ("markdown", "html", "json")


def text(review: Review, fmt: str) -> str:
    """The review in ``fmt``: markdown, html or json."""
    if fmt == "markdown":
        return markdown(review)
    if fmt == "html":
        return html(review)
    if fmt == "json":
        return json.dumps(review.to_dict(), indent=2, default=str) + "\n"
    raise MalformedInput(f"Unknown report format {fmt!r}; use one of {', '.join(FORMATS)}.")


def format_of(path: Path) -> str:
    """The format a file name asks for: .md markdown, .json json, anything else html."""
    return {".md": "markdown", ".markdown": "markdown", ".json": "json"}.get(path.suffix.lower(), "html")


def save(review: Review, path: str | Path, fmt: str) -> Path:
    """Write the review to ``path`` whole or not at all (a temporary file, fsynced, then renamed)."""
    return write_text(path, text(review, fmt), what="review", option="--output")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

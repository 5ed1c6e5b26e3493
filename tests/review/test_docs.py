"""docs/review.md lists every check as `mloop review --list --format markdown` prints it."""

from __future__ import annotations

from pathlib import Path

from mloop.review import render
from mloop.review.checks import load

DOC = Path(__file__).resolve().parents[2] / "docs" / "review.md"


def test_docs_review_carries_the_table_of_every_check_as_the_code_has_it() -> None:
    table = render.checks_markdown(load().values())
    assert table in DOC.read_text(), (
        "docs/review.md's table of checks is out of date: paste the output of "
        "`mloop review --list --format markdown` under '## The checks'"
    )

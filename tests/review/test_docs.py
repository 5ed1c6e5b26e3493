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


def test_every_command_a_fix_names_exists() -> None:
    """A fix that names `mloop ...` names a command the CLI has (words up to the first option or PLACEHOLDER)."""
    import re
    from typing import Any

    import typer

    from mloop.cli.main import app

    root = typer.main.get_command(app)
    missing = []
    for check in load().values():
        for quoted in re.findall(r"`(mloop [^`]+)`", check.fix):
            command: Any = root
            for word in quoted.split()[1:]:
                # typer's groups are not click.Group instances: a group is what has subcommands
                if not hasattr(command, "commands") or not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                found = command.commands.get(word)
                if found is None:
                    missing.append(f"{check.id}: `{quoted}` ({word!r} is not a command of {command.name})")
                    break
                command = found
    assert not missing, missing

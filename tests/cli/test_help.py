"""Every command's ``--help`` reads like a finished tool's: an example, no type on flags, arguments named as
in the docs; ``mloop --version`` works; and the command starts without loading the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from mloop import __version__
from mloop.cli.main import app
from tests.cli.conftest import Run


def _leaves(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name)


LEAVES = sorted(_leaves(typer.main.get_command(app)))


def test_the_tree_is_complete() -> None:
    assert ("data", "ingest") in LEAVES and ("version",) in LEAVES and len(LEAVES) > 60


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_help_has_an_example_and_no_bool_metavar(cli: Run, path: tuple[str, ...]) -> None:
    result = cli(*path, "--help")
    assert result.code == 0
    assert "Example" in result.out, f"mloop {' '.join(path)} --help has no example"
    assert "$ mloop " + " ".join(path) in result.out  # the example runs this very command
    assert "<bool>" not in result.out
    usage = next(line for line in result.out.splitlines() if "Usage:" in line)
    assert "{" not in usage and usage.split("[OPTIONS]")[1].upper() == usage.split("[OPTIONS]")[1]


def test_group_help_has_no_bool_metavar(cli: Run) -> None:
    for group in ("", "data", "loop", "keys"):
        result = cli(*([group] if group else []), "--help")
        assert result.code == 0 and "<bool>" not in result.out and "--help" in result.out


def test_examples_keep_their_line_breaks(cli: Run) -> None:
    lines = cli("data", "show", "--help").out.splitlines()
    examples = [line.strip() for line in lines if line.strip().startswith("$ mloop")]
    assert examples == ["$ mloop data show transactions", "$ mloop data show transactions --all --json"]


def test_version_flag_and_command(cli: Run) -> None:
    assert cli("--version").out.strip() == __version__
    assert cli("version").out.strip() == __version__


def test_short_flags_mean_one_thing_everywhere() -> None:
    """A short flag stands for the same long option in every command (the list is in docs/cli.md)."""
    meaning: dict[str, set[str]] = {}

    def walk(command: Any) -> None:
        for param in command.params:
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if not o.startswith("--")):
                meaning.setdefault(short, set()).update(longs)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    # -o is the file a command writes: `score --output`, `monitor report --out`.
    assert meaning.pop("-o") <= {"--output", "--out"}
    assert {k: v for k, v in meaning.items() if len(v) > 1} == {}
    assert meaning["-n"] == {"--limit"} and meaning["-v"] == {"--version"}


def test_starting_the_cli_loads_no_data_or_database_library() -> None:
    heavy = ("pandas", "pyarrow", "sqlalchemy", "duckdb", "numpy", "rich.progress")
    code = f"import sys, mloop.cli.main; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"

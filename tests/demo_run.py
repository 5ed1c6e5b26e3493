"""``mloop demo --fast``, run once per test session and shared: the demo's own test reads its outcome, and
the docs' command tests start from a copy of its folder (the demo takes about a minute here; running it
once instead of twice keeps ``make test`` within its budget)."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console


@dataclass(frozen=True)
class DemoRun:
    folder: Path  # read it, don't change it: copy the folder to change anything
    summary: dict[str, Any]
    text: str  # what the demo printed (a 160-column console)
    stderr: str  # what Python wrote to stderr meanwhile
    logs_left_alone: bool  # the mloop logger's handler after the run is the one before it


def run_demo(folder: Path) -> DemoRun:
    """Run the fast demo into ``folder`` with the ``mloop`` logger writing to a stream closed since, as a CLI
    test run earlier leaves it (its runner's stream): the demo must log elsewhere, and only while it runs."""
    from mloop.examples.demo import run
    from mloop.logs import configure

    logger = logging.getLogger("mloop")
    saved = logger.handlers[:], logger.level, logger.propagate
    closed = io.StringIO()
    configure("WARNING", "json", stream=closed)
    closed.close()
    console = Console(record=True, width=160, file=io.StringIO())
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            summary = run(folder, fast=True, console=console)
        left_alone = getattr(logger.handlers[0], "stream", None) is closed
    finally:
        logger.handlers[:], level, logger.propagate = saved
        logger.setLevel(level)
    return DemoRun(folder, summary, console.export_text(), err.getvalue(), left_alone)

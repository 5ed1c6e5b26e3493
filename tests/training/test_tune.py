"""Tuning and its executor: the search closes an executor it opened, and leaves one passed in open."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from mloop import Project
from mloop.training.executors import EXECUTORS, InProcessExecutor
from tests.training.fraud import setup


class RecordingExecutor(InProcessExecutor):
    """Runs in process, and remembers whether it was closed."""

    opened: ClassVar[list[RecordingExecutor]] = []

    def __init__(self, jobs: int = 1) -> None:
        self.closed = False
        RecordingExecutor.opened.append(self)

    def close(self) -> None:
        self.closed = True


def test_tune_closes_the_executor_it_opened_but_not_one_passed_in(
    sqlite_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _ = setup(sqlite_project, tmp_path, rows=4_000)
    monkeypatch.setitem(EXECUTORS, "recording", f"{__name__}:RecordingExecutor")
    monkeypatch.setattr(RecordingExecutor, "opened", [])

    pipeline.tune(sqlite_project, {"num_leaves": (4, 31)}, trials=2, executor="recording")
    [opened] = RecordingExecutor.opened
    assert opened.closed

    mine = RecordingExecutor()
    pipeline.tune(sqlite_project, {"num_leaves": (4, 31)}, trials=2, executor=mine)
    assert not mine.closed

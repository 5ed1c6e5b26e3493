"""A batch-scoring job the loop runs on a schedule: every field, every morning, into partitioned Parquet.

>>> job = ScoringJob("daily-yield", target="yield@champion", input="fields.parquet", output="preds/",
...                  cron="0 4 * * *", partition_by="date")                       # doctest: +SKIP
>>> LoopController(project, policies=[], jobs=[job]).tick()                       # doctest: +SKIP

At each due time the job takes a snapshot of its input: the Parquet file ``input`` (the entities to score,
such as one row per field), or what the callable ``input(due)`` returns. Rows without a ``timestamp`` column
are scored as of the due time (the column is added), so features are looked up point in time at the
moment the run is for, not when it happens to start. The snapshot is written once per due time under
``output/_inputs/`` and reused by a retry, so a run that failed or was killed midway resumes on the same
rows and commits each chunk once (:mod:`mloop.serving.scoring.partitions`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.errors import ConfigError, MalformedInput, NotFound, SchemaError
from mloop.loop.schedule import Cron
from mloop.project import Project
from mloop.serving.scoring.job import score
from mloop.serving.scoring.partitions import check_folder

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Input = str | Path | Callable[[datetime], pd.DataFrame]


@dataclass(frozen=True)
class ScoringJob:
    """Score ``input`` with ``target`` into the folder ``output`` at each time of ``cron`` (UTC); the loop's
    :class:`~mloop.loop.controller.LoopController` runs it when due (see :mod:`mloop.loop.jobs`)."""

    name: str
    target: str
    input: Input
    output: str | Path
    cron: str = "0 4 * * *"
    partition_by: str = "date"
    timestamp: str = "ts"
    chunk_rows: int = 100_000
    workers: int | None = 1
    keep: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise MalformedInput(
                f"ScoringJob name {self.name!r}: use letters, digits, '-', '_' or '.', like 'daily-yield'."
            )
        Cron.parse(self.cron)  # refuse a bad expression when the job is made, not at 4 am

    def run(self, project: Project, due: datetime) -> dict[str, Any]:
        """Score the snapshot for ``due`` (resuming an interrupted run of it); the figures of the run."""
        output = check_folder(Path(self.output))
        snapshot = self._snapshot(output, due)
        report = score(project, self.target, snapshot, output, timestamp=self.timestamp,
                       chunk_rows=self.chunk_rows, workers=self.workers, keep=self.keep,
                       partition_by=self.partition_by)  # fmt: skip
        resumed = (
            f", resuming after {report.resumed_chunks} committed chunk(s)" if report.resumed_chunks else ""
        )
        return {"summary": f"scored {report.rows:,} rows with {report.model} v{report.version}{resumed}",
                "rows": report.rows, "model": report.model, "version": report.version,
                "resumed_chunks": report.resumed_chunks, "output": report.output,
                "rows_per_second": round(report.rows_per_second, 1)}  # fmt: skip

    def _snapshot(self, output: Path, due: datetime) -> Path:
        path = output / "_inputs" / f"{self.name}-{due:%Y%m%dT%H%M}.parquet"
        if path.is_file():  # a retry of this due time: the same rows as the first try
            return path
        frame = self._frame(due)
        if self.timestamp not in frame.columns:
            frame = frame.assign(**{self.timestamp: pd.Timestamp(due).tz_convert("UTC")})
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.tmp")
        frame.to_parquet(temp, index=False)
        os.replace(temp, path)
        return path

    def _frame(self, due: datetime) -> pd.DataFrame:
        if callable(self.input):
            frame = self.input(due)
            if not isinstance(frame, pd.DataFrame):
                raise SchemaError(
                    f"Scoring job {self.name!r}: input(due) returned {type(frame).__name__}; return a pandas "
                    "DataFrame of the rows to score (one per field, say)."
                )
            return frame
        source = Path(self.input)
        if not source.is_file():
            raise NotFound(f"Scoring job {self.name!r}: input {source} does not exist; pass a Parquet file of "
                           "the rows to score, or a function of the due time that returns them.")  # fmt: skip
        return pd.read_parquet(source)


_OPTIONS = {"name", "kind", "target", "input", "output", "cron", "partition_by", "timestamp", "chunk_rows", "workers",
            "keep"}  # fmt: skip


def jobs_from_settings(specs: Sequence[Any], root: Path) -> list[ScoringJob]:
    """The ``loop.jobs`` of mloop.yaml as jobs, their relative paths under the project folder ``root``:

    .. code-block:: yaml

        loop:
          jobs:
          - {name: daily-yield, target: yield@champion, input: fields.parquet, output: forecasts, cron: "0 4 * * *"}
    """
    out = []
    for i, spec in enumerate(specs):
        where = f"loop.jobs entry {i + 1} in mloop.yaml"
        if not isinstance(spec, dict):
            raise ConfigError(
                f"{where} is {spec!r}; write a mapping with name, target, input, output and cron."
            )
        unknown = sorted(set(spec) - _OPTIONS)
        if unknown or spec.get("kind", "scoring") != "scoring":
            raise ConfigError(f"{where}: unknown option(s) {unknown or [spec.get('kind')]}; a job is kind: scoring "
                              f"(the default) with {', '.join(sorted(_OPTIONS - {'kind'}))}.")  # fmt: skip
        missing = [k for k in ("name", "target", "input", "output") if k not in spec]
        if missing:
            raise ConfigError(f"{where} needs {', '.join(missing)} (name, target, input and output).")
        options = {k: v for k, v in spec.items() if k != "kind"}
        for key in ("input", "output"):
            options[key] = root / str(spec[key])
        try:
            out.append(ScoringJob(**options))
        except (TypeError, MalformedInput) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out

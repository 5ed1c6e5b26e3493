"""The SQL of run tracking, and the records it hands back: :class:`RunInfo` and :class:`Experiment`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mloop.store.schema import (
    ExperimentRow,
    LatestMetricRow,
    RunArtifactRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)


@dataclass(frozen=True)
class RunInfo:
    """One run as stored: what it was given, what it measured, where it ran.

    ``metrics`` holds each metric's latest value (highest step, then newest; NaN where that was NaN);
    ``info`` the environment (``git``, ``python``, ``packages``, ``host``), ``wall_seconds`` and
    ``cpu_seconds``, and ``param_values`` (the params as logged, before they became text).
    """

    id: str
    experiment: str
    name: str
    status: str  # running | finished | failed
    started_at: datetime
    ended_at: datetime | None
    parent_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"digest", "size"}
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_by: str = ""

    @property
    def duration_seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "duration_seconds": self.duration_seconds,
            "parent_id": self.parent_id,
            "params": self.params,
            "tags": self.tags,
            # JSON has no NaN or infinity: those go out as strings.
            "metrics": {k: v if math.isfinite(v) else str(v) for k, v in self.metrics.items()},
            "artifacts": self.artifacts,
            "info": self.info,
            "error": self.error,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Experiment:
    name: str
    created_at: datetime
    runs: int
    last_started_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "runs": self.runs,
            "last_started_at": None if self.last_started_at is None else self.last_started_at.isoformat(),
        }


def metric_value(value: float | None) -> float:
    """A stored metric value: NULL stands for NaN."""
    return math.nan if value is None else value


def load_runs(session: Session, ids: Sequence[str]) -> list[RunInfo]:
    """The runs ``ids``, in that order (ids not found are left out): five queries for any number, each a
    primary-key lookup."""
    if not ids:
        return []
    wanted = list(dict.fromkeys(ids))
    rows = session.execute(
        select(RunRow, ExperimentRow.name)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .where(RunRow.id.in_(wanted))
    ).all()
    params: dict[str, dict[str, str]] = {i: {} for i in wanted}
    tags: dict[str, dict[str, str]] = {i: {} for i in wanted}
    metrics: dict[str, dict[str, float]] = {i: {} for i in wanted}
    artifacts: dict[str, dict[str, dict[str, Any]]] = {i: {} for i in wanted}
    for run_id, key, value in session.execute(
        select(RunParamRow.run_id, RunParamRow.key, RunParamRow.value).where(RunParamRow.run_id.in_(wanted))
    ):
        params[run_id][key] = value
    for run_id, key, value in session.execute(
        select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(RunTagRow.run_id.in_(wanted))
    ):
        tags[run_id][key] = value
    for run_id, key, number in session.execute(
        select(LatestMetricRow.run_id, LatestMetricRow.key, LatestMetricRow.value).where(
            LatestMetricRow.run_id.in_(wanted)
        )
    ):
        metrics[run_id][key] = metric_value(number)
    for art in session.scalars(select(RunArtifactRow).where(RunArtifactRow.run_id.in_(wanted))):
        artifacts[art.run_id][art.name] = {"digest": art.digest, "size": art.size}
    by_id = {}
    for run, experiment in rows:
        by_id[run.id] = RunInfo(
            id=run.id,
            experiment=experiment,
            name=run.name,
            status=run.status,
            started_at=run.started_at,
            ended_at=run.ended_at,
            parent_id=run.parent_id,
            # Sorted here: an ORDER BY key would tempt PostgreSQL to walk the (key, value) index instead.
            params=dict(sorted(params[run.id].items())),
            tags=dict(sorted(tags[run.id].items())),
            metrics=dict(sorted(metrics[run.id].items())),
            artifacts=dict(sorted(artifacts[run.id].items())),
            info=run.info,
            error=run.error,
            created_by=run.created_by,
        )
    return [by_id[i] for i in wanted if i in by_id]

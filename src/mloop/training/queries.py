"""The SQL of run tracking, and the records it hands back: :class:`RunInfo` and :class:`Experiment`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mloop.store.schema import (
    ExperimentRow,
    LatestMetricRow,
    MetricRow,
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
    heartbeat_at: datetime | None = None  # while running: its process's last sign of life

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
            "heartbeat_at": None if self.heartbeat_at is None else self.heartbeat_at.isoformat(),
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
            heartbeat_at=run.heartbeat_at,
        )
    return [by_id[i] for i in wanted if i in by_id]


def experiment_id(session: Session, project_id: int, name: str) -> int | None:
    return session.scalar(
        select(ExperimentRow.id).where(ExperimentRow.project_id == project_id, ExperimentRow.name == name)
    )


def experiment_ids(session: Session, project_id: int, names: Sequence[str]) -> dict[str, int]:
    """The ids of the experiments among ``names`` that exist, by name."""
    rows = session.execute(
        select(ExperimentRow.name, ExperimentRow.id).where(
            ExperimentRow.project_id == project_id, ExperimentRow.name.in_(list(names))
        )
    ).all()
    return {name: id_ for name, id_ in rows}


def experiment_names(session: Session, project_id: int, *, limit: int) -> list[str]:
    """The experiment names, the newest created first."""
    query = select(ExperimentRow.name).where(ExperimentRow.project_id == project_id)
    return list(
        session.scalars(query.order_by(ExperimentRow.created_at.desc(), ExperimentRow.id.desc()).limit(limit))
    )


def experiments(session: Session, project_id: int) -> list[Experiment]:
    """Every experiment of the project with its run count and newest start, by name."""
    rows = session.execute(
        select(
            ExperimentRow.name, ExperimentRow.created_at, func.count(RunRow.id), func.max(RunRow.started_at)
        )
        .outerjoin(RunRow, RunRow.experiment_id == ExperimentRow.id)
        .where(ExperimentRow.project_id == project_id)
        .group_by(ExperimentRow.id, ExperimentRow.name, ExperimentRow.created_at)
        .order_by(ExperimentRow.name)
    ).all()
    return [Experiment(name, created, count, last) for name, created, count, last in rows]


def experiment_of(session: Session, project_id: int, run_id: str) -> str | None:
    """The name of the experiment of run ``run_id`` in the project, or None."""
    return session.scalar(
        select(ExperimentRow.name)
        .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
        .where(RunRow.id == run_id, ExperimentRow.project_id == project_id)
    )


def run(session: Session, project_id: int, run_id: str) -> RunRow | None:
    return session.scalar(
        select(RunRow)
        .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
        .where(RunRow.id == run_id, ExperimentRow.project_id == project_id)
    )


def run_ids_starting(session: Session, project_id: int, prefix: str, *, limit: int) -> list[str]:
    """Ids of the project's runs that start with ``prefix`` (at most ``limit``)."""
    return list(
        session.scalars(
            select(RunRow.id)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .where(RunRow.id.like(prefix + "%"), ExperimentRow.project_id == project_id)
            .limit(limit)
        )
    )


def params(session: Session, run_id: str, keys: list[str]) -> dict[str, str]:
    """The stored values of params ``keys`` of the run."""
    rows = session.execute(
        select(RunParamRow.key, RunParamRow.value).where(
            RunParamRow.run_id == run_id, RunParamRow.key.in_(keys)
        )
    ).all()
    return {key: value for key, value in rows}


def tags(session: Session, run_id: str, keys: list[str]) -> dict[str, RunTagRow]:
    """The stored rows of tags ``keys`` of the run (to update in place)."""
    found = session.scalars(select(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key.in_(keys)))
    return {tag.key: tag for tag in found}


def metric_points(session: Session, run_id: str, key: str) -> list[tuple[int, datetime, float | None]]:
    """Every point of metric ``key`` of the run as (step, ts, value), by step then time."""
    rows = session.execute(
        select(MetricRow.step, MetricRow.ts, MetricRow.value)
        .where(MetricRow.run_id == run_id, MetricRow.key == key)
        .order_by(MetricRow.step, MetricRow.ts, MetricRow.id)
    ).all()
    return [(step, ts, value) for step, ts, value in rows]


def keys(session: Session, experiment_ids: Sequence[int], recent: int) -> dict[str, list[str]]:
    """The param, metric and tag keys of the ``recent`` newest runs of the experiments."""
    newest = (
        select(RunRow.id)
        .where(RunRow.experiment_id.in_(experiment_ids))
        .order_by(RunRow.started_at.desc())
        .limit(recent)
    )
    found: dict[str, list[str]] = {}
    for kind, table in (("params", RunParamRow), ("metrics", LatestMetricRow), ("tags", RunTagRow)):
        query = select(table.key).where(table.run_id.in_(newest)).distinct().order_by(table.key)
        found[kind] = list(session.scalars(query))
    return found


def artifact_names(session: Session, run_id: str) -> list[str]:
    return list(
        session.scalars(
            select(RunArtifactRow.name).where(RunArtifactRow.run_id == run_id).order_by(RunArtifactRow.name)
        )
    )


def side_by_side(infos: Sequence[RunInfo]) -> dict[str, Any]:
    """Params, metrics and tags of ``infos`` side by side, and the keys whose values differ."""
    out: dict[str, Any] = {
        "runs": [
            {"id": r.id, "name": r.name, "experiment": r.experiment, "status": r.status,
             "started_at": r.started_at.isoformat(), "duration_seconds": r.duration_seconds}
            for r in infos
        ],
        "differs": {},
    }  # fmt: skip
    for part in ("params", "metrics", "tags"):
        keys = sorted({k for r in infos for k in getattr(r, part)})
        table = {k: [getattr(r, part).get(k) for r in infos] for k in keys}
        out[part] = table
        out["differs"][part] = [k for k, values in table.items() if len({repr(v) for v in values}) > 1]
    return out

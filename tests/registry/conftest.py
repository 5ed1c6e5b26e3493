from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mloop import Project
from mloop._time import utcnow
from mloop.store.schema import ExperimentRow, LatestMetricRow, RunParamRow, RunRow
from tests.models.cases import Case, case


@pytest.fixture
def clf() -> Case:
    return case("lgbm-classifier")


@pytest.fixture
def pipe() -> Case:
    return case("sklearn-pipeline")


def as_user(project: Project, name: str, *roles: str) -> Project:
    """The project seen by a new user ``name`` holding ``roles``."""
    return project.as_actor(project.users.add(name, list(roles)).actor())


@pytest.fixture
def approving(project: Project) -> Iterator[Project]:
    """The same project (same stores) opened with ``require_approval: true``."""
    opened = Project.open(
        project.root, env={}, metadata_url=project.settings.metadata_url, require_approval=True
    )
    try:
        yield opened
    finally:
        opened.close()


def make_run(
    project: Project,
    *,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    info: dict[str, Any] | None = None,
) -> str:
    """A finished run with ``metrics``, ``params`` and ``info`` written straight to the tables."""
    run_id = uuid.uuid4().hex
    with project.store.write() as session:
        experiment = ExperimentRow(
            project_id=project._ctx.project_id, name=f"exp-{run_id[:6]}", created_at=utcnow(), tags={}
        )
        session.add(experiment)
        session.flush()
        session.add(
            RunRow(
                id=run_id, experiment_id=experiment.id, parent_id=None, name="trial", status="finished",
                started_at=utcnow(), ended_at=utcnow(), error=None, info=info or {}, created_by="local-admin",
            )
        )  # fmt: skip
        session.flush()
        for key, value in (metrics or {}).items():
            session.add(LatestMetricRow(run_id=run_id, key=key, step=0, value=value))
        for key, value in (params or {}).items():
            session.add(RunParamRow(run_id=run_id, key=key, value=value))
    return run_id

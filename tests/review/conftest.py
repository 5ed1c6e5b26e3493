"""Real projects for the review's tests: a fraud project with two trained versions, v1 then v2 deployed on
the endpoint ``fraud`` (so it has a revision to roll back to), and helpers to run one check.

``reviewed`` is module-scoped: a test that changes it undoes the change, or builds its own with
:func:`fraud_project`. Change settings the way a user does, in mloop.yaml, with :func:`reopen`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mloop import Project
from mloop.review import Finding
from tests.training.fraud import setup


def fraud_project(root: Path, *, deploy: bool = True) -> Project:
    """Two trained versions of ``fraud``; with ``deploy``, v1 then v2 on the endpoint ``fraud``."""
    project = Project.open(root, env={})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    pipeline, _ = setup(project, root, rows=3_000, start=start)
    pipeline.run(project)
    pipeline.run(project, params={"num_leaves": 7})
    if deploy:
        project.deploy("fraud", "fraud", version=1)
        project.deploy("fraud", "fraud", version=2)
    return project


def reopen(project: Project, **settings: Any) -> Project:
    """Merge ``settings`` into the project's mloop.yaml (top-level keys replaced; None removes one) and
    open the project again (a new object: ``project`` stays open, with its old settings). Close it."""
    path = project.root / "mloop.yaml"
    current = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    merged = {k: v for k, v in {**current, **settings}.items() if v is not None}
    path.write_text(yaml.safe_dump(merged))
    return Project.open(project.root, env={})


def finding(project: Project, check: str, **how: Any) -> Finding:
    """The finding of the one check ``check`` on ``project`` now."""
    found = [f for f in project.review(only=[check], **how).findings if f.check.id == check]
    assert len(found) == 1, f"no check {check}"
    return found[0]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = fraud_project(tmp_path_factory.mktemp("review"))
    yield project
    project.close()

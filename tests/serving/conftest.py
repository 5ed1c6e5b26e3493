"""A served fraud model: feature views over fresh transactions, two trained versions, one endpoint."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.serving.http.app import create_app
from tests.serving import images
from tests.training.fraud import setup


@dataclass
class Served:
    project: Project
    client: TestClient
    frame: pd.DataFrame  # the labelled transactions (customer_id, amount, ...)

    def refresh(self) -> None:
        """Make the server see the newest deployments now instead of within its poll interval."""
        self.client.app.state.endpoints.refresh()  # type: ignore[attr-defined]

    def row(self, i: int = 0) -> dict[str, object]:
        record = self.frame.iloc[i]
        return {"customer_id": int(record.customer_id), "amount": float(record.amount)}


# No shedding on event-loop lag here: the TestClient runs the app's loop in a thread of the test process,
# where the tests' own client threads take the GIL from it, which the guard would read as an overloaded
# server. The guard's lag rule has its own tests (test_protection.py), and benchmarks/serving.py measures it
# against a real server.
SERVING = {"max_queue_ms": None}


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the project ``trained`` copies, built once per session: ~20 modules use it, and
    building it (training two versions, materializing) took each of them 2-5 s. Read it, don't change it."""
    root = tmp_path_factory.mktemp("served-template") / "served"
    root.mkdir()
    with Project.open(root, env={}, serving=SERVING) as project:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        pipeline, _ = setup(project, root, rows=6_000, start=start)
        pipeline.run(project)
        pipeline.run(project, params={"num_leaves": 7})
        project.features.materialize(start - timedelta(days=1), datetime.now(UTC))
    return root


@pytest.fixture(scope="module")
def trained(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project with recent transactions materialized online and fraud versions 1 and 2 registered: a copy
    of ``trained_template`` of the module's own (the same folder name, so the same project name)."""
    root = tmp_path_factory.mktemp("served") / trained_template.name
    shutil.copytree(trained_template, root)
    project = Project.open(root, env={}, serving=SERVING)
    yield project
    project.close()


@pytest.fixture
def served(trained: Project) -> Iterator[Served]:
    trained.deploy("fraud", "fraud", version=1)
    frame = pd.read_parquet(Path(trained.root) / "txns.parquet").head(200)
    with TestClient(create_app(trained), raise_server_exceptions=False) as client:
        yield Served(trained, client, frame)
    trained.deploy("fraud", "fraud", version=1)  # the next test starts from a plain deployment


@dataclass
class Imaged:
    """Endpoint ``digits`` (an image classifier, input ``image`` of shape (1, 8, 8)) and ``tri`` (three
    classes over scalar columns a, b, s), served in process."""

    project: Project
    client: TestClient
    model: Any  # the fitted image pipeline, to compare answers with

    def expected(self, batch: Any) -> list[float]:
        return [float(p) for p in self.model.predict_proba(images.frame(batch))[:, 1]]


@pytest.fixture(scope="module")
def tensor_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Any]]:
    root = tmp_path_factory.mktemp("images")
    project = Project.open(root, env={}, serving={"max_queue_ms": None})
    model = images.register(project, "digits")
    images.register_multiclass(project, "tri")
    project.deploy("digits", "digits", version=1)
    project.deploy("tri", "tri", version=1)
    yield project, model
    project.close()


@pytest.fixture
def imaged(tensor_project: tuple[Project, Any]) -> Iterator[Imaged]:
    project, model = tensor_project
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield Imaged(project, client, model)

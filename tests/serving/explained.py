"""A small served fraud model for the explanation tests: LightGBM, 30 trees, one endpoint ``fraud``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.serving.http.app import create_app
from tests.training.fraud import setup

ROWS = 1_500


def build(root: Path, **settings: object) -> tuple[Project, pd.DataFrame]:
    """A project with version 1 of ``fraud`` (30 trees) trained, its features online, deployed to ``fraud``;
    and the transactions it was trained on."""
    # the explaining child at normal priority: at idle priority it waits for a free core, which a busy
    # test machine may not have within the test's wait
    project = Project.open(
        root, env={}, serving={"max_queue_ms": None, "explain_priority": "normal"}, **settings
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    pipeline, _ = setup(project, root, rows=ROWS, start=start)
    pipeline.run(project, params={"n_estimators": 30})
    project.features.materialize(start - timedelta(days=1), datetime.now(UTC))
    project.deploy("fraud", "fraud", version=1)
    return project, pd.read_parquet(root / "txns.parquet")


def row(frame: pd.DataFrame, i: int = 0) -> dict[str, object]:
    record = frame.iloc[i]
    return {"customer_id": int(record.customer_id), "amount": float(record.amount)}


@dataclass
class Explained:
    project: Project
    frame: pd.DataFrame  # the transactions the model was trained on

    def row(self, i: int = 0) -> dict[str, object]:
        return row(self.frame, i)

    def client(self) -> TestClient:
        """A server of the project as it is deployed now (enter it: ``with explained.client() as c``)."""
        return TestClient(create_app(self.project), raise_server_exceptions=False)


_BUILT: dict[str, Explained] = {}


@pytest.fixture(scope="session", name="explained")
def explained_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explained]:
    """One project for every explanation test module (building it costs about 4 s of CPU): import this
    fixture into a test module. Tests that change the deployment put the plain one back."""
    built = "project" not in _BUILT
    if built:
        _BUILT["project"] = Explained(*build(tmp_path_factory.mktemp("explained")))
    yield _BUILT["project"]
    if built:
        _BUILT.pop("project").project.close()

"""What the corrupted-artifact and slow-model scenarios share: a served fraud project (two trained versions,
features materialized), a model version that sleeps, and the environment of a ``mloop serve`` that runs
this checkout's code and can unpickle that model."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin

from mloop import Project
from mloop.models.lightgbm import LightGBMFlavour
from tests.training.fraud import setup

REPO = Path(__file__).resolve().parents[2]
_TEMPLATE: list[Path] = []  # built once per session, copied by each module that uses it


class Sleepy(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn has no type hints
    """``model`` answering ``seconds`` late: a slow model version, served like any scikit-learn model."""

    def __init__(self, model: Any = None, seconds: float = 0.2) -> None:
        self.model = model
        self.seconds = seconds

    def fit(self, X: Any, y: Any = None) -> Sleepy:  # scikit-learn's names
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def predict_proba(self, X: Any) -> np.ndarray:
        time.sleep(self.seconds)
        positive = LightGBMFlavour().predict(self.model, X)  # it puts the columns in the model's order
        return np.column_stack([1.0 - positive, positive])


def register_like(project: Project, model: Any, like: int = 1, description: str = "") -> int:
    """Register ``model`` as a new version of ``fraud`` reading the features version ``like`` reads."""
    found = project.models.get("fraud", like)
    return project.models.register("fraud", model, signature=found.signature, lineage=dict(found.lineage),
                                   description=description).version  # fmt: skip


def served_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mloop serve`` started after this runs this checkout's code and imports ``tests`` (for Sleepy)."""
    paths = [str(REPO / "src"), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))


def serve_with(root: Path | str, **serving: Any) -> None:
    """Set ``serving:`` keys in the project's mloop.yaml, which ``mloop serve`` reads when it starts."""
    path = Path(root) / "mloop.yaml"
    settings = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    settings["serving"] = {**(settings.get("serving") or {}), **serving}
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def chaos_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project with fraud versions 1 and 2 trained (distinct artifacts) and recent features online: a
    copy of a template trained once per session, of the module's own."""
    if not _TEMPLATE:
        root = tmp_path_factory.mktemp("chaos-template") / "chaos"
        root.mkdir()
        with Project.open(root, env={}) as project:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
            pipeline, _ = setup(project, root, rows=3_000, start=start)
            pipeline.run(project, params={"n_estimators": 40})  # small: faster to train and load
            pipeline.run(project, params={"n_estimators": 40, "num_leaves": 7})
            project.features.materialize(start - timedelta(days=1), datetime.now(UTC))
        _TEMPLATE.append(root)
    root = tmp_path_factory.mktemp("chaos") / _TEMPLATE[0].name
    shutil.copytree(_TEMPLATE[0], root)
    project = Project.open(root, env={})
    yield project
    project.close()

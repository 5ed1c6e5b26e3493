"""What training needs from a project: the services a pipeline reads and writes.

:class:`mloop.Project` is a :class:`Workspace`; training code is written against this protocol rather
than the facade, which sits above every service and would make training depend on its own caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mloop.config import Settings
from mloop.data.service import DataService
from mloop.features.service import FeatureService
from mloop.registry.service import ModelRegistry
from mloop.training.run import Run
from mloop.training.tracking import RunService


class Workspace(Protocol):
    """A project's folder, settings and the services training uses (``mloop.Project`` is one)."""

    @property
    def root(self) -> Path: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def data(self) -> DataService: ...

    @property
    def features(self) -> FeatureService: ...

    @property
    def runs(self) -> RunService: ...

    @property
    def models(self) -> ModelRegistry: ...

    def run(
        self,
        experiment: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        parent: Run | str | None = None,
    ) -> Run: ...

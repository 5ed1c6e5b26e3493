"""What the continuous-training loop drives: every service of a project, and a way to open the same
project again in a child process (where a challenger is trained).

:class:`mloop.Project` is a :class:`Platform`; the loop is written against this protocol rather than the
facade, which sits above the loop (``project.loop`` is the loop's own service).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from mloop.crypto import ParquetFiles
from mloop.deployments import Deployment, DeploymentService
from mloop.loop.service import LoopService
from mloop.monitoring.service import MonitoringService
from mloop.store import MetadataStore
from mloop.training.workspace import Workspace


class Platform(Workspace, Protocol):
    """A whole project, as the loop controller sees it."""

    @property
    def store(self) -> MetadataStore: ...

    @property
    def parquet(self) -> ParquetFiles: ...

    @property
    def deployments(self) -> DeploymentService: ...

    @property
    def monitoring(self) -> MonitoringService: ...

    @property
    def loop(self) -> LoopService: ...

    def deploy(self, endpoint: str, model: str, **how: Any) -> Deployment: ...

    def close(self) -> None: ...

    @classmethod
    def open(cls, path: str | Path = ".", **options: Any) -> Platform:
        """Open the project at ``path`` (a child process opens its parent's project this way)."""
        ...

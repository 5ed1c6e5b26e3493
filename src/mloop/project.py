"""``mloop.Project``: the one entry object. It reads the settings, opens the stores and hands out the
services, all acting as one :class:`~mloop.security.Actor`.

>>> import mloop as ml
>>> project = ml.Project.open(".")                    # doctest: +SKIP
>>> report = project.data.ingest("txns.csv", "txns")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from mloop import logs
from mloop._service import Context
from mloop.access.audit import AuditLog
from mloop.access.encryption import Encryption
from mloop.access.housekeeping import Housekeeping
from mloop.access.servers import Servers
from mloop.access.users import Keys, Users
from mloop.artifacts import ArtifactStore, open_artifact_store
from mloop.config import (
    CONFIG_FILE,
    CONFIG_TEMPLATE,
    STATE_DIR,
    Settings,
    existing_project_root,
    find_project_root,
    load_settings,
)
from mloop.crypto import BlobCipher, ParquetFiles
from mloop.data.service import DataService
from mloop.deployments import Deployment, DeploymentService
from mloop.errors import AlreadyExists, ConfigError
from mloop.features.queries import Plan
from mloop.features.service import FeatureService
from mloop.loop.service import LoopService
from mloop.monitoring.ab import ABTests
from mloop.monitoring.predictions import Predictions
from mloop.monitoring.sensors import SensorService
from mloop.monitoring.service import MonitoringService
from mloop.privacy import ForgetReport, PrivacyService
from mloop.registry.service import ModelRegistry
from mloop.review.decisions import Decisions
from mloop.review.service import Review, Reviews
from mloop.security.actor import Actor
from mloop.security.audit_anchor import Keying
from mloop.security.data_keys import open_keyring
from mloop.storage import open_data_storage, remote_files
from mloop.store import MetadataStore, open_metadata_store
from mloop.training.run import Run
from mloop.training.tracking import RunService


class Project:
    """A project folder: its settings, metadata store, artifact store and data, seen by one actor."""

    def __init__(self, root: Path, ctx: Context) -> None:
        self.root = root
        self._ctx = ctx
        self.data = DataService(ctx)
        self.data.after_ingest.append(lambda report: self.sensors.after_ingest(report))
        self.features = FeatureService(ctx)
        self.users = Users(ctx)
        self.keys = Keys(ctx)
        self.audit = AuditLog(ctx)
        self.housekeeping = Housekeeping(ctx)
        self.encryption = Encryption(ctx)
        self.decisions = Decisions(ctx)

    @classmethod
    def open(
        cls,
        path: str | Path = ".",
        *,
        actor: Actor | None = None,
        env: dict[str, str] | None = None,
        configure_logging: bool = False,
        create: bool = True,
        **overrides: Any,
    ) -> Project:
        """Open the project at ``path``, creating its ``.mloop/`` state on first use.

        With ``create=False`` nothing is created: the project is the nearest of ``path`` and its parents
        that holds ``mloop.yaml`` or ``.mloop/`` (see :meth:`find`), and there being none is an error.
        The actor is, in order: ``actor`` if given; the owner of ``MLOOP_API_KEY`` if set; the configured
        local admin if ``local_admin`` is true. ``overrides`` replace settings (``metadata_url=...``).
        """
        root = Path(path).resolve()
        if not root.is_dir():
            raise ConfigError(f"Project folder {root} does not exist; create it, or run `mloop init` in it.")
        if not create:
            root = existing_project_root(root)
        settings = load_settings(root, env, **overrides).resolved(root)
        if configure_logging:
            logs.configure(settings.log_level, settings.log_format)
        _private(root / STATE_DIR)
        store = open_metadata_store(settings.metadata_url)
        if store.retry_seconds:  # a server; embedded SQLite's errors are not transient
            store.retry_seconds = settings.metadata_retry_seconds
        try:
            assert settings.project is not None
            project_id = store.project_id(settings.project)
            keyring = open_keyring(settings, store, project_id)
            cipher = BlobCipher(keyring) if keyring is not None else None
            artifacts = open_artifact_store(settings.artifact_url, cipher)
            storage = open_data_storage(settings.data_url, settings.scratch_dir)
        except BaseException:
            store.close()
            raise
        bootstrap = Actor.local_admin(settings.local_user)
        keying = None
        if settings.audit_key is not None:
            keying = Keying(settings.audit_key.get_secret_value().encode(), Path(settings.audit_anchor))
        ctx = Context(
            settings, store, artifacts, settings.project, project_id, bootstrap, keying=keying,
            parquet=ParquetFiles(keyring, remote_files(storage)), storage=storage,
        )  # fmt: skip
        try:
            if actor is None:
                actor = cls._identify(ctx)
            elif not settings.local_admin:
                actor = Users(ctx).confirm(actor)
        except BaseException:
            store.close()  # a refused key must not leave the store's connections open
            raise
        return cls(root, dataclasses.replace(ctx, actor=actor))

    @staticmethod
    def find(path: str | Path = ".") -> Path | None:
        """The project folder ``path`` is in: the nearest of it and its parents holding ``mloop.yaml`` or
        ``.mloop/``; None if there is none.

        >>> Project.find("fraud/pipelines")  # doctest: +SKIP
        PosixPath('/home/me/fraud')
        """
        return find_project_root(Path(path))

    @staticmethod
    def _identify(ctx: Context) -> Actor:
        settings = ctx.settings
        if settings.api_key is not None:
            return Keys(ctx).authenticate(settings.api_key.get_secret_value())
        if settings.local_admin:
            Users(ctx).ensure_local_admin(settings.local_user)
            return ctx.actor
        raise ConfigError(
            "No identity: local_admin is false and MLOOP_API_KEY is not set. Set MLOOP_API_KEY to a key "
            "from `mloop keys issue`, or set local_admin: true in mloop.yaml for single-user use."
        )

    @cached_property
    def runs(self) -> RunService:
        """Experiments and runs: start, search, compare."""
        return RunService(self._ctx)

    def run(
        self,
        experiment: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        parent: Run | str | None = None,
    ) -> Run:
        """Start a tracked run, used as ``with project.run("fraud", params={...}) as run:``."""
        return self.runs.start(experiment, params=params, tags=tags, name=name, parent=parent)

    @cached_property
    def models(self) -> ModelRegistry:
        """The model registry: versions, aliases, stages, lineage, model cards."""
        return ModelRegistry(self._ctx)

    @cached_property
    def deployments(self) -> DeploymentService:
        """Endpoint deployment revisions: deploy, canary, A/B, shadow, rollback."""
        return DeploymentService(self._ctx)

    @cached_property
    def monitoring(self) -> MonitoringService:
        """Drift, live performance, SLOs, alerts and reports."""
        return MonitoringService(self._ctx)

    @cached_property
    def sensors(self) -> SensorService:
        """Sensor incidents of datasets with sensor checks: ``incidents("soil", open_only=True)``."""
        return SensorService(self._ctx)

    @cached_property
    def ab(self) -> ABTests:
        """A/B analysis of endpoints split between versions: ``report("recs", metric="ctr")``."""
        return ABTests(self._ctx)

    @cached_property
    def predictions(self) -> Predictions:
        """The prediction log's records of single decisions: ``explanations(endpoint, disputed_only=True)``."""
        return Predictions(self._ctx)

    @cached_property
    def loop(self) -> LoopService:
        """The continuous-training loop's state and timeline; pause, resume, approve."""
        return LoopService(self._ctx)

    @cached_property
    def privacy(self) -> PrivacyService:
        """Personal data: erase a data subject, purge what retention no longer keeps."""
        return PrivacyService(self._ctx)

    @cached_property
    def servers(self) -> Servers:
        """Servers announce themselves here when they start (``serving.start``), for the review."""
        return Servers(self._ctx)

    @cached_property
    def reviews(self) -> Reviews:
        """The architecture review of this project: checks, scores, delivery metrics, cost."""
        return Reviews(self._ctx, self)

    def review(self, *, only: Iterable[str] = (), now: datetime | None = None) -> Review:
        """Run the architecture review's checks on the live project; see :meth:`Reviews.run`."""
        return self.reviews.run(only=only, now=now)

    def forget(self, entity: str, value: Any, *, dry_run: bool = False) -> ForgetReport:
        """Erase the data subject whose ``entity`` column (a join key such as ``customer_id``) is ``value``
        from datasets, push logs, the online store, the prediction log and feedback; see
        :meth:`mloop.privacy.PrivacyService.forget`."""
        return self.privacy.forget(entity, value, dry_run=dry_run)

    def deploy(self, endpoint: str, model: str, **how: Any) -> Deployment:
        """Deploy a model version to ``endpoint`` (``version=`` or ``alias=``, optionally ``canary=``, or
        ``ab={...}``; ``sticky_key=``, ``shadow=``); see :meth:`DeploymentService.deploy`."""
        return self.deployments.deploy(endpoint, model, **how)

    def rollback(self, endpoint: str) -> Deployment:
        """Restore the deployment revision the live one replaced."""
        return self.deployments.rollback(endpoint)

    def apply(self, definitions: Any) -> Plan:
        """Record feature definitions (entities, feature views, on-demand views, push sources); see
        :meth:`mloop.features.service.FeatureService.apply`."""
        return self.features.apply(definitions if isinstance(definitions, list | tuple) else [definitions])

    @staticmethod
    def init(path: str | Path = ".", *, force: bool = False) -> Path:
        """Write a commented ``mloop.yaml`` into ``path``; refuses to overwrite one unless ``force``."""
        root = Path(path).resolve()
        root.mkdir(parents=True, exist_ok=True)
        target = root / CONFIG_FILE
        if target.exists() and not force:
            raise AlreadyExists(
                f"{target} exists already; pass --force (force=True in Python) to overwrite it."
            )
        # Let YAML quote the name: a folder called "yes", "123" or "a: b" must still read back as that string.
        name = yaml.safe_dump({"project": root.name}, allow_unicode=True, width=2**31)
        target.write_text(
            CONFIG_TEMPLATE.format(project=name[len("project: ") :].rstrip("\n")), encoding="utf-8"
        )
        return target

    def as_actor(self, actor: Actor) -> Project:
        """The same project seen by another actor (for example an API request's caller)."""
        return Project(self.root, dataclasses.replace(self._ctx, actor=actor))

    @property
    def name(self) -> str:
        return self._ctx.project

    @property
    def actor(self) -> Actor:
        return self._ctx.actor

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @property
    def store(self) -> MetadataStore:
        return self._ctx.store

    @property
    def parquet(self) -> ParquetFiles:
        """How the Parquet files kept at rest are written and read (encrypted when ``encryption`` is on)."""
        return self._ctx.parquet

    @property
    def artifacts(self) -> ArtifactStore:
        return self._ctx.artifacts

    def close(self) -> None:
        self._ctx.resources.close()
        self._ctx.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, name={self.name!r}, actor={self.actor.name!r})"


def _private(state: Path) -> None:
    """Create ``.mloop`` readable by its owner only (0700), and tighten one that others can read: it
    holds the metadata and online databases, the datasets, the prediction log and the artifacts, which
    were 0644 under a 0755 folder. A folder of another owner is left as it is."""
    state.mkdir(mode=0o700, exist_ok=True)
    info = state.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        state.chmod(0o700)

"""The metadata tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` create exactly these.

One table per domain noun. Large or free-form values (schemas, specs, signatures) are canonical JSON
text; what is searched (run metrics, params, aliases, event actions) gets its own indexed columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mloop.store.types import JSONText, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONText(),
        list[Any]: JSONText(),
    }


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


# ---- identity -------------------------------------------------------------------------------------------


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # user | service
    grants: Mapped[list[Any]]  # ["mlops", "ml_engineer@endpoint:fraud"]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    salt: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


# ---- audit: append-only, hash-chained --------------------------------------------------------------------


class EventRow(Base):
    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[datetime] = mapped_column(index=True)
    project: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    resource: Mapped[str] = mapped_column(String(500), index=True)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON: hashed as stored
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHeadRow(Base):
    """The chain's head, updated with every append: deleting the newest events cannot go unnoticed."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class LeaseRow(Base):
    """A named lease (for example the loop controller's), held by one process until it expires."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


# ---- data ----------------------------------------------------------------------------------------------


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class DatasetSchemaRow(Base):
    __tablename__ = "dataset_schemas"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class IngestionRow(Base):
    __tablename__ = "ingestions"
    __table_args__ = (UniqueConstraint("dataset_id", "fingerprint"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    rows_read: Mapped[int] = mapped_column(BigInteger)
    rows_accepted: Mapped[int] = mapped_column(BigInteger)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger)
    reasons: Mapped[dict[str, Any]]
    files: Mapped[list[Any]]  # [{"path": relative path, "rows": n, "bytes": n}]
    quarantine: Mapped[str | None] = mapped_column(Text)
    min_ts: Mapped[datetime | None]
    max_ts: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))


# ---- features --------------------------------------------------------------------------------------------


class FeatureDefinitionRow(Base):
    __tablename__ = "feature_definitions"
    __table_args__ = (UniqueConstraint("project_id", "kind", "name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    kind: Mapped[str] = mapped_column(String(40))  # entity | feature_view | on_demand_view | push_source
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    spec_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None]


class MaterializationRow(Base):
    """One committed chunk of materialization of a view into the online store; the newest ``end_ts`` of
    a view's current version is its watermark."""

    __tablename__ = "materializations"
    __table_args__ = (Index(None, "project_id", "view", "end_ts"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    view: Mapped[str] = mapped_column(String(200))
    view_version: Mapped[int] = mapped_column(Integer)
    start_ts: Mapped[datetime]
    end_ts: Mapped[datetime]
    rows: Mapped[int] = mapped_column(BigInteger)
    values: Mapped[int] = mapped_column(BigInteger)
    last_event_ts: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))


# ---- training -------------------------------------------------------------------------------------------


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    tags: Mapped[dict[str, Any]]


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index(None, "experiment_id", "started_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | finished | failed
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    info: Mapped[dict[str, Any]]  # git commit, host, pid, versions, wall and cpu seconds, fingerprint
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)  # while running; NULL before 0007
    created_by: Mapped[str] = mapped_column(String(200))


class RunParamRow(Base):
    __tablename__ = "run_params"
    __table_args__ = (Index(None, "key", "value"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class RunTagRow(Base):
    __tablename__ = "run_tags"
    __table_args__ = (Index(None, "key", "value"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000))


class RunArtifactRow(Base):
    """A file logged by a run: a name, and the content-addressed blob that holds it."""

    __tablename__ = "run_artifacts"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class MetricRow(Base):
    """Every logged point of a metric."""

    __tablename__ = "run_metrics"
    __table_args__ = (Index(None, "run_id", "key", "step"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    key: Mapped[str] = mapped_column(String(250))
    step: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime]
    value: Mapped[float | None] = mapped_column(Float)  # NULL is NaN: the one float no backend stores alike


class LatestMetricRow(Base):
    """The last value of each metric of a run: what run search filters and sorts on."""

    __tablename__ = "run_latest_metrics"
    __table_args__ = (Index(None, "key", "value"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)  # NULL is NaN


# ---- registry -------------------------------------------------------------------------------------------


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    artifact: Mapped[str] = mapped_column(String(64))  # sha256 of the model blob
    flavour: Mapped[str] = mapped_column(String(40))
    signature: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    lineage: Mapped[dict[str, Any]]
    card: Mapped[dict[str, Any]]
    stage: Mapped[str] = mapped_column(String(20), default="none")  # none | staging | production | archived
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class ModelExportRow(Base):
    """A sibling artifact of a model version: the same model in another format (``onnx``), converted and
    checked against the original; at most one per format."""

    __tablename__ = "model_exports"
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(20), primary_key=True)
    artifact: Mapped[str] = mapped_column(String(64))  # sha256 of the packed export
    details: Mapped[dict[str, Any]]  # converter, opset, parity figures
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class ModelIndexRow(Base):
    """The vector index attached to a model version (:mod:`mloop.registry.indexes`): its base artifact,
    rebuilt whole by ``rebuild_index`` (``generation`` counts rebuilds), and in ``details`` the artifacts of
    the additions made since, in order, with dim, metric, library and item count."""

    __tablename__ = "model_indexes"
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact: Mapped[str] = mapped_column(String(64))  # sha256 of the packed base index
    generation: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]]  # dim, metric, library, count, deltas: [sha256, ...]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class PromotionRow(Base):
    """A request to move a model version to a stage; with ``require_approval``, production waits for a
    second person (an ``mlops`` user other than the requester) to approve it."""

    __tablename__ = "promotions"
    __table_args__ = (Index(None, "model_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))  # pending | done | rejected
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(Text, default="")


# ---- serving --------------------------------------------------------------------------------------------


class DeploymentRow(Base):
    """One revision of an endpoint's traffic policy; the newest revision is live."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("project_id", "endpoint", "revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    endpoint: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


# ---- monitoring -----------------------------------------------------------------------------------------


class MonitorResultRow(Base):
    """One computed window of an endpoint's monitoring (drift or performance) for one model version;
    recomputing a window replaces its row."""

    __tablename__ = "monitor_results"
    __table_args__ = (
        UniqueConstraint(
            "project_id",
            "endpoint",
            "kind",
            "version",
            "window_start",
            "window_end",
            name="uq_monitor_results_window",
        ),
        Index("ix_monitor_results_endpoint_kind_start", "project_id", "endpoint", "kind", "window_start"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    endpoint: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # drift | performance
    version: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    rows: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]
    result: Mapped[dict[str, Any]]


class AlertRow(Base):
    """One incident: opened once when its rule first fires, seen again while it keeps firing, resolved
    once; a key has at most one open row."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_open", "project_id", "key", "resolved_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    key: Mapped[str] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(200), index=True)
    severity: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    alert: Mapped[dict[str, Any]]  # the newest Alert.to_dict()


class DataKeyRow(Base):
    """A data key of encryption at rest, wrapped by the master key (never stored); the newest unretired
    one encrypts new files, retired ones stay to open files a rotation has not reached."""

    __tablename__ = "data_keys"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[str] = mapped_column(String(200))  # base64: nonce + AES-GCM(master key, data key)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


# ---- collaboration --------------------------------------------------------------------------------------


class DecisionRow(Base):
    """An architecture decision record (ADR-``number`` within its project): the choice among options, what
    it gave up, who owns it and when to look at it again. Never deleted: a newer decision supersedes it."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("project_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    context: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]]
    choice: Mapped[str] = mapped_column(Text)
    tradeoff: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))  # accepted | superseded
    superseded_by: Mapped[int | None] = mapped_column(Integer)  # the number of the decision that replaced it
    review_by: Mapped[datetime]  # midnight UTC of the review date
    links: Mapped[list[Any]]  # refs: ["endpoint:fraud", "model:fraud/2"]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    superseded_at: Mapped[datetime | None]

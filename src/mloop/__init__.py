"""mloop: a closed-loop machine-learning platform in one package.

The names below are the public API: the entry object (:class:`Project`), the definitions users write
(datasets, feature views, pipelines, loop policies), the records the services hand back (:class:`ModelVersion`,
:class:`Run`, :class:`Deployment`, ...) and the errors. Everything else is internal and may move.

>>> import mloop as ml
>>> project = ml.Project.open(".")                                      # doctest: +SKIP
>>> report = project.data.ingest("transactions.csv", "transactions")   # doctest: +SKIP
"""

from mloop._version import __version__
from mloop.access import IssuedKey, User
from mloop.data.queries import DatasetInfo
from mloop.data.report import IngestReport
from mloop.data.schema import Column, Dataset
from mloop.data.sources import CsvSource, DataFrameSource, ParquetSource, Source, SqlSource
from mloop.deployments import Deployment, Route
from mloop.errors import (
    AlreadyExists,
    AuthenticationError,
    BackendNotInstalled,
    ConfigError,
    IntegrityError,
    MalformedInput,
    MloopError,
    NotFound,
    PermissionDenied,
    SchemaError,
)
from mloop.features.definitions import (
    Aggregation,
    DatasetSource,
    Entity,
    FeatureView,
    Field,
    OnDemandView,
    PushSource,
)
from mloop.features.queries import Plan
from mloop.features.reports import MaterializeReport, PushReport
from mloop.loop import Canary, Gate, LoopPolicy, OnDrift, OnNewData, OnPerformance, OnSLOBreach, Schedule
from mloop.models import Signature
from mloop.project import Project
from mloop.registry import LoadedModel, ModelVersion, RegisteredModel
from mloop.security import Actor, AuditReport, Event, Grant
from mloop.training import Experiment, Run, RunInfo
from mloop.training.dataset import TrainingSet
from mloop.training.pipeline import Label, TimeSplit, TrainingPipeline

__all__ = [
    "Actor",
    "Aggregation",
    "AlreadyExists",
    "AuditReport",
    "AuthenticationError",
    "BackendNotInstalled",
    "Canary",
    "Column",
    "ConfigError",
    "CsvSource",
    "DataFrameSource",
    "Dataset",
    "DatasetInfo",
    "DatasetSource",
    "Deployment",
    "Entity",
    "Event",
    "Experiment",
    "FeatureView",
    "Field",
    "Gate",
    "Grant",
    "IngestReport",
    "IntegrityError",
    "IssuedKey",
    "Label",
    "LoadedModel",
    "LoopPolicy",
    "MalformedInput",
    "MaterializeReport",
    "MloopError",
    "ModelVersion",
    "NotFound",
    "OnDemandView",
    "OnDrift",
    "OnNewData",
    "OnPerformance",
    "OnSLOBreach",
    "ParquetSource",
    "PermissionDenied",
    "Plan",
    "Project",
    "PushReport",
    "PushSource",
    "RegisteredModel",
    "Route",
    "Run",
    "RunInfo",
    "Schedule",
    "SchemaError",
    "Signature",
    "Source",
    "SqlSource",
    "TimeSplit",
    "TrainingPipeline",
    "TrainingSet",
    "User",
    "__version__",
]

"""mloop: a closed-loop machine-learning platform in one package.

>>> import mloop as ml
>>> project = ml.Project.open(".")                                      # doctest: +SKIP
>>> report = project.data.ingest("transactions.csv", "transactions")   # doctest: +SKIP
"""

from mloop._version import __version__
from mloop.data.report import IngestReport
from mloop.data.schema import Column, Dataset
from mloop.data.sources import CsvSource, DataFrameSource, ParquetSource, Source, SqlSource
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
from mloop.loop import Canary, Gate, LoopPolicy, OnDrift, OnNewData, OnPerformance, OnSLOBreach, Schedule
from mloop.project import Project
from mloop.security import Actor, Grant
from mloop.training.pipeline import Label, TimeSplit, TrainingPipeline

__all__ = [
    "Actor",
    "Aggregation",
    "AlreadyExists",
    "AuthenticationError",
    "BackendNotInstalled",
    "Canary",
    "Column",
    "ConfigError",
    "CsvSource",
    "DataFrameSource",
    "Dataset",
    "DatasetSource",
    "Entity",
    "FeatureView",
    "Field",
    "Gate",
    "Grant",
    "IngestReport",
    "IntegrityError",
    "Label",
    "LoopPolicy",
    "MalformedInput",
    "MloopError",
    "NotFound",
    "OnDemandView",
    "OnDrift",
    "OnNewData",
    "OnPerformance",
    "OnSLOBreach",
    "ParquetSource",
    "PermissionDenied",
    "Project",
    "PushSource",
    "Schedule",
    "SchemaError",
    "Source",
    "SqlSource",
    "TimeSplit",
    "TrainingPipeline",
    "__version__",
]

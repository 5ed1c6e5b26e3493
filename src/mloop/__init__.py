"""mloop: a closed-loop machine-learning platform in one package.

The names below are the public API: the entry object (:class:`Project`), the definitions users write
(datasets, feature views, pipelines, loop policies), the records the services hand back (:class:`ModelVersion`,
:class:`Run`, :class:`Deployment`, ...) and the errors. Everything else is internal and may move.

>>> import mloop as ml
>>> project = ml.Project.open(".")                                      # doctest: +SKIP
>>> report = project.data.ingest("transactions.csv", "transactions")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mloop._version import __version__

if TYPE_CHECKING:
    from mloop.access import IssuedKey, User
    from mloop.data.queries import DatasetInfo
    from mloop.data.report import IngestReport
    from mloop.data.schema import Column, Dataset
    from mloop.data.sensor_spec import SensorChecks
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
    from mloop.features.sequences import SequenceSpec
    from mloop.loop import Canary, Gate, LoopPolicy, OnDrift, OnNewData, OnPerformance, OnSLOBreach, Schedule
    from mloop.models import Signature
    from mloop.project import Project
    from mloop.registry import LoadedModel, ModelVersion, RegisteredModel
    from mloop.security import Actor, AuditReport, Event, EventPage, Grant
    from mloop.training import Experiment, Run, RunInfo
    from mloop.training.dataset import TrainingSet
    from mloop.training.pipeline import Label, TimeSplit, TrainingPipeline

# Each public name and the module that defines it, imported on first use (PEP 562), so that `import mloop`
# (and the `mloop` command) does not pay for pandas, pyarrow and SQLAlchemy before it needs them.
_EXPORTS: dict[str, str] = {
    "IssuedKey": "mloop.access",
    "User": "mloop.access",
    "DatasetInfo": "mloop.data.queries",
    "IngestReport": "mloop.data.report",
    "Column": "mloop.data.schema",
    "Dataset": "mloop.data.schema",
    "SensorChecks": "mloop.data.sensor_spec",
    "CsvSource": "mloop.data.sources",
    "DataFrameSource": "mloop.data.sources",
    "ParquetSource": "mloop.data.sources",
    "Source": "mloop.data.sources",
    "SqlSource": "mloop.data.sources",
    "Deployment": "mloop.deployments",
    "Route": "mloop.deployments",
    "AlreadyExists": "mloop.errors",
    "AuthenticationError": "mloop.errors",
    "BackendNotInstalled": "mloop.errors",
    "ConfigError": "mloop.errors",
    "IntegrityError": "mloop.errors",
    "MalformedInput": "mloop.errors",
    "MloopError": "mloop.errors",
    "NotFound": "mloop.errors",
    "PermissionDenied": "mloop.errors",
    "SchemaError": "mloop.errors",
    "Aggregation": "mloop.features.definitions",
    "DatasetSource": "mloop.features.definitions",
    "Entity": "mloop.features.definitions",
    "FeatureView": "mloop.features.definitions",
    "Field": "mloop.features.definitions",
    "OnDemandView": "mloop.features.definitions",
    "PushSource": "mloop.features.definitions",
    "Plan": "mloop.features.queries",
    "MaterializeReport": "mloop.features.reports",
    "PushReport": "mloop.features.reports",
    "SequenceSpec": "mloop.features.sequences",
    "Canary": "mloop.loop",
    "Gate": "mloop.loop",
    "LoopPolicy": "mloop.loop",
    "OnDrift": "mloop.loop",
    "OnNewData": "mloop.loop",
    "OnPerformance": "mloop.loop",
    "OnSLOBreach": "mloop.loop",
    "Schedule": "mloop.loop",
    "Signature": "mloop.models",
    "Project": "mloop.project",
    "LoadedModel": "mloop.registry",
    "ModelVersion": "mloop.registry",
    "RegisteredModel": "mloop.registry",
    "Actor": "mloop.security",
    "AuditReport": "mloop.security",
    "Event": "mloop.security",
    "EventPage": "mloop.security",
    "Grant": "mloop.security",
    "Experiment": "mloop.training",
    "Run": "mloop.training",
    "RunInfo": "mloop.training",
    "TrainingSet": "mloop.training.dataset",
    "Label": "mloop.training.pipeline",
    "TimeSplit": "mloop.training.pipeline",
    "TrainingPipeline": "mloop.training.pipeline",
}

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
    "EventPage",
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
    "SensorChecks",
    "SequenceSpec",
    "Signature",
    "Source",
    "SqlSource",
    "TimeSplit",
    "TrainingPipeline",
    "TrainingSet",
    "User",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

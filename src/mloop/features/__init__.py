"""The feature store: definitions, point-in-time training sets, the online store, materialization, push.

The public nouns are re-exported by :mod:`mloop`; the service is ``project.features``.
"""

from mloop.features.aggregation import AGGREGATIONS, Aggregation
from mloop.features.definitions import (
    DatasetSource,
    Entity,
    FeatureView,
    Field,
    OnDemandView,
    PushSource,
)
from mloop.features.sequences import SequenceSpec, sequence_arrays

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "DatasetSource",
    "Entity",
    "FeatureView",
    "Field",
    "OnDemandView",
    "PushSource",
    "SequenceSpec",
    "sequence_arrays",
]

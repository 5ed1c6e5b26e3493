"""The model registry: versions, aliases, stages with approvals, history, signatures, lineage and model cards.

>>> version = project.models.register("fraud", model, input_example=X_test)   # doctest: +SKIP
>>> project.models.set_alias("fraud", "champion", version.version)             # doctest: +SKIP
>>> print(project.models.card("fraud", version.version))                       # doctest: +SKIP
"""

from mloop.registry.history import AliasSpan, StageSpan
from mloop.registry.lineage import Lineage, LineageNode
from mloop.registry.service import ModelRegistry
from mloop.registry.versions import LoadedModel, ModelVersion, Promotion, RegisteredModel

__all__ = [
    "AliasSpan",
    "Lineage",
    "LineageNode",
    "LoadedModel",
    "ModelRegistry",
    "ModelVersion",
    "Promotion",
    "RegisteredModel",
    "StageSpan",
]

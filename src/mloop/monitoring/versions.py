"""What monitoring needs to know about a model version: its reference profile, task, decision threshold
and the performance estimator calibrated on its validation scores (all recorded by the training
pipeline in the version's lineage and card)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mloop._service import Context
from mloop.monitoring.estimation import PerformanceEstimator
from mloop.registry.service import ModelRegistry


@dataclass
class VersionInfo:
    profile: dict[str, Any] | None
    task: str  # binary | regression
    threshold: float
    estimator: PerformanceEstimator | None


def load_version(ctx: Context, model: str, version: int) -> VersionInfo:
    record = ModelRegistry(ctx).get(model, version)
    lineage, card, artifacts = record.lineage or {}, record.card or {}, ctx.artifacts
    digest = lineage.get("reference_profile")
    profile = json.loads(artifacts.get_bytes(digest)) if digest else None
    threshold = card.get("threshold")
    task = (card.get("training_data") or {}).get("task") or (
        "binary" if threshold is not None else "regression"
    )
    cut = float(threshold if threshold is not None else 0.5)
    estimator = None
    if task == "binary":
        estimator = PerformanceEstimator(cut)
        if lineage.get("calibration"):
            data = json.loads(artifacts.get_bytes(lineage["calibration"]))
            estimator.fit(data["scores"], data["labels"])
    return VersionInfo(profile, task, cut, estimator)

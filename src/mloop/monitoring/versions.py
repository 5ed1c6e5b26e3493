"""What monitoring needs to know about a model version: its reference profile (and the reference sample
of its tensor inputs), task, classes, decision threshold and the performance estimator calibrated on
its validation scores (all recorded by the training pipeline, or :func:`~mloop.monitoring.reference.
log_reference`, in the version's lineage and card)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop._service import Context
from mloop.metrics.reference import sample_from_bytes
from mloop.monitoring.estimation import PerformanceEstimator
from mloop.registry.service import ModelRegistry
from mloop.security.actor import Actor
from mloop.security.roles import Grant


@dataclass
class VersionInfo:
    profile: dict[str, Any] | None
    task: str  # binary | multiclass | regression
    threshold: float
    estimator: PerformanceEstimator | None
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # tensor column -> (rows, d)
    classes: list[str] | None = None  # a multiclass model's class names, in its output's column order
    importance: dict[str, Any] | None = None  # the card's global importance: attribution drift's reference


def served_registry(ctx: Context, model: str) -> ModelRegistry:
    """The registry as monitoring reads it: the versions an endpoint served are part of that endpoint's
    monitoring, so a caller allowed ``monitoring.read`` on the endpoint (a user scoped to
    ``endpoint:NAME``, say) reads their profiles without ``models.read`` on the model; the grant covers
    ``model`` and reads only."""
    reader = Actor(f"monitoring for {ctx.actor.name}", "service", (Grant.parse(f"auditor@model:{model}"),))
    return ModelRegistry(dataclasses.replace(ctx, actor=reader))


def load_version(ctx: Context, model: str, version: int) -> VersionInfo:
    record = served_registry(ctx, model).get(model, version)
    lineage, card, artifacts = record.lineage or {}, record.card or {}, ctx.artifacts
    digest = lineage.get("reference_profile")
    profile = json.loads(artifacts.get_bytes(digest)) if digest else None
    sample = lineage.get("reference_sample")
    samples = sample_from_bytes(artifacts.get_bytes(sample)) if sample else {}
    classes = ((profile or {}).get("prediction") or {}).get("classes") or card.get("classes")
    threshold = card.get("threshold")
    task = (card.get("training_data") or {}).get("task") or (
        "multiclass" if classes else "binary" if threshold is not None else "regression"
    )
    cut = float(threshold if threshold is not None else 0.5)
    estimator = None
    if task == "binary":
        estimator = PerformanceEstimator(cut)
        if lineage.get("calibration"):
            data = json.loads(artifacts.get_bytes(lineage["calibration"]))
            estimator.fit(data["scores"], data["labels"])
    names = [str(c) for c in classes] if classes else None
    return VersionInfo(profile, task, cut, estimator, samples, names, card.get("importance"))

"""One run of a training pipeline: fit, evaluate, profile, register — all recorded on the run. The fit
may run on an executor (a process, a Ray task); the rest runs in the caller's process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.importance import on_holdout
from mloop.metrics import evaluation, ranking
from mloop.metrics.multiclass import of_labels
from mloop.metrics.profile import build_profile
from mloop.metrics.reference import reference_sample, sample_to_bytes
from mloop.models.flavours import flavour_for
from mloop.training.dataset import TrainingSet, build_training_set
from mloop.training.executors import Executor, open_executor
from mloop.training.fitting import FitInfo, categories, fit, predict_scores, prepare, query_sizes, seeded
from mloop.training.multiclass import multiclass_by_slice
from mloop.training.run import check_key
from mloop.training.workspace import Workspace

RANKING_CUTS = (5, 10, 20)  # the cut-offs of a ranker's recall, NDCG and hit rate on the run


@dataclass
class FitTask:
    """One fit, for an executor: the unfitted model and the prepared splits."""

    model: Any
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_valid: pd.DataFrame
    y_valid: np.ndarray
    groups: tuple[np.ndarray, np.ndarray] | None = None  # a ranker's query sizes (train, valid)


def fit_task(task: FitTask) -> tuple[Any, FitInfo]:
    """Fit ``task.model`` (on whichever executor runs it) and return it fitted, with what the fit saw."""
    info = fit(task.model, task.x_train, task.y_train, task.x_valid, task.y_valid, task.groups)
    return task.model, info


def execute(pipeline: Any, project: Workspace, *, params: dict[str, Any], data: TrainingSet | None,
            executor: str | Any | None = None) -> Any:  # fmt: skip
    if pipeline.federated is not None:  # its clients are its processes: no executor, no pooled rows
        from mloop.training.federated.pipeline import run_federated

        return run_federated(pipeline, project, params)
    executor = project.settings.compute.executor if executor is None else executor
    # Opened before the run: an unreachable cluster fails here, leaving no half-created run.
    pool = None if executor == "inprocess" else open_executor(executor, 1, compute=project.settings.compute)
    try:
        return _execute(pipeline, project, params, data, pool)
    finally:
        if pool is not None and pool is not executor:
            pool.close()


def _execute(pipeline: Any, project: Workspace, params: dict[str, Any], data: TrainingSet | None,
             pool: Executor | None) -> Any:  # fmt: skip
    data = data or build_training_set(project, pipeline)
    model = seeded(pipeline.model, pipeline.seed, params)
    experiment = pipeline.experiment or pipeline.name
    run_params = {**{k: _plain(v) for k, v in model.get_params().items()
                     if not k.startswith(("_", "callbacks__"))},
                  "seed": pipeline.seed,
                  "model_class": f"{type(model).__module__}.{type(model).__name__}"}  # fmt: skip
    tags = {"pipeline": pipeline.name, "task": data.task, "training_set": data.fingerprint,
            "executor": pool.name if pool is not None else "inprocess"}  # fmt: skip
    with project.run(experiment, params=run_params, tags=tags) as run:
        cats = categories(data.train, data.features)
        x = {part: prepare(getattr(data, part), data.features, cats) for part in ("train", "valid", "test")}
        y = {part: getattr(data, part)[data.label].to_numpy() for part in ("train", "valid", "test")}
        groups = (
            (query_sizes(data.train[data.group]), query_sizes(data.valid[data.group])) if data.group else None
        )
        task = FitTask(model, x["train"], y["train"], x["valid"], y["valid"], groups)
        if pool is None:
            info = fit_task(task)[1]
        else:  # the fitted model comes back; everything is recorded here, as for a fit in this process
            (outcome,) = pool.map(fit_task, [task])
            if isinstance(outcome, BaseException):
                raise outcome
            model, info = outcome
        scores = {part: predict_scores(model, x[part], data.task) for part in x}
        classes = list(getattr(model, "classes_", [])) if data.task == "multiclass" else []
        report = _evaluate(pipeline, data, y, scores, classes)
        if info.best_iteration:
            run.log_metric("best_iteration", info.best_iteration)
        for step, value in enumerate(info.curve):
            run.log_metric("valid_curve", value, step=step)
        run.log_metrics(report["flat"])

        # A multiclass model's prediction is profiled as its most probable class.
        predicted = np.asarray(classes)[scores["train"].argmax(axis=1)] if classes else scores["train"]
        profile = build_profile(data.train[data.features], prediction=predicted, seed=pipeline.seed)
        profile_digest = run.log_artifact(json.dumps(profile).encode(), "reference_profile.json")
        # Tensor inputs (images, embeddings) are compared as wholes: drift needs rows, not a histogram.
        sample = reference_sample(data.train[data.features], seed=pipeline.seed)
        sample_digest = run.log_artifact(sample_to_bytes(sample), "reference_sample.npz") if sample else None
        calibration = _calibration(data.task, y["valid"], scores["valid"], pipeline.seed)
        calibration_digest = (
            run.log_artifact(json.dumps(calibration).encode(), "calibration.json") if calibration else None
        )
        run.log_artifact(json.dumps(report["detail"], default=str).encode(), "evaluation.json")
        run.log_artifact(json.dumps(data.summary(), default=str).encode(), "training_set.json")
        if pipeline.register:
            lineage = {
                "feature_views": [v for v in data.views if v["kind"] == "feature_view"],
                "on_demand_views": [v for v in data.views if v["kind"] == "on_demand_view"],
                "features": list(pipeline.features),
                "training_set_fingerprint": data.fingerprint,
                "data_time_range": [data.time_range[0].isoformat(), data.time_range[1].isoformat()],
                "label": {"column": data.label, "timestamp": data.timestamp},
                "split": data.summary()["split"],
                "reference_profile": profile_digest,
                **({"reference_sample": sample_digest} if sample_digest else {}),
                "calibration": calibration_digest,
                "categories": cats,
                "seed": pipeline.seed,
            }
            card = {
                "intended_use": pipeline.description
                or f"{data.task} model trained by pipeline {pipeline.name!r}",
                "training_data": data.summary(),
                "metrics": report["detail"]["metrics"],
                "threshold": report["detail"]["threshold"],
                "slices": report["detail"]["slices"],
                "fairness": report["detail"]["fairness"],
                # mean |attribution| on the test split: what the loop's gate and attribution drift compare
                "importance": on_holdout(flavour_for(model).name, model, x["test"], seed=pipeline.seed),
            }
            if classes:  # the columns of the model's probability matrix, for monitoring
                card["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
            version = run.register(model, pipeline.name, input_example=x["train"].head(200),
                                   metrics=report["flat"], lineage=lineage, card=card,
                                   description=pipeline.description)  # fmt: skip
            run.set_tags({"model": pipeline.name, "model_version": str(version.version)})
            run.model_version = version
    return run


def _evaluate(
    pipeline: Any,
    data: TrainingSet,
    y: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    classes: list[Any],
) -> dict[str, Any]:
    if data.task == "multiclass":
        return _evaluate_multiclass(pipeline, data, y, scores, classes)
    if data.task == "ranking":
        return _evaluate_ranking(pipeline, data, y, scores)
    if data.task == "binary":
        threshold = (
            float(pipeline.threshold)
            if isinstance(pipeline.threshold, int | float)
            else evaluation.best_threshold(y["valid"], scores["valid"], metric=str(pipeline.threshold))
        )
        metrics = {
            part: evaluation.classification_metrics(y[part], scores[part], threshold=threshold)
            for part in ("valid", "test")
        }
    else:
        threshold = None
        metrics = {part: evaluation.regression_metrics(y[part], scores[part]) for part in ("valid", "test")}
    task = "binary" if data.task == "binary" else "regression"
    test = data.test.reset_index(drop=True)
    slices = (
        evaluation.by_slice(
            test, list(pipeline.slices), y["test"], scores["test"], task=task, threshold=threshold or 0.5
        )
        if pipeline.slices
        else {}
    )
    fairness = (
        evaluation.fairness(
            test, list(pipeline.sensitive), y["test"], scores["test"], threshold=threshold or 0.5
        )
        if pipeline.sensitive and data.task == "binary"
        else {}
    )
    wanted = set(pipeline.metrics)
    flat = {}
    for part, values in metrics.items():
        for name, value in values.items():
            if (
                isinstance(value, int | float)
                and value is not None
                and (not wanted or name in wanted or name == "rows")
            ):
                flat[f"{part}_{name}"] = float(value)
    for column, gaps in fairness.items():
        for gap in ("demographic_parity_difference", "equal_opportunity_difference"):
            if gaps.get(gap) is not None:
                flat[f"fairness_{column}_{gap}"] = float(gaps[gap])
    if threshold is not None:
        flat["threshold"] = threshold
    detail = {"metrics": metrics, "threshold": threshold, "slices": slices, "fairness": fairness}
    return {"flat": flat, "detail": detail}


def _evaluate_multiclass(
    pipeline: Any,
    data: TrainingSet,
    y: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    classes: list[Any],
) -> dict[str, Any]:
    metrics = {part: of_labels(y[part], scores[part], classes) for part in ("valid", "test")}
    test = data.test.reset_index(drop=True)
    slices = (
        multiclass_by_slice(test, list(pipeline.slices), y["test"], scores["test"], classes=classes)
        if pipeline.slices
        else {}
    )
    wanted = set(pipeline.metrics)
    flat: dict[str, float] = {}
    for part, values in metrics.items():
        for name in ("rows", "accuracy", "macro_f1", "log_loss"):
            if values.get(name) is not None and (not wanted or name in wanted or name == "rows"):
                flat[f"{part}_{name}"] = float(values[name])
        for label, recall in values["per_class_recall"].items():
            key = f"{part}_recall/{label}"
            if recall is not None and (not wanted or "recall" in wanted) and _valid_key(key):
                flat[key] = float(recall)
    # Fairness gaps are defined for binary decisions; a multiclass model has none here.
    detail = {"metrics": metrics, "threshold": None, "slices": slices, "fairness": {},
              "classes": [str(c) for c in classes]}  # fmt: skip
    return {"flat": flat, "detail": detail}


def _evaluate_ranking(
    pipeline: Any, data: TrainingSet, y: dict[str, np.ndarray], scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Per-query metrics of the ranked validation and test splits; their keys on the run have ``_at_``
    for ``@`` (``test_ndcg_at_10``), which is what ``Gate(metric="ndcg@10")`` reads."""
    metrics = {}
    for part in ("valid", "test"):
        frame = pd.DataFrame({"query": getattr(data, part)[data.group].to_numpy(), "score": scores[part],
                              "label": y[part]})  # fmt: skip
        values = ranking.of_frame(frame, query="query", item="__none__", k=RANKING_CUTS)
        metrics[part] = {k: v for k, v in values.items() if not k.startswith("coverage@")}
    wanted = set(pipeline.metrics)
    flat = {
        f"{part}_{ranking.metric_key(name)}": float(value)
        for part, values in metrics.items()
        for name, value in values.items()
        if value is not None and (not wanted or name in wanted or name == "queries")
    }
    detail = {"metrics": metrics, "threshold": None, "slices": {}, "fairness": {}}
    return {"flat": flat, "detail": detail}


def _valid_key(key: str) -> bool:
    try:
        check_key("metric", key)
    except Exception:
        return False
    return True


def _calibration(task: str, labels: np.ndarray, scores: np.ndarray, seed: int) -> dict[str, Any] | None:
    """Validation scores and labels (at most 20,000), from which monitoring calibrates its estimate of
    live performance before labels arrive (:class:`mloop.monitoring.estimation.PerformanceEstimator`)."""
    if task != "binary" or len(labels) == 0:
        return None
    keep = np.arange(len(labels))
    if len(keep) > 20_000:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), 20_000, replace=False))
    return {"scores": [float(v) for v in scores[keep]], "labels": [int(v) for v in labels[keep]]}


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value) if not isinstance(value, pd.Timestamp) else value.isoformat()

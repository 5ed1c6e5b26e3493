"""Hyper-parameter search: Optuna (TPE sampler, median pruning) over an executor; every trial is a
child run of one parent run, and the best is marked on both."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from mloop.errors import SchemaError
from mloop.metrics import evaluation
from mloop.metrics.multiclass import of_labels
from mloop.training.executors import open_executor
from mloop.training.fitting import (
    categories,
    epoch_history,
    eval_arguments,
    is_lightgbm,
    is_torch,
    predict_scores,
    prepare,
    seeded,
)
from mloop.training.run import no_active_run
from mloop.training.studies import STUDY_PREFIX, describe, study_storage
from mloop.training.workspace import Workspace

MAXIMIZE = {"auc", "roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "r2", "macro_f1"}
LIGHTGBM_METRIC = {"auc": "auc", "roc_auc": "auc", "pr_auc": "average_precision", "log_loss": "binary_logloss",
                   "rmse": "rmse", "mae": "l1"}  # fmt: skip


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_value: float
    best_run_id: str
    parent_run_id: str
    metric: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    refit: Any = None  # the run that refitted the pipeline with the best parameters, if asked


@dataclass
class TrialTask:
    number: int
    model: Any
    params: dict[str, Any]
    seed: int
    metric: str
    task: str
    x_train: Any
    y_train: Any
    x_valid: Any
    y_valid: Any
    trial: Any = None  # the optuna trial, in process only: lets LightGBM prune mid-training


@dataclass
class TrialResult:
    value: float | None
    curve: list[float]
    pruned: bool = False
    seconds: float = 0.0
    epochs: dict[str, list[float]] = field(default_factory=dict)  # a torch model's per-epoch history


def distributions(space: dict[str, Any]) -> dict[str, optuna.distributions.BaseDistribution]:
    """``(low, high)`` → int or float range, ``(low, high, "log")`` → log scale, a list → a choice, or an
    Optuna distribution as is."""
    out = {}
    for name, spec in space.items():
        if isinstance(spec, optuna.distributions.BaseDistribution):
            out[name] = spec
        elif isinstance(spec, list):
            out[name] = optuna.distributions.CategoricalDistribution(spec)
        elif isinstance(spec, tuple) and len(spec) in (2, 3):
            low, high = spec[0], spec[1]
            log = len(spec) == 3 and spec[2] == "log"
            if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
                out[name] = optuna.distributions.IntDistribution(low, high, log=log)
            else:
                out[name] = optuna.distributions.FloatDistribution(float(low), float(high), log=log)
        else:
            raise SchemaError(
                f"Search space entry {name!r}: give (low, high), (low, high, 'log'), a list of choices or an "
                f"optuna distribution, not {spec!r}."
            )
    return out


def run_trial(task: TrialTask) -> TrialResult:
    """Fit one candidate and score it on the validation split (runs in a worker process, or here)."""
    started = time.perf_counter()
    model = seeded(task.model, task.seed, task.params)
    curve: list[float] = []
    epochs: dict[str, list[float]] = {}
    if is_lightgbm(model):
        import lightgbm

        eval_metric = LIGHTGBM_METRIC.get(task.metric)
        if task.task == "multiclass":
            eval_metric = "multi_logloss" if task.metric == "log_loss" else None
        callbacks = [lightgbm.early_stopping(50, verbose=False), lightgbm.log_evaluation(0)]
        if task.trial is not None and eval_metric:
            callbacks.append(_pruning(task.trial, eval_metric, curve))
        try:
            model.fit(task.x_train, task.y_train, **eval_arguments(model, task.x_valid, task.y_valid),
                      eval_metric=eval_metric, callbacks=callbacks)  # fmt: skip
        except optuna.TrialPruned:
            return TrialResult(None, curve, pruned=True, seconds=time.perf_counter() - started)
        if not curve and eval_metric:
            curve = [float(v) for v in model.evals_result_["valid_0"].get(eval_metric, [])]
    elif is_torch(model):
        # The trial's child run is opened after it fits: nothing logs to the search's parent run.
        with no_active_run():
            model.fit(task.x_train, task.y_train, X_valid=task.x_valid, y_valid=task.y_valid)
        epochs = epoch_history(model)
    else:
        model.fit(task.x_train, task.y_train)
    scores = predict_scores(model, task.x_valid, task.task)
    if task.task == "multiclass":
        values = of_labels(task.y_valid, scores, list(model.classes_))
    elif task.task == "binary":
        values = evaluation.classification_metrics(task.y_valid, scores)
    else:
        values = evaluation.regression_metrics(task.y_valid, scores)
    value = values.get("roc_auc" if task.metric == "auc" else task.metric)
    if value is None:
        raise SchemaError(f"Metric {task.metric!r} is not one the evaluation computes: {sorted(values)}.")
    return TrialResult(float(value), curve, seconds=time.perf_counter() - started, epochs=epochs)


def tune(pipeline: Any, project: Workspace, space: dict[str, Any], *, trials: int, timeout: float | None,
         metric: str | None, executor: Any, jobs: int | None, refit: bool) -> TuneResult:  # fmt: skip
    dists = distributions(space)
    data = pipeline.training_set(project)
    metric = metric or {"binary": "roc_auc", "multiclass": "log_loss"}.get(data.task, "rmse")
    metric = "roc_auc" if metric == "auc" else metric  # trials log under the pipeline run's metric names
    direction: Literal["maximize", "minimize"] = "maximize" if metric in MAXIMIZE else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cats = categories(data.train, data.features)
    x_train, x_valid = prepare(data.train, data.features, cats), prepare(data.valid, data.features, cats)
    y_train, y_valid = data.train[data.label].to_numpy(), data.valid[data.label].to_numpy()
    compute = project.settings.compute
    # Opened before the parent run: an unreachable cluster fails here, leaving no half-created run.
    pool = open_executor(compute.executor if executor is None else executor, jobs, compute=compute)
    experiment = pipeline.experiment or pipeline.name
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    parent_params = {"trials": trials, "metric": metric, "direction": direction, "executor": pool.name,
                     "space": json.dumps({k: repr(v) for k, v in space.items()})}  # fmt: skip
    try:
        with project.run(experiment, params=parent_params, tags={"kind": "tune", "pipeline": pipeline.name,
                                                                 "training_set": data.fingerprint}) as parent:  # fmt: skip
            study = _study(project, pool, parent, direction, pipeline.seed)
            while len(results) < trials and (timeout is None or time.monotonic() - started < timeout):
                batch = [study.ask(dists) for _ in range(min(pool.parallel, trials - len(results)))]
                tasks = [
                    TrialTask(t.number, pipeline.model, dict(t.params), pipeline.seed, metric, data.task, x_train,
                              y_train, x_valid, y_valid, trial=t if pool.parallel == 1 and pool.name == "inprocess" else None)
                    for t in batch
                ]  # fmt: skip
                try:
                    outcomes = pool.map(run_trial, tasks)
                except (
                    BaseException
                ):  # cancelled (Ctrl-C): the executor stopped its tasks; no trial stays running
                    for trial in batch:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    raise
                for trial, outcome in zip(batch, outcomes, strict=True):
                    results.append(_record(project, experiment, parent, study, trial, outcome, metric))
            finished = [r for r in results if r["state"] == "complete"]
            if not finished:
                raise SchemaError(
                    "No trial finished: every one failed or was pruned; see the child runs' errors."
                )
            best = study.best_trial
            best_run = next(r["run_id"] for r in results if r["number"] == best.number)
            project.runs.set_tags(best_run, {"best": "true"})
            parent.set_tags({"best_run": best_run, "best_params": json.dumps(best.params, default=str)})
            assert best.value is not None  # a finished trial has its value
            parent.log_metrics({f"best_{metric}": float(best.value), "trials_complete": len(finished),
                                "trials_pruned": sum(r["state"] == "pruned" for r in results)})  # fmt: skip
    finally:
        if pool is not executor:  # opened here; an executor passed in is the caller's to close
            pool.close()
    result = TuneResult(dict(best.params), float(best.value), best_run, parent.id, metric, results)
    if refit:
        result.refit = pipeline.run(project, params=dict(best.params), data=data, executor=executor)
    return result


def _study(project: Workspace, pool: Any, parent: Any, direction: Literal["maximize", "minimize"],
           seed: int) -> optuna.Study:  # fmt: skip
    """The search's Optuna study: on Ray, stored in the metadata database (see :mod:`mloop.training.studies`)
    and named after the parent run, which records where; elsewhere in memory, as the search lives here."""
    storage = None
    if pool.name == "ray":
        storage = study_storage(project.settings.metadata_url)
        parent.set_tags(
            {"study": f"{STUDY_PREFIX}{parent.id}", "study_storage": describe(project.settings.metadata_url)}
        )
    return optuna.create_study(
        storage=storage, study_name=f"{STUDY_PREFIX}{parent.id}", direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=10),
    )  # fmt: skip


def _record(project: Workspace, experiment: str, parent: Any, study: optuna.Study, trial: optuna.Trial, outcome: Any,
            metric: str) -> dict[str, Any]:  # fmt: skip
    params = {k: v for k, v in trial.params.items()}
    tags = {"kind": "trial", "trial": str(trial.number)}
    entry: dict[str, Any] = {"number": trial.number, "params": params}
    try:
        with project.run(experiment, params=params, tags=tags, parent=parent) as child:
            entry["run_id"] = child.id
            if isinstance(outcome, Exception):
                raise outcome
            for step, value in enumerate(outcome.curve):
                child.log_metric(f"valid_{metric}_curve", value, step=step)
            for name, values in getattr(outcome, "epochs", {}).items():
                for epoch, value in enumerate(values, start=1):
                    child.log_metric(name, value, step=epoch)
            if outcome.pruned:
                child.set_tags({"state": "pruned"})
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                entry["state"] = "pruned"
            else:
                child.log_metrics({f"valid_{metric}": outcome.value, "fit_seconds": outcome.seconds})
                child.set_tags({"state": "complete"})
                study.tell(trial, outcome.value)
                entry.update(state="complete", value=outcome.value)
    except Exception as exc:  # the child run is marked failed by its context; the search goes on
        if trial.number not in {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        entry.update(state="failed", error=f"{type(exc).__name__}: {exc}")
    return entry


def _pruning(trial: optuna.Trial, name: str, curve: list[float]) -> Any:
    def callback(env: Any) -> None:
        for _, metric, value, _ in env.evaluation_result_list:
            if metric == name:
                curve.append(float(value))
                trial.report(float(value), env.iteration)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at iteration {env.iteration}")

    callback.order = 25  # type: ignore[attr-defined]
    return callback


__all__ = ["TuneResult", "distributions", "run_trial", "tune"]

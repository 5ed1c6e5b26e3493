"""Retraining a challenger and measuring it against the champion: what the gate decides on.

:func:`retrain` runs in a child process (``spawn``), so the served traffic of the controller's
process keeps its latency while LightGBM takes the cores: it builds the new training set, runs the
data checks on it, runs the pipeline (which registers the challenger), then scores the champion on
the same, most recent holdout (the new test split) and times single-row predictions of the
challenger. :func:`decide` turns that report and the policy's :class:`Gate` into pass or fail, one
check at a time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain.importance import versus
from mloop.loop.platform import Platform
from mloop.loop.policy import LOWER_IS_BETTER, Gate, metric_name
from mloop.metrics import evaluation, ranking
from mloop.metrics.bootstrap import paired_gain
from mloop.metrics.multiclass import of_labels

MIN_TRAIN_ROWS, MIN_TEST_ROWS, MAX_NULL_SHARE = 200, 50, 0.95
Opener = Callable[..., Platform]  # picklable: the child process opens the project with it


def data_checks(data: Any) -> list[dict[str, Any]]:
    """Checks of a new training set: enough rows, both classes (binary), inputs neither (almost) all null nor
    constant."""
    out = [
        _check("train_rows", len(data.train), MIN_TRAIN_ROWS, len(data.train) >= MIN_TRAIN_ROWS),
        _check("test_rows", len(data.test), MIN_TEST_ROWS, len(data.test) >= MIN_TEST_ROWS),
    ]
    if data.task in ("binary", "multiclass"):
        for part in ("train", "test"):
            classes = int(getattr(data, part)[data.label].nunique())
            ok = classes == 2 if data.task == "binary" else classes >= 2
            out.append(_check(f"{part}_classes", classes, 2, ok))
    for name in data.features:
        column = data.train[name]
        nulls = float(column.isna().mean()) if len(column) else 1.0
        out.append(_check(f"nulls:{name}", round(nulls, 4), MAX_NULL_SHARE, nulls <= MAX_NULL_SHARE))
        if column.nunique(dropna=True) <= 1:
            out.append(_check(f"constant:{name}", 1, 1, False))
    return out


def retrain(open_project: Opener, root: str, overrides: dict[str, Any], pipeline: Any,
            champion: tuple[str, int] | None, gate: Gate) -> dict[str, Any]:  # fmt: skip
    """Train a challenger and measure it and ``champion`` (model, version) on the newest holdout, in the
    project that ``open_project(root, env={}, **overrides)`` opens (``mloop.Project.open``)."""
    project = open_project(root, env={}, **overrides)
    with contextlib.closing(project):
        data = pipeline.training_set(project)
        checks = data_checks(data) if gate.data_checks else []
        if not all(c["passed"] for c in checks):
            return {"stage": "data", "checks": checks, "challenger": None}
        run = pipeline.run(project, data=data)
        version = run.model_version.version
        metric = metric_name(gate.metric)
        metrics = project.runs.get(run.id).metrics
        report: dict[str, Any] = {"stage": "trained", "checks": checks, "challenger": version, "run_id": run.id,
                                  "metric": metric, "challenger_value": metrics.get(f"test_{metric}")}  # fmt: skip
        holdout = data.test.reset_index(drop=True)
        challenger = project.models.load(pipeline.name, version)
        previous = project.models.load(*champion) if champion else None
        evaluate = getattr(pipeline, "evaluate", None)
        if evaluate is not None:  # a model whose metric is not a function of its predictions alone
            return _custom(report, evaluate, project, challenger, previous, holdout, data)
        old = _predict(previous, holdout, data) if previous is not None else None
        report["champion_value"] = _value(data, holdout, old, metric) if old is not None else None
        # The paired bootstrap covers binary and regression metrics; a multiclass or ranking gate compares
        # point values.
        if (
            gate.confidence is not None
            and old is not None
            and len(holdout)
            and data.task not in ("multiclass", "ranking")
        ):
            new = _predict(challenger, holdout, data)
            report["gain_interval"] = paired_gain(
                metric, data.task, holdout[data.label].to_numpy(), new, old,
                lower_is_better=metric in LOWER_IS_BETTER, confidence=gate.confidence,
            )  # fmt: skip
        report["latency_p99_ms"] = _latency(challenger, holdout, data.features)
        gaps = [v for k, v in metrics.items() if k.startswith("fairness_") and "demographic_parity" in k]
        report["fairness_gap"] = max(gaps) if gaps else None
        report["holdout_rows"] = len(holdout)
        if previous is not None:
            report["importance_shift"] = _importance_shift(challenger, previous, holdout, pipeline.seed)
        return report


def _custom(report: dict[str, Any], evaluate: Callable[..., float], project: Any, challenger: Any,
            previous: Any, holdout: Any, data: Any) -> dict[str, Any]:  # fmt: skip
    """The gate's figures for a pipeline that measures its models itself (``pipeline.evaluate(project, model,
    holdout)``: a retrieval model is judged with its own index, not by its raw outputs): the champion on
    the challenger's holdout, the challenger's latency; no bootstrap interval or attribution shift."""
    report["champion_value"] = evaluate(project, previous, holdout) if previous is not None else None
    report["latency_p99_ms"] = _latency(challenger, holdout, data.features)
    report["fairness_gap"], report["holdout_rows"] = None, len(holdout)
    return report


def retrain_in_process(open_project: Opener, root: str, overrides: dict[str, Any], pipeline: Any,
                       champion: tuple[str, int] | None, gate: Gate) -> dict[str, Any]:  # fmt: skip
    """:func:`retrain` in a fresh child process; its exception comes back as the report's ``error``."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(retrain, open_project, root, overrides, pipeline, champion, gate).result()
        except Exception as exc:  # a failed training run must leave production as it is
            return {"stage": "failed", "error": f"{type(exc).__name__}: {exc}", "challenger": None}


def decide(gate: Gate, report: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """Pass or fail, with every check: data, the metric against the champion's, latency, fairness."""
    checks = list(report.get("checks", []))
    if report.get("stage") != "trained":
        return False, checks
    metric, new, old = report["metric"], report.get("challenger_value"), report.get("champion_value")
    if new is None:
        checks.append(_check(f"{metric}", None, None, False))
    elif old is not None:
        gain = (old - new) if metric in LOWER_IS_BETTER else (new - old)
        checks.append(_check(f"{metric}_gain", round(gain, 6), gate.min_gain, gain >= gate.min_gain)
                      | {"challenger": new, "champion": old})  # fmt: skip
        interval = report.get("gain_interval")
        if gate.confidence is not None and interval is not None:
            low = interval["low"]
            checks.append(_check(f"{metric}_gain_low", None if low is None else round(low, 6), gate.min_gain,
                                 low is not None and low >= gate.min_gain)
                          | {"confidence": gate.confidence, "high": interval["high"]})  # fmt: skip
    if gate.max_latency_ms is not None and report.get("latency_p99_ms") is not None:
        latency = report["latency_p99_ms"]
        checks.append(
            _check("latency_p99_ms", round(latency, 3), gate.max_latency_ms, latency <= gate.max_latency_ms)
        )
    if gate.max_fairness_gap is not None and report.get("fairness_gap") is not None:
        gap = report["fairness_gap"]
        checks.append(
            _check("fairness_gap", round(gap, 4), gate.max_fairness_gap, gap <= gate.max_fairness_gap)
        )
    largest = (report.get("importance_shift") or {}).get("largest")
    if gate.max_importance_shift is not None and largest is not None:  # unexplained: reported, not failed
        move = abs(largest["change"])
        checks.append(_check(f"importance_shift:{largest['feature']}", round(move, 4), gate.max_importance_shift,
                             move <= gate.max_importance_shift) | {"sentence": largest["sentence"]})  # fmt: skip
    return all(c["passed"] for c in checks), checks


def _importance_shift(challenger: Any, champion: Any, holdout: Any, seed: int) -> dict[str, Any]:
    """The challenger's reliance on each feature against the champion's, on the same holdout rows (each
    model reads its own inputs from them; the signature leaves the other columns out)."""
    for model in (challenger, champion):
        names = [c.name for c in model.signature.inputs] if model.signature else []
        if not set(names) <= set(holdout.columns):
            return {
                "note": f"v{model.version} reads inputs the new holdout lacks: no like-for-like comparison"
            }
    return versus(challenger.attributions, champion.attributions, holdout, who=f"v{challenger.version}",
                  seed=seed)  # fmt: skip


def _check(name: str, value: Any, limit: Any, passed: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "limit": limit, "passed": bool(passed)}


def _predict(model: Any, holdout: Any, data: Any) -> Any:
    """The model's scores on the holdout; None when it reads inputs the new training set lacks (no
    like-for-like comparison)."""
    names = [c.name for c in model.signature.inputs] if model.signature else list(data.features)
    if not set(names) <= set(holdout.columns):
        return None
    return np.asarray(model.predict(holdout[names]), dtype=np.float64)


def _value(data: Any, holdout: Any, predicted: Any, metric: str) -> float | None:
    truth = holdout[data.label].to_numpy()
    if data.task == "ranking":  # per query, as the run measured it (ndcg_at_10 is ndcg@10)
        frame = pd.DataFrame({"q": holdout[data.group].to_numpy(), "score": predicted, "label": truth})
        cut = metric.rsplit("_at_", 1)
        values = ranking.of_frame(
            frame, query="q", item="__none__", k=[int(cut[1])] if len(cut) == 2 else [10]
        )
        return values.get(metric.replace("_at_", "@"))
    if data.task == "binary":
        return evaluation.classification_metrics(truth, predicted).get(metric)
    if data.task == "multiclass":  # columns in the classes' sorted order, as the model was fitted on them
        classes = sorted(data.train[data.label].dropna().unique())
        value = of_labels(truth, predicted, classes).get(metric)
        return value if isinstance(value, float | int) else None
    return evaluation.regression_metrics(truth, predicted).get(metric)


def _latency(model: Any, holdout: Any, features: Any, calls: int = 200) -> float | None:
    if holdout.empty:
        return None
    rows = holdout[list(features)].head(calls)
    model.predict(rows.head(1))  # warm up
    seconds = []
    for i in range(len(rows)):
        started = time.perf_counter()
        model.predict(rows.iloc[i : i + 1])
        seconds.append(time.perf_counter() - started)
    return float(np.percentile(seconds, 99) * 1000)

"""Loop policies: what starts a retraining, what a challenger must pass, how it reaches production and
when it goes back.

>>> policy = ml.LoopPolicy(
...     "fraud", pipeline,
...     triggers=[ml.Schedule("0 3 * * *"), ml.OnDrift(psi=0.2, features="top:5"),
...               ml.OnPerformance(metric="auc", below=0.85, window="1d"), ml.OnNewData(rows=100_000)],
...     gate=ml.Gate(metric="auc", min_gain=0.0, max_latency_ms=20, max_fairness_gap=0.1),
...     rollout=ml.Canary(steps=[0.05, 0.25, 1.0], min_requests=500, max_error_rate=0.01, max_p99_ms=50),
...     rollback=ml.OnSLOBreach())                                                  # doctest: +SKIP

In mloop.yaml the pipeline is an import path (``package.module:name``) to a
:class:`~mloop.TrainingPipeline`::

    loop:
      policies:
        - endpoint: fraud
          pipeline: fraud_project.pipelines:fraud
          triggers: [{schedule: "0 3 * * *"}, {drift: {psi: 0.2, features: "top:5"}}]
          gate: {metric: auc, min_gain: 0.0}
          rollout: {steps: [0.05, 0.25, 1.0], min_requests: 500}
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mloop._time import parse_duration
from mloop.errors import ConfigError, MalformedInput

METRIC_NAMES = {"auc": "roc_auc", "roc_auc": "roc_auc", "pr_auc": "pr_auc", "f1": "f1", "precision": "precision",
                "recall": "recall", "accuracy": "accuracy", "rmse": "rmse", "mae": "mae", "r2": "r2"}  # fmt: skip
LOWER_IS_BETTER = {"rmse", "mae", "log_loss", "brier"}


_RANKING_METRIC = re.compile(r"(ndcg|recall|hit_rate)@([1-9][0-9]*)")


def metric_name(name: str) -> str:
    """The evaluation key of a metric (``auc`` is ``roc_auc``; a ranker's ``ndcg@10`` is ``ndcg_at_10``,
    as its training run stores it)."""
    if name == "mrr" or _RANKING_METRIC.fullmatch(str(name)):
        return name.replace("@", "_at_")
    try:
        return METRIC_NAMES[name]
    except KeyError:
        raise MalformedInput(
            f"Unknown metric {name!r}; use one of {', '.join(sorted(METRIC_NAMES))}, or for a ranker "
            "mrr, ndcg@K, recall@K or hit_rate@K (K a whole number, as ndcg@10)."
        ) from None


def _positive(value: Any, what: str) -> timedelta:
    parsed = parse_duration(value, what=what)
    if parsed is None or parsed <= timedelta(0):
        raise MalformedInput(f"{what} must be a positive duration such as '1h' or '1d'; got {value!r}.")
    return parsed


@dataclass(frozen=True)
class Schedule:
    """Retrain on a cron schedule (UTC), e.g. ``"0 3 * * *"``: 03:00 every day."""

    cron: str
    kind: str = field(default="schedule", init=False)

    def __post_init__(self) -> None:
        from mloop.loop.schedule import Cron

        Cron.parse(self.cron)  # refuse a bad expression when the policy is made, not at 3 am


@dataclass(frozen=True)
class OnDrift:
    """Retrain when the newest drift window of the champion has ``psi`` at or above this on any of
    ``features``: ``"all"``, ``"top:N"`` (the N most important inputs of the model) or a list. A window
    of fewer than ``min_rows`` rows is not judged: with no drift at all, the PSI of n rows over 10 bins
    is about 9/n by chance (0.18 at 50 rows)."""

    psi: float = 0.2
    features: str | Sequence[str] = "all"
    min_rows: int = 200
    kind: str = field(default="drift", init=False)

    def __post_init__(self) -> None:
        if isinstance(self.features, str) and self.features != "all":
            head, _, count = self.features.partition(":")
            if head != "top" or not count.isdigit() or int(count) < 1:
                raise MalformedInput(
                    f"OnDrift features={self.features!r}: write 'all', 'top:5' or a list of names."
                )
        if self.min_rows < 1:
            raise MalformedInput(f"OnDrift min_rows={self.min_rows}: a window needs at least 1 row.")


@dataclass(frozen=True)
class OnPerformance:
    """Retrain when the champion's realised ``metric`` over the last ``window`` (the estimate while no
    labels have arrived) is below ``below``. ``metric="ctr"``: the share of the champion's answers whose
    feedback says clicked (a pipeline stage's answers take the labels of the pipeline's request, as the
    A/B report reads them), once ``min_labels`` have arrived."""

    metric: str = "auc"
    below: float = 0.85
    window: str | timedelta = "1d"
    min_labels: int = 100
    kind: str = field(default="performance", init=False)

    def __post_init__(self) -> None:
        if self.metric != "ctr":  # ctr: the share of answers with a click, from feedback (a recommender's)
            metric_name(self.metric)
        _positive(self.window, "OnPerformance window")

    @property
    def span(self) -> timedelta:
        return _positive(self.window, "OnPerformance window")


@dataclass(frozen=True)
class OnNewData:
    """Retrain once ``rows`` labelled rows newer than the champion's training data have arrived."""

    rows: int = 100_000
    kind: str = field(default="new_data", init=False)

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise MalformedInput(f"OnNewData rows must be at least 1; got {self.rows}.")


Trigger = Schedule | OnDrift | OnPerformance | OnNewData


@dataclass(frozen=True)
class Gate:
    """What a challenger must pass before any traffic: on the newest holdout (the test split of its own
    training set), ``metric`` at least the champion's plus ``min_gain``; per-row latency at most
    ``max_latency_ms`` (p99 of single-row calls); the largest demographic parity gap at most
    ``max_fairness_gap``; and the new training set's data checks. With ``confidence`` (e.g. 0.9) the
    gain must hold with that confidence too: the lower bound of a paired bootstrap interval of the gain
    on the holdout (:mod:`mloop.metrics.bootstrap`) must be at least ``min_gain``, so a small holdout's
    noise does not promote a challenger that is no better.

    The gate report always lists how the challenger's reliance on each feature moved against the
    champion's on the same holdout rows (:mod:`mloop.explain.importance`: each feature's share of the
    total mean |attribution|). ``max_importance_shift`` (e.g. 0.3) also fails a challenger when a
    feature's share moved by more than that, in absolute terms (0.2 to 0.5 is a move of 0.3); a model
    that cannot be explained is reported so and never fails the gate on it.

    With ``ab_metric`` (``"ctr"`` or ``"mean"``) the offline gate is followed by an online one: instead of
    the stepped canary the challenger serves ``ab_share`` of the traffic in an A/B split with the
    champion (sticky by ``ab_sticky_key``, default the deployment's sticky key), and each tick the
    sequential test of :mod:`mloop.monitoring.ab` decides: ``ship`` promotes, ``keep`` rolls back (also
    when both arms reach ``ab_max_samples`` outcomes without significance), ``need more data`` waits.
    ``ab_mde`` is the relative lift to plan for (0.1 = 10%), ``ab_missing="no_click"`` counts a request
    unlabelled ``ab_wait`` after its answer as 0. The canary's safety checks still roll back."""

    metric: str = "auc"
    min_gain: float = 0.0
    max_latency_ms: float | None = 20.0
    max_fairness_gap: float | None = None
    data_checks: bool = True
    confidence: float | None = None
    max_importance_shift: float | None = None
    ab_metric: str | None = None
    ab_alpha: float = 0.05
    ab_share: float = 0.5
    ab_sticky_key: str | None = None
    ab_max_samples: int | None = None
    ab_mde: float = 0.1
    ab_missing: str = "awaiting"
    ab_wait: str | timedelta = "1h"

    def __post_init__(self) -> None:
        metric_name(self.metric)
        self._check_ab()
        shift = self.max_importance_shift
        if shift is not None and (isinstance(shift, bool) or not isinstance(shift, int | float)
                                  or not 0 < shift <= 1):  # fmt: skip
            raise MalformedInput(
                f"Gate max_importance_shift={shift!r}: give the largest move allowed in a feature's share of "
                "the total |attribution|, a number in (0, 1] like 0.3, or None to only report the shift."
            )
        if self.confidence is not None and not 0.5 <= self.confidence < 1:
            raise MalformedInput(
                f"Gate confidence={self.confidence}: give a share between 0.5 and 1, like 0.9, or None."
            )

    def _check_ab(self) -> None:
        from mloop.monitoring.ab import METRICS, MISSING

        if self.ab_metric is None:
            return
        problems = [
            (self.ab_metric not in METRICS, f"ab_metric={self.ab_metric!r}: use 'ctr' or 'mean'"),
            (not 0 < self.ab_alpha < 0.5, f"ab_alpha={self.ab_alpha}: a false-positive rate like 0.05"),
            (not 0 < self.ab_share < 1, f"ab_share={self.ab_share}: the challenger's share, in (0, 1), like 0.5"),
            (not self.ab_mde > 0, f"ab_mde={self.ab_mde}: the relative lift to plan for, like 0.1"),
            (self.ab_max_samples is not None and self.ab_max_samples < 1,
             f"ab_max_samples={self.ab_max_samples}: outcomes per arm, at least 1 (or None for no limit)"),
            (self.ab_missing not in MISSING, f"ab_missing={self.ab_missing!r}: use {', '.join(MISSING)}"),
        ]  # fmt: skip
        bad = [text for failed, text in problems if failed]
        if bad:
            raise MalformedInput("Gate: " + "; ".join(bad) + ".")
        parse_duration(self.ab_wait, what="Gate ab_wait")

    @property
    def ab_wait_span(self) -> timedelta:
        return parse_duration(self.ab_wait, what="Gate ab_wait") or timedelta(0)


@dataclass(frozen=True)
class Canary:
    """Traffic shares the challenger goes through; each step needs ``min_requests`` answered by it with
    at most ``max_error_rate`` failures and p99 latency at most ``max_p99_ms``; ``compare="live_auc"``
    also aborts when its live ROC AUC (once labels arrive) falls ``tolerance`` below the champion's."""

    steps: Sequence[float] = (0.05, 0.25, 1.0)
    min_requests: int = 500
    max_error_rate: float = 0.01
    max_p99_ms: float | None = 50.0
    compare: str | None = "live_auc"
    tolerance: float = 0.02
    min_labels: int = 200

    def __post_init__(self) -> None:
        steps = list(self.steps)
        if not steps or any(not 0 < s <= 1 for s in steps) or steps != sorted(steps) or steps[-1] != 1.0:
            raise MalformedInput(
                f"Canary steps {steps} must be rising shares in (0, 1] ending at 1.0, e.g. [0.05, 0.25, 1.0]."
            )
        if self.compare not in (None, "live_auc"):
            raise MalformedInput(f"Canary compare must be 'live_auc' or None; got {self.compare!r}.")


@dataclass(frozen=True)
class OnSLOBreach:
    """Roll back when an SLO of the endpoint pages during the canary, or within ``after`` of a
    promotion (back to the previous champion)."""

    after: str | timedelta = "1h"

    @property
    def span(self) -> timedelta:
        return _positive(self.after, "OnSLOBreach after")


@dataclass
class LoopPolicy:
    """One endpoint's loop: ``pipeline`` (a :class:`~mloop.TrainingPipeline`, or its import path) is run
    when a trigger fires; the challenger passes ``gate``, goes through ``rollout``, and is promoted
    (alias ``champion``) or rolled back. ``approval``: the final step waits for ``mloop loop approve``.
    ``cooldown``: after a failed attempt, a rollback or a promotion, how long the triggers rest."""

    endpoint: str
    pipeline: Any
    triggers: Sequence[Trigger] = ()
    gate: Gate = field(default_factory=Gate)
    rollout: Canary = field(default_factory=Canary)
    rollback: OnSLOBreach | None = field(default_factory=OnSLOBreach)
    approval: bool = False
    cooldown: str | timedelta = "10m"

    def resolved_pipeline(self) -> Any:
        if not isinstance(self.pipeline, str):
            return self.pipeline
        module, _, name = self.pipeline.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"Loop policy for {self.endpoint!r}: cannot import pipeline {self.pipeline!r} ({exc}); write "
                "it as package.module:name, importable from the project folder."
            ) from None

    @property
    def model(self) -> str:
        return str(self.resolved_pipeline().name)

    @property
    def pause_after_failure(self) -> timedelta:
        return _positive(self.cooldown, "cooldown")


def policies_from_settings(specs: Sequence[Mapping[str, Any]]) -> list[LoopPolicy]:
    """The ``loop.policies`` of mloop.yaml as :class:`LoopPolicy` objects."""
    out = []
    for i, spec in enumerate(specs):
        where = f"loop.policies entry {i + 1}"
        try:
            triggers = [_trigger(t) for t in spec.get("triggers", [])]
            rollback = spec.get("rollback", {})
            out.append(LoopPolicy(
                endpoint=str(spec["endpoint"]), pipeline=str(spec["pipeline"]), triggers=triggers,
                gate=Gate(**spec.get("gate", {})), rollout=Canary(**spec.get("rollout", {})),
                rollback=None if rollback is None else OnSLOBreach(**rollback),
                approval=bool(spec.get("approval", False)), cooldown=spec.get("cooldown", "10m"),
            ))  # fmt: skip
        except KeyError as exc:
            raise ConfigError(
                f"{where} in mloop.yaml needs {exc.args[0]!r} (endpoint and pipeline)."
            ) from None
        except (TypeError, MalformedInput) as exc:
            raise ConfigError(f"{where} in mloop.yaml: {exc}") from None
    return out


def _trigger(spec: Mapping[str, Any]) -> Trigger:
    if len(spec) != 1:
        raise MalformedInput(f"a trigger is one of schedule, drift, performance, new_data; got {dict(spec)}")
    ((kind, value),) = spec.items()
    if kind == "schedule":
        return Schedule(str(value))
    makers = {"drift": OnDrift, "performance": OnPerformance, "new_data": OnNewData}
    if kind not in makers:
        raise MalformedInput(f"unknown trigger {kind!r}; use schedule, drift, performance or new_data")
    return makers[kind](**(value or {}))

"""Trigger evaluation: does a policy's trigger fire now, and why (with the numbers behind it)?

Each check returns None (quiet) or a :class:`Fired` naming the trigger, a one-line reason and the
figures that decided it, which become the ``loop.trigger`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop._time import as_utc
from mloop.loop.live import version_stats
from mloop.loop.platform import Platform
from mloop.loop.policy import OnDrift, OnNewData, OnPerformance, Schedule, Trigger, metric_name
from mloop.loop.schedule import Cron, due
from mloop.monitoring.ab import outcomes
from mloop.monitoring.windows import floor
from mloop.predictions.log import predictions_folder


@dataclass(frozen=True)
class Fired:
    trigger: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def check(trigger: Trigger, project: Platform, policy: Any, champion: Any, last_run: datetime | None,
          now: datetime) -> Fired | None:  # fmt: skip
    """``champion`` is the registry's :class:`ModelVersion` the endpoint's alias points at."""
    if isinstance(trigger, Schedule):
        return _schedule(trigger, champion, last_run, now)
    if isinstance(trigger, OnDrift):
        return _drift(trigger, project, policy, champion, now)
    if isinstance(trigger, OnPerformance):
        return _performance(trigger, project, policy, champion, now)
    if isinstance(trigger, OnNewData):
        return _new_data(trigger, project, policy, champion)
    raise TypeError(f"not a trigger: {trigger!r}")


def _schedule(trigger: Schedule, champion: Any, last_run: datetime | None, now: datetime) -> Fired | None:
    since = last_run or champion.created_at  # a new loop waits for the first scheduled time
    if not due(Cron.parse(trigger.cron), since, now):
        return None
    return Fired(
        "schedule", f"scheduled run ({trigger.cron})", {"cron": trigger.cron, "since": since.isoformat()}
    )


def _drift(trigger: OnDrift, project: Platform, policy: Any, champion: Any, now: datetime) -> Fired | None:
    size = project.settings.monitoring.window
    end = floor(now, size)
    features = _features(trigger, project, champion)
    found = project.monitoring.drift(policy.endpoint, since=end - size, until=end, store=False,
                                     methods={f: "psi" for f in features}, thresholds={"psi": trigger.psi})  # fmt: skip
    mine = [e for e in found if e.get("version") == champion.version and not e.get("empty")]
    if not mine or (mine[-1].get("rows") or 0) < trigger.min_rows:
        return None
    columns = [c for c in mine[-1]["columns"] if c["column"] in features and c["method"] == "psi"]
    hot = sorted((c for c in columns if c["statistic"] is not None and c["statistic"] >= trigger.psi),
                 key=lambda c: -c["statistic"])  # fmt: skip
    if not hot:
        return None
    shown = ", ".join(f"{c['column']} {c['statistic']:.3f}" for c in hot[:5])
    return Fired("drift", f"PSI >= {trigger.psi} on {len(hot)} input(s) of v{champion.version}: {shown}",
                 {"window_start": mine[-1]["start"], "rows": mine[-1]["rows"],
                  "psi": {c["column"]: round(c["statistic"], 4) for c in hot}})  # fmt: skip


def _features(trigger: OnDrift, project: Platform, champion: Any) -> list[str]:
    names = [c.name for c in champion.signature.inputs] if champion.signature else []
    if not isinstance(trigger.features, str):
        return list(trigger.features)
    if trigger.features == "all":
        return names
    top = int(trigger.features.split(":")[1])
    model = project.models.load(champion.name, champion.version).model
    importance = getattr(model, "feature_importances_", None)
    if importance is None or len(importance) != len(names):
        return names  # no importances: watch every input
    order = np.argsort(-np.asarray(importance, dtype=float), kind="stable")
    return [names[i] for i in order[:top]]


def _performance(
    trigger: OnPerformance, project: Platform, policy: Any, champion: Any, now: datetime
) -> Fired | None:
    since = now - trigger.span
    if trigger.metric == "ctr":
        return _ctr(trigger, project, policy, champion, since, now)
    metric = metric_name(trigger.metric)
    stats = version_stats(predictions_folder(project.settings), policy.endpoint, since, now,
                          min_labels=trigger.min_labels, parquet=project.parquet).get(champion.version)  # fmt: skip
    value, source = (stats or {}).get("live_auc") if metric == "roc_auc" else None, "realised"
    if value is None:  # no labels yet: the estimate of the newest window
        windows = project.monitoring.history(policy.endpoint, "performance", since=since, until=now)
        estimates = [w["estimated"].get(metric) for w in windows if w.get("version") == champion.version
                     and w.get("estimated") and w["estimated"].get(metric) is not None]  # fmt: skip
        value, source = (estimates[-1], "estimated") if estimates else (None, "")
    if value is None or value >= trigger.below:
        return None
    return Fired("performance", f"{source} {metric} {value:.4f} of v{champion.version} is below {trigger.below} "
                 f"over the last {trigger.window}", {"metric": metric, "value": value, "source": source,
                                                    "labelled": (stats or {}).get("labelled", 0)})  # fmt: skip


def _ctr(trigger: OnPerformance, project: Platform, policy: Any, champion: Any, since: datetime,
         now: datetime) -> Fired | None:  # fmt: skip
    units = outcomes(predictions_folder(project.settings), policy.endpoint, since, now, metric="ctr",
                     parquet=project.parquet)  # fmt: skip
    known = units[(units["version"] == champion.version) & units["outcome"].notna()] if len(units) else units
    if len(known) < trigger.min_labels:
        return None
    value = float(known["outcome"].mean())
    if value >= trigger.below:
        return None
    return Fired("performance", f"realised ctr {value:.4f} of v{champion.version} is below {trigger.below} over "
                 f"the last {trigger.window} ({len(known):,} answers with feedback)",
                 {"metric": "ctr", "value": value, "source": "realised", "labelled": len(known)})  # fmt: skip


def _new_data(trigger: OnNewData, project: Platform, policy: Any, champion: Any) -> Fired | None:
    label = policy.resolved_pipeline().label
    trained_until = (champion.lineage or {}).get("data_time_range", [None, None])[1]
    if trained_until is None:
        return None
    frame = _label_frame(project, label.source)
    times = pd.to_datetime(frame[label.timestamp], utc=True)
    newer = int((times > as_utc(datetime.fromisoformat(trained_until))).sum())
    if newer < trigger.rows:
        return None
    return Fired("new_data", f"{newer:,} labelled rows newer than v{champion.version}'s training data "
                 f"(at least {trigger.rows:,})", {"rows": newer, "trained_until": trained_until})  # fmt: skip


def _label_frame(project: Platform, source: Any) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    text = str(source)
    if text.endswith(".parquet"):
        return pd.read_parquet(text)
    return project.data.read(text)

"""ML team metrics from the event log, the registry and the prediction log (``mloop metrics``, beside DORA's
four in :mod:`mloop.review.delivery`):

- **time to detect drift**: a drift alert's window start (``window_start`` label) to the alert
  (``started_at``);
- **time from alert to fix**: the first drift or quality alert on a version (any alert but an SLO burn)
  to the first ``loop.promote`` of a newer champion, or the first deployment of a newer version at 100%,
  on that endpoint; alerts repeated on a version before its fix count once;
- **experiment rate**: runs started (``runs.start``) per ISO week;
- **feature reuse**: feature and on-demand views in the lineage of 2+ registered models, over the views
  any model uses;
- **gated share**: requests answered by a version that passed the loop's holdout gate (a ``loop.gate``
  event with ``passed``) over all requests answered, from the prediction log (shadow copies excluded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from mloop._time import as_utc
from mloop.loop.platform import Platform
from mloop.security.audit_chain import Event


def stats(values: Sequence[float]) -> dict[str, Any]:
    """``{count, median, p90}`` of ``values`` (None when there are none), interpolating linearly between
    ranked values (numpy's default)."""
    if not values:
        return {"count": 0, "median": None, "p90": None}
    array = np.asarray(values, dtype=np.float64)
    return {"count": len(values), "median": float(np.median(array)), "p90": float(np.quantile(array, 0.9))}


def week(at: datetime) -> str:
    """The ISO week of ``at``: ``2026-W49``."""
    year, number, _ = at.isocalendar()
    return f"{year}-W{number:02d}"


def _alert(event: Event) -> dict[str, Any]:
    alert: dict[str, Any] = event.payload.get("alert") or {}
    return alert


def drift_detection(events: Sequence[Event]) -> dict[str, Any]:
    """Seconds from each drift alert's window start to the alert."""
    seconds = []
    for event in events:
        alert = _alert(event)
        start = (alert.get("labels") or {}).get("window_start")
        if (
            event.action == "monitoring.alert"
            and alert.get("name") == "drift"
            and start
            and alert.get("started_at")
        ):
            raised = as_utc(datetime.fromisoformat(alert["started_at"]))
            seconds.append((raised - as_utc(datetime.fromisoformat(start))).total_seconds())
    return stats(seconds)


def alert_to_fix(events: Sequence[Event]) -> dict[str, Any]:
    """Seconds from the first drift or quality alert on a version to the newer version that replaced it;
    ``unfixed`` counts the alerted versions still waiting."""
    waiting: dict[tuple[str, int], datetime] = {}  # (endpoint, alerted version) -> its first alert
    seconds: list[float] = []
    for event in sorted(events, key=lambda e: e.seq):
        endpoint, at = event.resource.removeprefix("endpoint:"), as_utc(event.ts)
        newer: int | None = None
        if event.action == "monitoring.alert":
            alert = _alert(event)
            version = (alert.get("labels") or {}).get("version")
            if alert.get("name") != "slo_burn" and version:
                waiting.setdefault((endpoint, int(version)), at)
        elif event.action == "loop.promote":
            newer = int(event.payload["champion"])
        elif event.action == "deployments.write" and event.payload.get("active", True):
            newer = next(
                (int(r["version"]) for r in event.payload.get("routes") or [] if float(r["weight"]) >= 1),
                None,
            )
        if newer is not None:
            for key in [k for k in waiting if k[0] == endpoint and k[1] < newer]:
                seconds.append((at - waiting.pop(key)).total_seconds())
    return {**stats(seconds), "unfixed": len(waiting)}


def experiments(events: Sequence[Event]) -> dict[str, Any]:
    """Runs started, in all and per ISO week."""
    weeks = Counter(week(as_utc(e.ts)) for e in events if e.action == "runs.start")
    return {"runs": sum(weeks.values()), "per_week": dict(sorted(weeks.items()))}


def feature_reuse(platform: Platform) -> dict[str, Any]:
    """Views (feature and on-demand) used by 2+ registered models over the views any model uses."""
    users: dict[str, set[str]] = {}
    for model in platform.models.list():
        for version in platform.models.list_versions(model.name):
            for kind in ("feature_views", "on_demand_views"):
                for view in version.lineage.get(kind) or []:
                    users.setdefault(f"{view.get('kind', kind)}:{view['name']}", set()).add(model.name)
    reused = sorted(v for v, models in users.items() if len(models) >= 2)
    return {"views": len(users), "reused": len(reused), "share": len(reused) / len(users) if users else None,
            "reused_views": reused}  # fmt: skip


def gated_share(
    platform: Platform, events: Sequence[Event], endpoints: Sequence[str], since: datetime, until: datetime
) -> dict[str, Any]:
    """Requests answered by a gated version over all requests answered, per endpoint and in all."""
    gated = {(e.resource.removeprefix("endpoint:"), int(e.payload["challenger"]))
             for e in events if e.action == "loop.gate" and e.payload.get("passed")}  # fmt: skip
    per: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        rows = [r for r in platform.monitoring.traffic(endpoint, since=since, now=until) if not r["shadow"]]
        total = sum(int(r["requests"]) for r in rows)
        passed = sum(int(r["requests"]) for r in rows if (endpoint, int(r["version"])) in gated)
        per[endpoint] = {"requests": total, "gated": passed, "share": passed / total if total else None,
                         "gated_versions": sorted(v for e, v in gated if e == endpoint)}  # fmt: skip
    total = sum(p["requests"] for p in per.values())
    passed = sum(p["gated"] for p in per.values())
    return {"requests": total, "gated": passed, "share": passed / total if total else None, "endpoints": per}

"""Delivery metrics (DORA's four) read from the event log, per endpoint and overall, per ISO week.

The audit chain records every deployment, rollback, loop step, alert and run, each with its time, so the
four figures need nothing else:

- a **change** is a deployment revision (``deployments.write``) after which one version serves 100% of an
  endpoint that another version (or nothing) served before. A canary revision is not a change until its
  version reaches 100%: canary starts are counted beside the changes. A rollback (``deployments.rollback``,
  or the revision a ``loop.rollback`` wrote) is not a change: it marks the change it undoes as failed.
- **deployment frequency**: changes in the span, and per week;
- **lead time for changes**: the end of the run that produced the version (``runs.end``) to the change;
- **change-failure rate**: changes rolled back, or followed by an incident on that endpoint while the
  version served (its alerts, or alerts with no version label), over all changes;
- **time to restore**: an incident's alert to its resolution or to a rollback of its endpoint, whichever
  comes first.

An *incident* is any alert except drift: drift says the world changed, not that a change broke something
(drift counts in the ML metrics, :mod:`mloop.review.delivery_ml`). Medians and p90s interpolate linearly
between the ranked values (numpy's default), and every figure comes with the count behind it.

>>> metrics = project.reviews.metrics(since="90d")         # doctest: +SKIP
>>> metrics.overall["change_failure"]["rate"]               # doctest: +SKIP
0.25
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mloop._time import as_utc, utcnow
from mloop.loop.platform import Platform
from mloop.monitoring.windows import since_time
from mloop.review import delivery_ml as ml
from mloop.review.delivery_ml import stats, week
from mloop.security import audit_chain
from mloop.security.audit_chain import Event

ACTIONS = (
    "deployments.write", "deployments.rollback", "loop.canary", "loop.promote", "loop.rollback", "loop.gate",
    "loop.trigger", "models.register", "models.alias", "monitoring.alert", "monitoring.resolve",
    "runs.start", "runs.end",
)  # fmt: skip
"""The event actions the metrics read."""


@dataclass
class Change:
    """One version reaching 100% of an endpoint."""

    endpoint: str
    model: str
    version: int
    seq: int
    at: datetime
    run: str | None = None
    lead_s: float | None = None  # the producing run's end to ``at``; None if the run's end is unknown
    failed: str | None = None  # "rolled back (event:N)" or "incident <key> (event:N)"
    ended: datetime | None = None  # when another version (or a rollback, or an undeploy) replaced it

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "model": self.model, "version": self.version, "event": self.seq,
                "at": self.at.isoformat(), "run": self.run, "lead_s": self.lead_s, "failed": self.failed}  # fmt: skip


@dataclass
class Incident:
    """A non-drift alert on an endpoint, from its ``monitoring.alert`` event to what ended it."""

    endpoint: str
    key: str
    name: str
    version: int | None
    seq: int
    at: datetime
    started_at: str  # the alert's own start, which its resolution repeats
    restored: datetime | None = None
    restored_by: str | None = None  # "resolved (event:N)" or "rolled back (event:N)"

    @property
    def restore_s(self) -> float | None:
        return None if self.restored is None else (self.restored - self.at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "key": self.key, "name": self.name, "version": self.version,
                "event": self.seq, "at": self.at.isoformat(), "restore_s": self.restore_s,
                "restored_by": self.restored_by}  # fmt: skip


@dataclass
class Timeline:
    """What the event log says happened: changes, canary starts and incidents, every endpoint."""

    changes: list[Change] = field(default_factory=list)
    canaries: list[tuple[str, int, datetime]] = field(default_factory=list)  # endpoint, version, when
    incidents: list[Incident] = field(default_factory=list)


def timeline(events: Iterable[Event]) -> Timeline:
    """Replay ``events`` (any order; read in sequence) into changes, canary starts and incidents."""
    ordered = sorted(events, key=lambda e: e.seq)
    run_end = {e.payload.get("run"): as_utc(e.ts) for e in ordered if e.action == "runs.end"}
    producer = {(e.resource.removeprefix("model:"), e.payload.get("version")): e.payload.get("run_id")
                for e in ordered if e.action == "models.register"}  # fmt: skip
    # The loop rolls a canary back by writing a plain revision; the loop.rollback event after it says so.
    loop_restores = set()
    last_write: dict[str, int] = {}
    for e in ordered:
        if e.action == "deployments.write":
            last_write[e.resource] = e.seq
        elif e.action == "loop.rollback" and e.resource in last_write:
            loop_restores.add(last_write[e.resource])
    out = Timeline()
    serving: dict[str, int | None] = {}  # endpoint -> the version last at 100%, under any canary
    live: dict[str, int | None] = {}  # endpoint -> the version at 100% in the live revision, if one is
    routed: dict[str, set[int]] = {}  # endpoint -> every version taking traffic now
    current: dict[str, Change] = {}
    open_incidents: dict[tuple[str, str, str], Incident] = {}
    for e in ordered:
        endpoint = e.resource.removeprefix("endpoint:")
        at = as_utc(e.ts)
        if e.action in ("deployments.write", "deployments.rollback"):
            routes = e.payload.get("routes") or []
            active = bool(e.payload.get("active", True))
            versions = {int(r["version"]) for r in routes if float(r["weight"]) > 0} if active else set()
            whole = next((int(r["version"]) for r in routes if float(r["weight"]) >= 1.0), None)
            whole = whole if active else None
            rollback = e.action == "deployments.rollback" or e.seq in loop_restores
            was = current.get(endpoint)
            # The serving version is the one last at 100%: a canary on top of it does not replace it.
            before = serving.get(endpoint)
            after = whole if whole is not None else (before if active else None)
            # A rollback from the serving version at 100% undoes it (from a canary, it undoes the canary).
            undone = rollback and before is not None and live.get(endpoint) == before and whole != before
            if rollback:
                for incident in open_incidents.values():
                    if incident.endpoint == endpoint and incident.restored is None:
                        incident.restored, incident.restored_by = at, f"rolled back (event:{e.seq})"
                if undone:
                    after = whole  # a canary state restored under it serves no version of a change
                    if was is not None:
                        was.failed = was.failed or f"rolled back (event:{e.seq})"
            elif whole is not None and whole != before:
                model = str(e.payload.get("model"))
                run = producer.get((model, whole))
                ended = run_end.get(run) if run else None
                current[endpoint] = Change(endpoint, model, whole, e.seq, at, run,
                                           None if ended is None else (at - ended).total_seconds())  # fmt: skip
                out.changes.append(current[endpoint])
            elif whole is None and active:
                out.canaries += [(endpoint, v, at) for v in sorted(versions - routed.get(endpoint, set()))]
            if was is not None and (after != was.version or undone):
                was.ended = at  # replaced, rolled back or undeployed: no later incident is its
                if current.get(endpoint) is was:
                    del current[endpoint]
            serving[endpoint], live[endpoint], routed[endpoint] = after, whole, versions
        elif e.action == "monitoring.alert":
            alert = e.payload.get("alert") or {}
            if alert.get("name") == "drift":
                continue
            label = (alert.get("labels") or {}).get("version")
            incident = Incident(endpoint, str(alert.get("key")), str(alert.get("name")),
                                int(label) if label else None, e.seq, at, str(alert.get("started_at")))  # fmt: skip
            out.incidents.append(incident)
            open_incidents[(endpoint, incident.key, incident.started_at)] = incident
            change = current.get(endpoint)
            if change is not None and incident.version in (None, change.version):
                change.failed = change.failed or f"incident {incident.key} (event:{e.seq})"
        elif e.action == "monitoring.resolve":
            alert = e.payload.get("alert") or {}
            found = open_incidents.pop((endpoint, str(alert.get("key")), str(alert.get("started_at"))), None)
            if found is not None and found.restored is None:
                found.restored, found.restored_by = at, f"resolved (event:{e.seq})"
    return out


def figures(tl: Timeline, weeks: float) -> dict[str, Any]:
    """DORA's four over one already-filtered timeline spanning ``weeks`` weeks."""
    failed = [c for c in tl.changes if c.failed]
    leads = [c.lead_s for c in tl.changes if c.lead_s is not None]
    restores = [i.restore_s for i in tl.incidents if i.restore_s is not None]
    return {
        "deployments": {"changes": len(tl.changes), "per_week": len(tl.changes) / weeks if weeks else None,
                        "canary_starts": len(tl.canaries)},
        "lead_time_s": {**stats(leads), "unknown": len(tl.changes) - len(leads)},
        "change_failure": {"changes": len(tl.changes), "failed": len(failed),
                           "rate": len(failed) / len(tl.changes) if tl.changes else None},
        "restore_s": {**stats(restores), "incidents": len(tl.incidents), "open": len(tl.incidents) - len(restores)},
    }  # fmt: skip


def select(tl: Timeline, since: datetime, until: datetime, endpoint: str | None = None) -> Timeline:
    """The changes, canary starts and incidents that began in ``[since, until)`` (on ``endpoint``)."""

    def keep(at: datetime, where: str) -> bool:
        return since <= at < until and endpoint in (None, where)

    return Timeline([c for c in tl.changes if keep(c.at, c.endpoint)],
                    [c for c in tl.canaries if keep(c[2], c[0])],
                    [i for i in tl.incidents if keep(i.at, i.endpoint)])  # fmt: skip


def weekly(tl: Timeline) -> dict[str, Timeline]:
    """``tl`` split by the ISO week each change, canary start and incident began in, oldest week first."""
    out: dict[str, Timeline] = {}
    for change in tl.changes:
        out.setdefault(week(change.at), Timeline()).changes.append(change)
    for canary in tl.canaries:
        out.setdefault(week(canary[2]), Timeline()).canaries.append(canary)
    for incident in tl.incidents:
        out.setdefault(week(incident.at), Timeline()).incidents.append(incident)
    return dict(sorted(out.items()))


def endpoints_of(tl: Timeline) -> list[str]:
    return sorted(
        {c.endpoint for c in tl.changes} | {c[0] for c in tl.canaries} | {i.endpoint for i in tl.incidents}
    )


def span_weeks(since: datetime, until: datetime) -> float:
    return max((until - since) / timedelta(weeks=1), 0.0)


@dataclass(frozen=True)
class Delivery:
    """DORA's four and the ML team metrics over ``[since, until)``, overall, per endpoint and per week."""

    since: datetime
    until: datetime
    endpoint: str | None
    overall: dict[str, Any]
    endpoints: dict[str, dict[str, Any]]
    weeks: list[dict[str, Any]]  # one row per ISO week and endpoint ("*": every endpoint)
    ml: dict[str, Any]
    changes: list[Change]
    incidents: list[Incident]

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "endpoint": self.endpoint,
                "overall": self.overall, "endpoints": self.endpoints, "weeks": self.weeks, "ml": self.ml,
                "changes": [c.to_dict() for c in self.changes],
                "incidents": [i.to_dict() for i in self.incidents]}  # fmt: skip


def read_events(platform: Platform, until: datetime) -> list[Event]:
    """Every event the metrics read, up to ``until``, in sequence."""
    found = [e for action in ACTIONS for e in audit_chain.iter_events(platform.store, action=action)]
    return sorted((e for e in found if as_utc(e.ts) < until), key=lambda e: e.seq)


def measure(
    platform: Platform,
    *,
    since: str | timedelta | datetime = "90d",
    until: datetime | None = None,
    endpoint: str | None = None,
    now: datetime | None = None,
    events: list[Event] | None = None,
    team: bool = True,
) -> Delivery:
    """The delivery and ML team metrics of ``platform`` over ``since`` (a duration back from ``until``,
    ``"90d"``, or a time) to ``until`` (default ``now``), for one ``endpoint`` or all; with ``team=False``
    only DORA's four, from the event log alone (the ML team metrics read the registry and prediction log)."""
    until = as_utc(until or now or utcnow())
    start = until - since if isinstance(since, timedelta) else since_time(since, until)
    events = read_events(platform, until) if events is None else events
    everything = timeline(events)
    picked = select(everything, start, until, endpoint)
    weeks = span_weeks(start, until)
    names = endpoints_of(picked)
    rows = []
    for name in ["*", *names]:
        for label, part in weekly(picked if name == "*" else select(picked, start, until, name)).items():
            rows.append({"week": label, "endpoint": name, **figures(part, 1.0)})
    return Delivery(
        start, until, endpoint, figures(picked, weeks),
        {name: figures(select(picked, start, until, name), weeks) for name in names},
        rows, team_metrics(platform, events, start, until, endpoint) if team else {}, picked.changes,
        picked.incidents,
    )  # fmt: skip


def team_metrics(
    platform: Platform, events: list[Event], start: datetime, until: datetime, endpoint: str | None
) -> dict[str, Any]:
    """The ML team metrics (:mod:`mloop.review.delivery_ml`) over ``[start, until)``."""

    def on(event: Event) -> bool:
        return endpoint in (None, event.resource.removeprefix("endpoint:"))

    recent = [e for e in events if as_utc(e.ts) >= start]
    deployed = {e.resource.removeprefix("endpoint:") for e in events if e.action.startswith("deployments.")}
    return {
        "drift_detection_s": ml.drift_detection([e for e in recent if on(e)]),
        # Fixes may come after an alert of the span; alerts from before it are left out.
        "alert_to_fix_s": ml.alert_to_fix([e for e in events if on(e) and (
            e.action != "monitoring.alert" or as_utc(e.ts) >= start)]),
        "experiments": ml.experiments(recent),
        "feature_reuse": ml.feature_reuse(platform),
        "gated_share": ml.gated_share(platform, events, sorted(e for e in deployed if endpoint in (None, e)),
                                      start, until),
    }  # fmt: skip

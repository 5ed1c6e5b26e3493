"""Maintainability: whether someone hears about trouble and can tell how the live models do. Every live
endpoint has SLOs with budget left, alerts reach a person (a sink beyond the log) and are not left open,
and labels flow back so live performance is measured."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mloop._time import as_utc
from mloop.errors import ConfigError
from mloop.monitoring.alerts import sinks_from_settings
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed

OPEN_FOR = timedelta(days=1)  # a paging alert left open longer than this is being ignored
LOOKBACK = "7d"  # how far back live performance is looked for: a week of labels at the slowest
URGENT = ("page", "critical")


@check(
    "maintainability.slo",
    concern="maintainability",
    severity="medium",
    title="Every live endpoint has at least one SLO",
    fix="State SLOs under monitoring.endpoints.<endpoint>.slos in mloop.yaml, e.g. "
    "[{kind: availability, target: 0.999}, {kind: latency, threshold_ms: 50, target: 0.99}].",
    mlts=("monitor-6",),
    maturity=4,
)
def slos(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    bad, evidence = [], []
    for endpoint in sorted(facts.live):
        specs = facts.settings.monitoring.endpoint(endpoint).slos
        evidence.append(f"{endpoint}: {len(specs)} SLO(s) {', '.join(s.kind for s in specs)}".rstrip())
        if not specs:
            bad.append(endpoint)
    refs = [f"setting:monitoring.endpoints.{e}.slos" for e in bad or sorted(facts.live)]
    if bad:
        return failed(
            f"{len(bad)} of {len(facts.live)} live endpoint(s) have no SLO", evidence, refs, endpoints=bad
        )
    return passed(f"all {len(facts.live)} live endpoint(s) have SLOs", evidence, refs)


@check(
    "maintainability.slo-budget",
    concern="maintainability",
    severity="high",
    title="No SLO has spent its error budget",
    fix="Find what burnt it (`mloop monitor slo ENDPOINT`, `mloop monitor alerts`), fix or roll back "
    "(`mloop rollback ENDPOINT`), and hold releases until the budget recovers.",
    mlts=("monitor-6",),
)
def slo_budget(facts: Facts) -> Outcome:
    measured = [(e, s) for e in sorted(facts.live) for s in facts.slo(e)]
    if not measured:
        return not_applicable("no live endpoint has an SLO")
    spent, evidence = [], []
    for endpoint, slo in measured:
        remaining = slo.get("remaining")
        sli = slo.get("sli")
        evidence.append(f"{endpoint}: {slo['name']} target {slo['target']} over {slo['period']}: SLI "
                        f"{'n/a' if sli is None else f'{sli:.5f}'}, {slo['bad']} bad of {slo['events']}, "
                        f"budget left {'n/a' if remaining is None else f'{remaining:.0%}'}")  # fmt: skip
        if remaining is not None and remaining <= 0:
            spent.append(f"{endpoint}:{slo['name']}")
    refs = sorted({f"endpoint:{e}" for e, _ in measured})
    if spent:
        return failed(f"{len(spent)} of {len(measured)} SLO(s) have spent their error budget", evidence, refs,
                      slos=spent)  # fmt: skip
    return passed(f"all {len(measured)} SLO(s) have budget left", evidence, refs)


@check(
    "maintainability.alert-sinks",
    concern="maintainability",
    severity="low",
    title="Alerts leave the database: a sink other than the log is configured",
    fix="Add a sink under monitoring.sinks in mloop.yaml: {kind: webhook, url: <your receiver>} or "
    "{kind: alertmanager, url: <your Alertmanager>}.",
    mlts=("monitor-1",),
    maturity=4,
)
def alert_sinks(facts: Facts) -> Outcome:
    specs = facts.settings.monitoring.sinks
    refs = ["setting:monitoring.sinks"]
    try:
        sinks_from_settings(specs)  # what the monitor would build: a broken entry delivers nothing
    except ConfigError as exc:
        return failed("monitoring.sinks cannot be built, so no alert is delivered", [str(exc)], refs)
    kinds = [str(s.get("kind")) for s in specs] or ["log (the default)"]
    evidence = [f"monitoring.sinks: {', '.join(kinds)}"]
    if all(k.startswith("log") for k in kinds):
        return failed("alerts go only to the log: nobody is notified", evidence, refs)
    return passed(f"alerts reach {', '.join(k for k in kinds if k != 'log')}", evidence, refs)


@check(
    "maintainability.open-alerts",
    concern="maintainability",
    severity="medium",
    title="No paging alert has been open for more than a day",
    fix="Work the incident (`mloop monitor alerts --open`), fix the cause so `mloop monitor check ENDPOINT` "
    "resolves it, or lower the rule's severity in monitoring.endpoints if it should not page.",
)
def open_alerts(facts: Facts) -> Outcome:
    found = [a for a in facts.platform.monitoring.alerts(open_only=True) if a["severity"] in URGENT]
    old, evidence, refs = [], [], []
    for alert in found:
        age = facts.now - as_utc(datetime.fromisoformat(alert["started_at"]))
        if age < timedelta(0):
            continue  # opened after the instant reviewed
        evidence.append(f"{alert['endpoint']}: {alert['severity']} {alert['name']} open {_hours(age)} "
                        f"({alert['summary']})")  # fmt: skip
        refs.append(f"endpoint:{alert['endpoint']}")
        if age > OPEN_FOR:
            old.append(alert["key"])
    if old:
        return failed(f"{len(old)} paging alert(s) open for more than a day", evidence, sorted(set(refs)),
                      alerts=old)  # fmt: skip
    if evidence:
        return passed(
            f"{len(evidence)} paging alert(s) open, none for more than a day", evidence, sorted(set(refs))
        )
    return passed("no paging alert is open")


@check(
    "maintainability.live-quality",
    concern="maintainability",
    severity="medium",
    title="Every live endpoint receives labels and has its live performance computed",
    fix="Send labels back (POST /v1/feedback with each request_id and its label) and run "
    "`mloop monitor check ENDPOINT` on a schedule: it stores each window's realised performance.",
    mlts=("model-2", "monitor-7"),
    maturity=4,
)
def live_quality(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    monitoring = facts.platform.monitoring
    bad, unstored, evidence = [], [], []
    for endpoint in sorted(facts.live):
        stored = [w for w in monitoring.history(endpoint, "performance", since=LOOKBACK, until=facts.now)
                  if w.get("realised")]  # fmt: skip
        if stored:
            evidence.append(f"{endpoint}: {len(stored)} window(s) of realised performance stored, "
                            f"{sum(int(w.get('labelled') or 0) for w in stored)} labelled rows; newest "
                            f"{_headline(stored[-1])}")  # fmt: skip
            continue
        live = monitoring.performance(endpoint, since=LOOKBACK, until=facts.now)  # computed now, not stored
        labelled = sum(int(w.get("labelled") or 0) for w in live)
        if labelled:
            unstored.append(endpoint)
            evidence.append(f"{endpoint}: {labelled} labelled rows in {LOOKBACK}, but no performance stored")
        else:
            bad.append(endpoint)
            evidence.append(f"{endpoint}: no labelled prediction in the last {LOOKBACK}")
    refs = [f"endpoint:{e}" for e in (bad + unstored) or sorted(facts.live)]
    if bad or unstored:
        return failed(f"{len(bad) + len(unstored)} of {len(facts.live)} endpoint(s) have no live performance",
                      evidence, refs, no_labels=bad, not_computed=unstored)  # fmt: skip
    return passed(f"all {len(facts.live)} endpoint(s) have live performance", evidence, refs)


def _headline(window: dict[str, Any]) -> str:
    realised = window.get("realised") or {}
    for metric in ("roc_auc", "accuracy", "rmse", "macro_f1"):
        if isinstance(realised.get(metric), int | float):
            return f"{metric} {realised[metric]:.3f} ({window.get('start', '')[:16]})"
    return f"window {window.get('start', '')[:16]}"


def _hours(age: timedelta) -> str:
    return f"{age.total_seconds() / 3600:.1f} h"

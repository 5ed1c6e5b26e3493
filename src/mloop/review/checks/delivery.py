"""Delivery: how often a change breaks an endpoint, and how fast the platform recovers (DORA's
change-failure rate and time to restore, from the event log: :mod:`mloop.review.delivery`)."""

from __future__ import annotations

from datetime import timedelta

from mloop.review.delivery import Delivery, measure
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed

SPAN = timedelta(days=90)
MAX_CHANGE_FAILURE = 0.15  # DORA's "high performers" stay at or under 15%
MAX_RESTORE = timedelta(days=1)  # DORA's "high performers" restore within a day


def _delivery(facts: Facts) -> Delivery:
    return facts.memo(
        "delivery:90d", lambda: measure(facts.platform, since=SPAN, until=facts.now, team=False)
    )


@check(
    "tradeoffs.change-failure",
    concern="tradeoffs",
    severity="medium",
    title="At most 15% of the changes of the last 90 days were rolled back or followed by an incident",
    fix="Release through the loop's holdout gate and canary (loop: in mloop.yaml, then `mloop loop run`) "
    "rather than straight `mloop deploy`, so a bad version is stopped at a small share; "
    "`mloop metrics --since 90d` lists the failed changes.",
    maturity=3,
)
def change_failure(facts: Facts) -> Outcome:
    delivery = _delivery(facts)
    figures = delivery.overall["change_failure"]
    if not figures["changes"]:
        return not_applicable("no version reached 100% of an endpoint in the last 90 days")
    bad = [c for c in delivery.changes if c.failed]
    evidence = [
        f"{figures['failed']} of {figures['changes']} changes failed ({figures['rate']:.0%}, limit 15%)"
    ]
    evidence += [f"{c.endpoint}: {c.model} v{c.version} at {c.at:%Y-%m-%d %H:%M} (event:{c.seq}) {c.failed}"
                 for c in bad]  # fmt: skip
    refs = [f"endpoint:{c.endpoint}" for c in bad] + [f"model:{c.model}/{c.version}" for c in bad]
    refs += [f"event:{c.seq}" for c in bad]
    if figures["rate"] > MAX_CHANGE_FAILURE:
        return failed(f"{figures['rate']:.0%} of changes failed in 90 days", evidence, dict.fromkeys(refs),
                      rate=figures["rate"], changes=figures["changes"], failed=figures["failed"])  # fmt: skip
    return passed(f"{figures['rate']:.0%} of changes failed in 90 days", evidence, dict.fromkeys(refs),
                  rate=figures["rate"], changes=figures["changes"], failed=figures["failed"])  # fmt: skip


@check(
    "maintainability.time-to-restore",
    concern="maintainability",
    severity="medium",
    title="Incidents of the last 90 days were restored (resolved or rolled back) in a median of a day or less",
    fix="Route page alerts to someone on call (monitoring.sinks in mloop.yaml) and roll back first "
    "(`mloop rollback ENDPOINT`), then investigate; `mloop metrics --since 90d` shows each incident.",
    maturity=4,
)
def time_to_restore(facts: Facts) -> Outcome:
    delivery = _delivery(facts)
    figures = delivery.overall["restore_s"]
    if not figures["incidents"]:
        return not_applicable("no incident (non-drift alert) in the last 90 days")
    # An incident still open counts as lasting until now: leaving it out would flatter the median.
    spans = [i.restore_s if i.restore_s is not None else (facts.now - i.at).total_seconds()
             for i in delivery.incidents]  # fmt: skip
    spans.sort()
    middle = len(spans) // 2
    median = spans[middle] if len(spans) % 2 else (spans[middle - 1] + spans[middle]) / 2
    evidence = [f"median restore {timedelta(seconds=round(median))} over {len(spans)} incident(s), "
                f"{figures['open']} still open (limit 1 day)"]  # fmt: skip
    evidence += [f"{i.endpoint}: {i.key} at {i.at:%Y-%m-%d %H:%M} (event:{i.seq}): "
                 + (f"{i.restored_by} after {timedelta(seconds=round(i.restore_s))}" if i.restore_s is not None
                    else "still open") for i in delivery.incidents]  # fmt: skip
    refs = [f"endpoint:{i.endpoint}" for i in delivery.incidents] + [
        f"event:{i.seq}" for i in delivery.incidents
    ]
    if median > MAX_RESTORE.total_seconds():
        return failed(f"median time to restore {timedelta(seconds=round(median))}", evidence, dict.fromkeys(refs),
                      median_s=median, incidents=len(spans), open=figures["open"])  # fmt: skip
    return passed(f"median time to restore {timedelta(seconds=round(median))}", evidence, dict.fromkeys(refs),
                  median_s=median, incidents=len(spans), open=figures["open"])  # fmt: skip

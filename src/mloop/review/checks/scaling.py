"""Scaling risks, from what was measured over the last day: replicas behind latency-critical endpoints (the
servers' ``serving.start`` announcements), SQLite metadata under several hosts or a high write rate, and a
local prediction log at a rate one disk should not take."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from mloop.predictions import summary
from mloop.predictions.log import predictions_folder
from mloop.review.checks.security import servers
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed

WINDOW = timedelta(days=1)
REPLICAS_AT_LEAST = 2


def peak_per_second(counted: Iterable[tuple[datetime, int]]) -> tuple[float, datetime | None]:
    """The busiest minute of ``(time, count)`` pairs: its rate per second and its start; zero and None
    when there is nothing."""
    per_minute: Counter[datetime] = Counter()
    for at, count in counted:
        per_minute[at.replace(second=0, microsecond=0)] += count
    if not per_minute:
        return 0.0, None
    minute, most = max(per_minute.items(), key=lambda kv: (kv[1], kv[0]))
    return most / 60.0, minute


@check(
    "risk.single-replica",
    concern="risk",
    severity="medium",
    title="Every latency-critical endpoint is served by at least 2 live servers",
    fix="Run a second `mloop serve` on another host against the same metadata store (PostgreSQL) behind a "
    "load balancer; or set latency_critical: false under review.requirements if a stall is acceptable",
)
def single_replica(facts: Facts) -> Outcome:
    critical = sorted(
        e for e, r in facts.settings.review.requirements.items() if r.latency_critical and e in facts.live
    )
    if not critical:
        return not_applicable("no live endpoint is latency_critical under review.requirements")
    # `mloop ui` serves the dashboard only; every `mloop serve` serves every live endpoint of the project.
    apis = [s for s in servers(facts) if s.kind == "serve"]
    distinct = sorted({s.resource for s in apis})
    hosts = sorted({s.hostname for s in apis})
    evidence = [f"{len(distinct)} server(s) started in the last day on {len(hosts)} host(s): "
                + (", ".join(distinct) or "none")]  # fmt: skip
    evidence += [f"{e}: latency_critical" for e in critical]
    refs = [f"endpoint:{e}" for e in critical] + [
        f"setting:review.requirements.{e}.latency_critical" for e in critical
    ]
    if len(distinct) < REPLICAS_AT_LEAST:
        return failed(f"{len(critical)} latency-critical endpoint(s) on {len(distinct)} server(s)", evidence, refs,
                      servers=len(distinct))  # fmt: skip
    return passed(f"{len(critical)} latency-critical endpoint(s) on {len(distinct)} servers", evidence, refs,
                  servers=len(distinct))  # fmt: skip


@check(
    "risk.sqlite-writers",
    concern="risk",
    severity="medium",
    title="Metadata on SQLite has one writing host and a write rate under review.thresholds.sqlite_writes_per_second",
    fix="metadata_url: postgresql+psycopg://mloop:${PGPASSWORD}@db/mloop in mloop.yaml (SQLite takes one "
    "writer at a time, and only on one host's disk)",
)
def sqlite_writers(facts: Facts) -> Outcome:
    url = facts.settings.metadata_url
    if not url.startswith("sqlite"):
        return not_applicable(f"metadata on {url.split(':', 1)[0]}, which takes many writers")
    limit = facts.settings.review.thresholds.sqlite_writes_per_second
    events = facts.events("*", since=WINDOW)
    rate, minute = peak_per_second((e.ts, 1) for e in events)
    hosts = sorted({s.hostname for s in servers(facts)})
    evidence = [
        f"{len(events)} events in the last day; peak {rate:.3g} writes/s"
        + (f" in the minute from {minute:%Y-%m-%d %H:%M} UTC" if minute else ""),
        f"hosts that started a server in the last day: {', '.join(hosts) or 'none'}",
        f"review.thresholds.sqlite_writes_per_second = {limit:g}",
    ]
    refs = ["setting:metadata_url"]
    problems = [f"{len(hosts)} hosts"] if len(hosts) > 1 else []
    problems += [f"{rate:.3g} writes/s at peak"] if rate > limit else []
    if problems:
        return failed(f"SQLite metadata under {' and '.join(problems)}", evidence,
                      [*refs, "setting:review.thresholds.sqlite_writes_per_second"], peak_per_second=rate)  # fmt: skip
    return passed(
        f"SQLite metadata with one host at {rate:.3g} writes/s at peak", evidence, refs, peak_per_second=rate
    )


@check(
    "risk.local-log-rate",
    concern="risk",
    severity="medium",
    title="A prediction log on a local data_url is written slower than "
    "review.thresholds.local_log_rows_per_second",
    fix="data_url: s3://bucket/mloop in mloop.yaml (each server spools its segments locally and compacts to "
    "object storage), or raise the threshold after measuring the disk",
)
def local_log_rate(facts: Facts) -> Outcome:
    settings = facts.settings
    if "://" in settings.data_url:
        return not_applicable(
            f"the prediction log is on {settings.data_url.split('://', 1)[0]}, not a local disk"
        )
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    limit = settings.review.thresholds.local_log_rows_per_second
    folder = predictions_folder(settings)
    counted: list[tuple[datetime, int]] = []
    for endpoint in sorted(facts.live):
        frame = summary.minute_counts(folder, endpoint, facts.now - WINDOW, facts.now, facts.platform.parquet)
        counted += [
            (m.to_pydatetime(), int(n)) for m, n in zip(frame["minute"], frame["requests"], strict=True)
        ]
    if not counted:
        return not_applicable("nothing logged in the last day")
    rate, minute = peak_per_second(counted)
    evidence = [
        f"{sum(n for _, n in counted)} logged answers in the last day on {settings.data_url}; peak {rate:.3g} rows/s in the "
        f"minute from {minute:%Y-%m-%d %H:%M} UTC",
        f"review.thresholds.local_log_rows_per_second = {limit:g}",
    ]
    if rate > limit:
        return failed(f"the local prediction log peaks at {rate:.3g} rows/s, over {limit:g}", evidence,
                      ["setting:data_url", "setting:review.thresholds.local_log_rows_per_second"],
                      peak_per_second=rate)  # fmt: skip
    return passed(f"the local prediction log peaks at {rate:.3g} rows/s", evidence, ["setting:data_url"],
                  peak_per_second=rate)  # fmt: skip

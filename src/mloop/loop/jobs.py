"""Scheduled jobs the loop controller runs beside its policies: work due on a cron schedule, such as scoring
every field each morning (:class:`mloop.serving.scoring.scheduled.ScoringJob`).

A job is anything with a ``name``, a ``cron`` expression (UTC) and ``run(project, due)``, which does the work
for the scheduled time ``due`` and returns its figures. The controller's tick runs a job when a scheduled
time has passed that no successful run covers yet, so a job runs at most once per due time, however
often the loop ticks, and a tick that finds the machine was down for three days runs it once, for the
latest time. Each run is an event on resource ``job:<name>``: ``loop.job_run`` with the due time and the
job's figures, or ``loop.job_failed`` with the error; a failure leaves the due time uncovered, so the next
tick tries again (a resumable job picks up where it stopped). As with the policies, the event log is the
only record of what ran.

>>> controller = LoopController(project, policies=[], jobs=[job])   # doctest: +SKIP
>>> controller.tick()                                                  # doctest: +SKIP
[{'endpoint': 'job:daily-yield', 'job': 'daily-yield', 'decision': 'job_run', 'reason': '...', ...}]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from mloop.errors import MloopError
from mloop.loop.platform import Platform
from mloop.loop.schedule import Cron, due

log = logging.getLogger("mloop.loop")


class Job(Protocol):
    """Work the loop runs on a schedule."""

    @property
    def name(self) -> str: ...

    @property
    def cron(self) -> str: ...

    def run(self, project: Any, due: datetime) -> dict[str, Any]:
        """Do the work for scheduled time ``due``; the figures to record (rows, version, ...), and optionally
        ``summary``, a line for the timeline."""
        ...


def last_covered(project: Platform, name: str) -> datetime | None:
    """The latest scheduled time a successful run of job ``name`` covered, from its events."""
    latest: datetime | None = None
    for event in project.loop.job_events(name):
        if event["action"] == "loop.job_run":
            when = datetime.fromisoformat(event["due"])
            latest = when if latest is None or when > latest else latest
    return latest


def run_due(project: Platform, jobs: Sequence[Job], now: datetime) -> list[dict[str, Any]]:
    """Run each job whose latest scheduled time is not yet covered; one decision per job."""
    out = []
    for job in jobs:
        cron = Cron.parse(job.cron)
        covered = last_covered(project, job.name)
        slot = cron.previous(now)
        head = {"endpoint": f"job:{job.name}", "job": job.name}
        if slot is None or not due(cron, covered, now):
            nxt = cron.next_after(now)
            out.append({**head, "decision": "job_waiting", "reason": f"next run at {nxt:%Y-%m-%d %H:%M} UTC"})
            continue
        started = time.perf_counter()
        try:
            figures = job.run(project, slot)
        except Exception as exc:  # one job's failure must not stop the loop; it is retried next tick
            seconds = round(time.perf_counter() - started, 3)
            error = str(exc) if isinstance(exc, MloopError) else f"{type(exc).__name__}: {exc}"
            log.warning("loop job %s failed: %s", job.name, error)
            project.loop.record_job(job.name, "job_failed", at=now.isoformat(), due=slot.isoformat(),
                                    reason=error, seconds=seconds)  # fmt: skip
            out.append({**head, "decision": "job_failed", "reason": f"{error} (retried at the next tick)"})
            continue
        seconds = round(time.perf_counter() - started, 3)
        summary = figures.pop("summary", None) or ", ".join(f"{k} {v}" for k, v in figures.items())
        figures = {"seconds": seconds, **figures}
        reason = f"ran for {slot:%Y-%m-%d %H:%M} UTC in {seconds:.2f} s: {summary}"
        project.loop.record_job(job.name, "job_run", at=now.isoformat(), due=slot.isoformat(), cron=job.cron,
                                reason=reason, **figures)  # fmt: skip
        out.append({**head, "decision": "job_run", "reason": reason, **figures})
    return out

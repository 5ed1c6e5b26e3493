"""``project.review()``: run every check on the live project, then score the findings.

>>> review = project.review()                      # doctest: +SKIP
>>> review.exceeds("high")                         # doctest: +SKIP
True
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mloop._service import Context, Service
from mloop._time import utcnow
from mloop.errors import MloopError, PermissionDenied
from mloop.monitoring.alerts import Alert
from mloop.review import cost, scores
from mloop.review.checks import load
from mloop.review.cost import CostReport
from mloop.review.delivery import Delivery, measure
from mloop.review.facts import Facts
from mloop.review.model import CONCERNS, SEVERITIES, Finding, Outcome
from mloop.review.platform import Reviewed

if TYPE_CHECKING:
    from mloop.review.probe import ProbeResult

log = logging.getLogger("mloop.review")


@dataclass(frozen=True)
class Review:
    """The findings of every check on one project at one time, and the scores they give."""

    project: str
    at: datetime
    findings: tuple[Finding, ...]
    mlts: scores.MLTestScore
    maturity: scores.Maturity

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def exceeds(self, severity: str) -> bool:
        """Whether any finding weighs ``severity`` or more (what ``--fail-on`` tests)."""
        if severity not in SEVERITIES:
            raise MloopError(f"Unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}.")
        floor = SEVERITIES.index(severity)
        return any(f.weight is not None and SEVERITIES.index(f.weight) >= floor for f in self.findings)

    def by_concern(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {c: [] for c in CONCERNS}
        for finding in self.findings:
            grouped[finding.check.concern].append(finding)
        return {c: found for c, found in grouped.items() if found}

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "at": self.at.isoformat(),
            "counts": {s: self.count(s) for s in ("pass", "warn", "fail", "n/a", "error")},
            "ml_test_score": self.mlts.to_dict(),
            "maturity": self.maturity.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }


class Reviews(Service):
    """The architecture review of a project, as its actor may see it (``review.read``)."""

    def __init__(self, ctx: Context, platform: Reviewed) -> None:
        super().__init__(ctx)
        self._platform = platform

    def run(self, *, only: Iterable[str] = (), now: datetime | None = None) -> Review:
        """Run every check (or those whose id starts with one of ``only``: ``security``,
        ``lifecycle.rollback-target``) and score the findings."""
        self._authorize("review.read", "project")
        checks = load()
        wanted = tuple(only)
        selected = [c for c in checks.values() if not wanted or any(c.id.startswith(w) for w in wanted)]
        if wanted and not selected:
            raise MloopError(
                f"No check matches {', '.join(wanted)}; `mloop review --list` lists the checks and their ids."
            )
        facts = Facts(self._platform, now=now)
        order = list(CONCERNS)
        selected.sort(key=lambda c: (order.index(c.concern), c.id))
        findings = tuple(Finding(c, _outcome(c.id, c.run, facts)) for c in selected)
        return Review(
            self._ctx.project, facts.now, findings,
            scores.ml_test_score(findings, self._ctx.settings.review.evidence), scores.maturity(findings),
        )  # fmt: skip

    def probe(self, endpoint: str, **how: Any) -> ProbeResult:
        """A short, bounded load test of ``endpoint`` on a server you name (loopback unless
        ``allow_remote=True``), recorded as a ``review.probe`` event; see :meth:`Probes.run`."""
        from mloop.review.probe import Probes  # here: its HTTP client is for probes only, not every command

        return Probes(self._ctx, self._platform).run(endpoint, **how)

    def probe_rows(self, endpoint: str) -> list[dict[str, Any]]:
        """The rows a probe (or ``mloop chaos run``) of ``endpoint`` sends: the inputs of its recent answered
        requests in the prediction log; see :meth:`Probes.bodies`."""
        from mloop.review.probe import Probes

        return Probes(self._ctx, self._platform).bodies(endpoint)

    def cost(self, *, since: str = "7d", alert: bool = False, now: datetime | None = None) -> CostReport:
        """Cost and energy per training run and per 1,000 predictions over ``since`` (``7d``, ``24h``), and
        of what the project stores (:mod:`mloop.review.cost`). ``alert``: open an incident
        (``<endpoint>/cost/budget``, one per endpoint, sent to monitoring.sinks and logged as
        ``monitoring.alert``, as monitoring does) for each endpoint over its ``budget_per_1k``, and resolve
        the open one of an endpoint back under it; that needs ``monitoring.write`` on the endpoint.

        >>> project.reviews.cost(since="7d").endpoints["fraud"].per_1k   # doctest: +SKIP
        0.0042
        """
        self._authorize("review.read", "project")
        now = now or utcnow()
        found = cost.report(self._platform, since=cost.window(since), now=now)
        if not alert:
            return found
        changed: list[Alert] = []
        for endpoint, spent in found.endpoints.items():
            if spent.budget_per_1k is None:
                continue
            firing = cost.budget_alert(spent, found.currency, now) if spent.over_budget else None
            change = self._platform.monitoring.settle(
                endpoint, f"{endpoint}/cost/budget", firing, now=now,
                reason="" if spent.per_1k is not None else "no request in the window",
            )  # fmt: skip
            if change is not None:
                changed.append(change)
        return dataclasses.replace(found, alerts=tuple(a.to_dict() for a in changed))

    def metrics(
        self,
        *,
        since: str | timedelta | datetime = "90d",
        until: datetime | None = None,
        endpoint: str | None = None,
        now: datetime | None = None,
    ) -> Delivery:
        """DORA's four and the ML team metrics from the event log (:mod:`mloop.review.delivery`)."""
        self._authorize("review.read", "project")
        return measure(self._platform, since=since, until=until, endpoint=endpoint, now=now)  # fmt: skip


def _outcome(check: str, run: Any, facts: Facts) -> Outcome:
    """A check that cannot run is a finding too (status ``error``), never the end of the review."""
    try:
        outcome: Outcome = run(facts)
    except PermissionDenied as exc:
        return Outcome("error", f"not visible to this user: {exc}")
    except Exception as exc:
        log.exception("review check %s failed", check)
        return Outcome("error", f"the check could not run: {type(exc).__name__}: {exc}")
    return outcome

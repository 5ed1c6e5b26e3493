"""What a review is made of: checks (an id, the concern it belongs to, a severity, the fix) and the
finding each one makes on a live project, with the evidence it looked at.

A check is a function of :class:`~mloop.review.facts.Facts` registered with :func:`check`; it returns an
:class:`Outcome` made with :func:`passed`, :func:`failed`, :func:`warned` or :func:`not_applicable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mloop.review.facts import Facts

#: The nine concerns of an architecture review, in the order a report shows them.
CONCERNS: dict[str, str] = {
    "risk": "Risks: scalability, latency and throughput, fault tolerance",
    "requirements": "Business and technical requirements",
    "resources": "Resource use: cost, energy, storage",
    "security": "Security and compliance",
    "collaboration": "Collaboration",
    "lifecycle": "Model lifecycle",
    "extensibility": "Extensibility",
    "maintainability": "Maintainability",
    "tradeoffs": "Trade-offs",
}

SEVERITIES = ("low", "medium", "high")  # what a failed check costs; a warning counts one level lower
STATUSES = ("pass", "warn", "fail", "n/a", "error")


@dataclass(frozen=True)
class Outcome:
    """What a check found: its status, one line saying what, the evidence (the numbers it looked at, one
    line each) and references to the objects (``endpoint:fraud``, ``model:fraud/2``, ``run:<id>``,
    ``event:42``, ``setting:serving.host``, ``dataset:txns``)."""

    status: str
    summary: str
    evidence: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)
    fix: str | None = None  # a fix for this finding, when it is more precise than the check's own


def passed(summary: str, evidence: Iterable[str] = (), refs: Iterable[str] = (), **numbers: Any) -> Outcome:
    return Outcome("pass", summary, tuple(evidence), tuple(refs), numbers)


def failed(
    summary: str,
    evidence: Iterable[str] = (),
    refs: Iterable[str] = (),
    *,
    fix: str | None = None,
    **numbers: Any,
) -> Outcome:
    return Outcome("fail", summary, tuple(evidence), tuple(refs), numbers, fix)


def warned(
    summary: str,
    evidence: Iterable[str] = (),
    refs: Iterable[str] = (),
    *,
    fix: str | None = None,
    **numbers: Any,
) -> Outcome:
    return Outcome("warn", summary, tuple(evidence), tuple(refs), numbers, fix)


def not_applicable(summary: str, evidence: Iterable[str] = (), **numbers: Any) -> Outcome:
    return Outcome("n/a", summary, tuple(evidence), (), numbers)


@dataclass(frozen=True)
class Check:
    """One question the review asks of the platform."""

    id: str  # concern.short-name, e.g. "lifecycle.rollback-target"
    concern: str
    severity: str
    title: str  # the property that should hold, e.g. "Every endpoint has a version to roll back to"
    fix: str  # a command or setting that makes it hold
    run: Callable[[Facts], Outcome]
    mlts: tuple[str, ...] = ()  # ML Test Score tests it automates (data-1 … monitor-7)
    maturity: int | None = None  # the MLOps maturity level (0–4) whose conditions include it

    def __post_init__(self) -> None:
        if self.concern not in CONCERNS:
            raise ValueError(
                f"check {self.id}: unknown concern {self.concern!r}; one of {', '.join(CONCERNS)}"
            )
        if self.severity not in SEVERITIES:
            raise ValueError(f"check {self.id}: unknown severity {self.severity!r}; one of {SEVERITIES}")


@dataclass(frozen=True)
class Finding:
    """A check's outcome on one project, as the report shows it."""

    check: Check
    outcome: Outcome

    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def fix(self) -> str:
        return self.outcome.fix or self.check.fix

    @property
    def weight(self) -> str | None:
        """The severity this finding carries: the check's for a failure, one level lower for a warning,
        none when it passed or does not apply."""
        if self.status in ("fail", "error"):
            return self.check.severity
        if self.status == "warn":
            return SEVERITIES[max(SEVERITIES.index(self.check.severity) - 1, 0)]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check.id,
            "concern": self.check.concern,
            "severity": self.check.severity,
            "title": self.check.title,
            "status": self.status,
            "weight": self.weight,
            "summary": self.outcome.summary,
            "evidence": list(self.outcome.evidence),
            "refs": list(self.outcome.refs),
            "numbers": dict(self.outcome.numbers),
            "fix": self.fix,
            "mlts": list(self.check.mlts),
            "maturity": self.check.maturity,
        }


CHECKS: dict[str, Check] = {}


def check(
    id: str,
    *,
    concern: str,
    severity: str,
    title: str,
    fix: str,
    mlts: Iterable[str] = (),
    maturity: int | None = None,
) -> Callable[[Callable[[Facts], Outcome]], Callable[[Facts], Outcome]]:
    """Register the decorated function as the check ``id``."""

    def register(run: Callable[[Facts], Outcome]) -> Callable[[Facts], Outcome]:
        if id in CHECKS:
            raise ValueError(f"check {id} is registered twice")
        CHECKS[id] = Check(id, concern, severity, title, fix, run, tuple(mlts), maturity)
        return run

    return register

"""Scores people already use, computed from the review's findings.

- **The ML Test Score** (Breck et al., *The ML Test Score: A Rubric for ML Production Readiness and
  Technical Debt Reduction*, IEEE Big Data 2017): 28 tests in four sections of seven. A test scores 1 when
  it is automated (here: every check that automates it passed), 0.5 when it is done by hand with evidence
  recorded (``review.evidence`` in mloop.yaml), else 0. A section's score is the sum of its tests, and the
  final score is the *minimum* of the four sections: the weakest area bounds readiness.
- **The MLOps maturity level** of Microsoft's model (levels 0–4, *Machine Learning operations maturity
  model*, Azure Architecture Center): the highest level whose conditions, and those of every level below,
  all hold. A condition is a check tagged with that level; it holds when it passed or does not apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mloop.review.model import Finding

SECTIONS = ("data", "model", "infra", "monitor")
SECTION_NAMES = {"data": "Data", "model": "Model", "infra": "Infrastructure", "monitor": "Monitoring"}

#: The 28 tests, by id (section-number), in the paper's words (abridged).
TESTS: dict[str, str] = {
    "data-1": "Feature expectations are captured in a schema",
    "data-2": "All features are beneficial",
    "data-3": "No feature's cost is too much",
    "data-4": "Features adhere to meta-level requirements",
    "data-5": "The data pipeline has appropriate privacy controls",
    "data-6": "New features can be added quickly",
    "data-7": "All input feature code is tested",
    "model-1": "Model specs are reviewed and submitted",
    "model-2": "Offline and online metrics correlate",
    "model-3": "All hyperparameters have been tuned",
    "model-4": "The impact of model staleness is known",
    "model-5": "A simpler model is not better",
    "model-6": "Model quality is sufficient on important data slices",
    "model-7": "The model is tested for considerations of inclusion",
    "infra-1": "Training is reproducible",
    "infra-2": "Model specs are unit tested",
    "infra-3": "The ML pipeline is integration tested",
    "infra-4": "Model quality is validated before serving",
    "infra-5": "The model is debuggable",
    "infra-6": "Models are canaried before serving",
    "infra-7": "Serving models can be rolled back",
    "monitor-1": "Dependency changes result in notification",
    "monitor-2": "Data invariants hold for inputs",
    "monitor-3": "Training and serving are not skewed",
    "monitor-4": "Models are not too stale",
    "monitor-5": "Models are numerically stable",
    "monitor-6": "Computing performance has not regressed",
    "monitor-7": "Prediction quality has not regressed",
}

#: Microsoft's MLOps maturity levels.
LEVELS: dict[int, str] = {
    0: "No MLOps: manual builds and deployments, no tracking",
    1: "DevOps but no MLOps: releases automated, models not managed",
    2: "Automated training: tracked, reproducible training; models in a registry",
    3: "Automated model deployment: gated, canaried, traceable releases with a way back",
    4: "Full MLOps automated operations: monitored in production, retrained and redeployed by the platform",
}

_HOLDS = ("pass", "n/a")


@dataclass(frozen=True)
class TestScore:
    id: str
    title: str
    score: float  # 1 automated, 0.5 manual with evidence, 0
    how: str  # "automated", "manual", "missing"
    checks: tuple[str, ...]  # the checks that automate it
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": self.score, "how": self.how,
                "checks": list(self.checks), "evidence": self.evidence}  # fmt: skip


@dataclass(frozen=True)
class MLTestScore:
    tests: tuple[TestScore, ...]

    @property
    def sections(self) -> dict[str, float]:
        return {s: sum(t.score for t in self.tests if t.id.startswith(s + "-")) for s in SECTIONS}

    @property
    def final(self) -> float:
        return min(self.sections.values())

    @property
    def raw(self) -> float:
        return sum(t.score for t in self.tests)

    def line(self) -> str:
        parts = ", ".join(f"{SECTION_NAMES[s]} {v:g}" for s, v in self.sections.items())
        return f"{self.final:g} / 7 (minimum of {parts}) · raw {self.raw:g} / 28"

    def to_dict(self) -> dict[str, Any]:
        return {"final": self.final, "raw": self.raw, "sections": self.sections, "line": self.line(),
                "tests": [t.to_dict() for t in self.tests]}  # fmt: skip


@dataclass(frozen=True)
class Maturity:
    level: int
    next_failing: tuple[str, ...]  # check ids whose failure keeps the next level out of reach
    conditions: Mapping[int, tuple[str, ...]]  # level -> the checks that are its conditions

    @property
    def name(self) -> str:
        return LEVELS[self.level]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "name": self.name, "next_failing": list(self.next_failing),
                "conditions": {str(k): list(v) for k, v in self.conditions.items()}}  # fmt: skip


def ml_test_score(findings: Iterable[Finding], evidence: Mapping[str, str]) -> MLTestScore:
    unknown = sorted(set(evidence) - set(TESTS))
    if unknown:
        from mloop.errors import ConfigError

        raise ConfigError(
            f"review.evidence in mloop.yaml names unknown ML Test Score tests {unknown}; the ids are data-1 "
            "… data-7, model-1 … model-7, infra-1 … infra-7, monitor-1 … monitor-7 (docs/review.md)."
        )
    by_test: dict[str, list[Finding]] = {t: [] for t in TESTS}
    for finding in findings:
        for test in finding.check.mlts:
            by_test[test].append(finding)
    scored = []
    for test, title in TESTS.items():
        mapped = by_test[test]
        ids = tuple(f.check.id for f in mapped)
        applicable = [f for f in mapped if f.status != "n/a"]
        if applicable and all(f.status == "pass" for f in applicable):
            scored.append(TestScore(test, title, 1.0, "automated", ids))
        elif evidence.get(test):
            scored.append(TestScore(test, title, 0.5, "manual", ids, evidence[test]))
        else:
            scored.append(TestScore(test, title, 0.0, "missing", ids))
    return MLTestScore(tuple(scored))


def maturity(findings: Iterable[Finding]) -> Maturity:
    conditions: dict[int, list[Finding]] = {level: [] for level in LEVELS if level > 0}
    for finding in findings:
        if finding.check.maturity:
            conditions[finding.check.maturity].append(finding)
    level = 0
    for candidate in sorted(conditions):
        met = conditions[candidate]
        if met and all(f.status in _HOLDS for f in met):  # a level nothing checks is not reached
            level = candidate
        else:
            break
    nxt = conditions.get(level + 1, [])
    return Maturity(
        level,
        tuple(f.check.id for f in nxt if f.status not in _HOLDS),
        {k: tuple(f.check.id for f in v) for k, v in conditions.items()},
    )

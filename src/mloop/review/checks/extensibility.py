"""Extensibility: models that any flavour can serve behind one typed contract, and experimentation that goes on."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed, warned

EXPERIMENT_WINDOW = timedelta(days=90)


@check(
    "extensibility.signatures",
    concern="extensibility",
    severity="medium",
    title="Every serving version is a registered version of a known flavour with an input signature, so any "
    "framework is served, validated and monitored the same way",
    fix="Register with an input example (run.register(model, name, input_example=X_train.head()) or a "
    "TrainingPipeline, which records it), then deploy the new version.",
    maturity=1,
)
def signatures(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    missing, evidence = [], []
    for endpoint in sorted(facts.live):
        for version in facts.serving(endpoint):
            label = f"{version.name} v{version.version}"
            if version.signature is None:
                missing.append(f"model:{version.name}/{version.version}")
                evidence.append(f"{endpoint}: {label} ({version.flavour}) has no signature: inputs unchecked")
            else:
                evidence.append(
                    f"{endpoint}: {label} ({version.flavour}), {len(version.signature.names)} typed inputs"
                )
    if missing:
        return failed(f"{len(missing)} serving version(s) without a signature", evidence, missing)
    return passed("every serving version has a flavour and a signature", evidence,
                  [f"endpoint:{e}" for e in sorted(facts.live)])  # fmt: skip


@check(
    "extensibility.experiments",
    concern="extensibility",
    severity="low",
    title="Experimentation goes on and is tracked: runs were recorded in the last 90 days",
    fix="Track experiments as runs (with project.run(...) or a TrainingPipeline); `mloop runs list` shows "
    "them, `mloop runs compare` puts them side by side.",
    maturity=2,
)
def experiments(facts: Facts) -> Outcome:
    recent = facts.events("runs.start", since=EXPERIMENT_WINDOW)
    per = Counter(e.resource.removeprefix("experiment:") for e in recent)
    evidence = [f"experiment {name}: {count} run(s) in 90 days" for name, count in per.most_common()]
    refs = [f"experiment:{name}" for name in per]
    if not recent:
        ever = facts.events("runs.start")
        if not ever:
            return failed("no run was ever tracked", ["runs recorded: 0"])
        last = ever[-1]
        return warned(f"no run in 90 days (the last on {last.ts:%Y-%m-%d})", [f"runs recorded: {len(ever)}"],
                      [f"event:{last.seq}"])  # fmt: skip
    weeks = EXPERIMENT_WINDOW.days / 7
    return passed(f"{len(recent)} run(s) in {len(per)} experiment(s) over 90 days ({len(recent) / weeks:.1f} a week)",
                  evidence, refs, runs=len(recent))  # fmt: skip

"""Model lifecycle: what each live endpoint can fall back on, and whether it is watched."""

from __future__ import annotations

from mloop.errors import NotFound
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed


@check(
    "lifecycle.rollback-target",
    concern="lifecycle",
    severity="high",
    title="Every live endpoint has an earlier revision, with its model versions still registered, to roll back to",
    fix="Keep the previous version registered and deploy new versions as new revisions (`mloop deploy`); "
    "`mloop rollback ENDPOINT` then restores the revision before.",
    mlts=("infra-7",),
    maturity=3,
)
def rollback_target(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    missing, evidence = [], []
    for endpoint, live in sorted(facts.live.items()):
        if live.previous is None:
            missing.append(endpoint)
            evidence.append(f"{endpoint}: revision {live.revision} is its first")
            continue
        target = next(d for d in facts.history(endpoint) if d.revision == live.previous)
        gone = []
        for version in target.versions:
            try:
                facts.version(target.model, version)
            except NotFound:
                gone.append(version)
        if gone:
            missing.append(endpoint)
            evidence.append(f"{endpoint}: revision {target.revision} needs {target.model} v{gone}, deleted")
        else:
            evidence.append(
                f"{endpoint}: back to revision {target.revision} ({target.model} {list(target.versions)})"
            )
    refs = [f"endpoint:{e}" for e in missing or facts.live]
    if missing:
        return failed(f"{len(missing)} of {len(facts.live)} endpoint(s) cannot roll back", evidence, refs,
                      endpoints=missing)  # fmt: skip
    return passed(f"all {len(facts.live)} endpoint(s) can roll back", evidence, refs)


@check(
    "lifecycle.monitored",
    concern="lifecycle",
    severity="high",
    title="Every live endpoint is monitored: a monitoring entry in mloop.yaml and a reference profile for "
    "each version it serves",
    fix="Add the endpoint under monitoring.endpoints in mloop.yaml; register versions through a "
    "TrainingPipeline (it profiles the training inputs), or log one with "
    "mloop.monitoring.reference.log_reference(run, X_train) and register with its lineage.",
    mlts=("monitor-2",),
    maturity=4,
)
def monitored(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    configured = facts.settings.monitoring.endpoints
    problems, evidence = [], []
    for endpoint in sorted(facts.live):
        if endpoint not in configured:
            problems.append(endpoint)
            evidence.append(f"{endpoint}: not under monitoring.endpoints")
        for version in facts.serving(endpoint):
            if not version.lineage.get("reference_profile"):
                problems.append(endpoint)
                evidence.append(f"{endpoint}: {version.name} v{version.version} has no reference profile")
    if problems:
        return failed(f"{len(set(problems))} endpoint(s) not fully monitored", evidence,
                      [f"endpoint:{e}" for e in sorted(set(problems))])  # fmt: skip
    return passed(f"all {len(facts.live)} endpoint(s) monitored with reference profiles",
                  [f"{e}: configured, every serving version profiled" for e in sorted(facts.live)])  # fmt: skip

"""Model lifecycle, the releases: who approved each production change, how old the serving versions'
training data is, whether the loop retrains, and whether each new version was canaried first.

They look back :data:`~mloop.review.checks.lifecycle.WINDOW` (90 days) through the audit log, the
promotions table and the deployment history."""

from __future__ import annotations

from datetime import datetime

from mloop._time import as_utc
from mloop.deployments import Deployment
from mloop.review.checks.lifecycle import WINDOW, per_version, serving, version_label
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed, warned


@check(
    "lifecycle.approval",
    concern="lifecycle",
    severity="high",
    title="With require_approval, every production promotion and champion change was approved by a second "
    "person",
    fix="Request production with `mloop models promote MODEL VERSION --to production` and have another user "
    "holding models.approve run `mloop models approve MODEL VERSION`; move the champion alias only to an "
    "approved version.",
)
def approval(facts: Facts) -> Outcome:
    if not facts.settings.require_approval:
        return not_applicable("require_approval is off in mloop.yaml: promotions need no second person")
    since = facts.now - WINDOW
    done = [p for p in facts.platform.models.promotions(status="done") if p.stage == "production"]
    approved: set[tuple[str, int]] = {
        (p.name, p.version) for p in done if p.decided_by and p.decided_by != p.requested_by
    }
    for event in facts.events("loop.approve"):  # a person let the loop's canary take its final step
        endpoint = facts.live.get(event.resource.removeprefix("endpoint:"))
        if endpoint is not None and isinstance(event.payload.get("challenger"), int):
            approved.add((endpoint.model, event.payload["challenger"]))
    bad, evidence, refs = [], [], []
    for p in done:
        if as_utc(p.requested_at) < since:
            continue
        ok = (p.name, p.version) in approved
        evidence.append(f"promotion {p.id}: {p.name} v{p.version} to production requested by {p.requested_by}, "
                        f"{'approved by ' + str(p.decided_by) if ok else 'done without a second person'}")  # fmt: skip
        refs.append(f"model:{p.name}/{p.version}")
        if not ok:
            bad.append(f"promotion {p.id}")
    for event in facts.events("models.alias", since=WINDOW):
        version = event.payload.get("version")
        if event.payload.get("alias") != "champion" or version is None:
            continue
        name = event.resource.removeprefix("model:")
        ok = (name, version) in approved
        evidence.append(f"event {event.seq}: {event.actor} moved {name}@champion to v{version}, "
                        f"{'an approved version' if ok else 'never approved for production'}")  # fmt: skip
        refs.append(f"event:{event.seq}")
        if not ok:
            bad.append(f"event {event.seq}")
    if not evidence:
        return not_applicable("no production promotion or champion change in the last 90 days")
    if bad:
        return failed(f"{len(bad)} production change(s) without a second person's approval", evidence, refs,
                      changes=bad)  # fmt: skip
    return passed(f"all {len(evidence)} production change(s) were approved", evidence, refs)


@check(
    "lifecycle.staleness",
    concern="lifecycle",
    severity="medium",
    title="The training data of every serving version is recent (review.thresholds.stale_model_days)",
    fix="Retrain on recent data (pipeline.run(project), or a schedule trigger under loop.policies) and deploy "
    "the new version; or raise review.thresholds.stale_model_days if the domain changes slowly.",
    mlts=("model-4", "monitor-4"),
)
def staleness(facts: Facts) -> Outcome:
    found = serving(facts)
    if not found:
        return not_applicable("no endpoint is deployed")
    limit = facts.settings.review.thresholds.stale_model_days
    bad, evidence = [], []
    for endpoint, version in found:
        span = version.lineage.get("data_time_range") or []
        if len(span) != 2:
            bad.append(version_label(endpoint, version))
            evidence.append(
                f"{version_label(endpoint, version)}: the time range of its training data is not recorded"
            )
            continue
        age = (facts.now - as_utc(datetime.fromisoformat(span[1]))).total_seconds() / 86_400
        evidence.append(f"{version_label(endpoint, version)}: training data ends {span[1][:10]}, {age:.0f} day(s) "
                        f"ago (limit {limit})")  # fmt: skip
        if age > limit:
            bad.append(version_label(endpoint, version))
    return per_version(
        found,
        bad,
        evidence,
        f"were trained on data older than {limit} days",
        f"were trained on data of the last {limit} days",
    )


@check(
    "lifecycle.retraining",
    concern="lifecycle",
    severity="medium",
    title="Every live endpoint has a loop policy that retrained it at least once in the last 90 days",
    fix="Declare the endpoint under loop.policies in mloop.yaml (endpoint, pipeline, triggers) and run "
    "`mloop loop run` (or `mloop loop tick` from a scheduler).",
    maturity=4,
)
def retraining(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    policies = {str(p.get("endpoint")) for p in facts.settings.loop.policies}
    triggers, gates = facts.events("loop.trigger", since=WINDOW), facts.events("loop.gate", since=WINDOW)
    bad, evidence, refs = [], [], []
    for endpoint in sorted(facts.live):
        resource = f"endpoint:{endpoint}"
        fired = [t for t in triggers if t.resource == resource]
        trained = next((g for t in fired for g in gates if g.resource == resource and g.seq > t.seq
                        and g.payload.get("challenger") is not None), None)  # fmt: skip
        if trained is not None:  # the events say it happened, whether the policy is in mloop.yaml or in code
            evidence.append(f"{endpoint}: {len(fired)} trigger(s); v{trained.payload['challenger']} retrained "
                            f"(event {trained.seq}, {trained.ts:%Y-%m-%d})")  # fmt: skip
            refs.append(f"event:{trained.seq}")
        elif endpoint not in policies:
            bad.append(endpoint)
            evidence.append(f"{endpoint}: no entry under loop.policies, no retraining in the last 90 days")
            refs.append("setting:loop.policies")
        else:
            bad.append(endpoint)
            evidence.append(f"{endpoint}: {len(fired)} trigger(s), no retrained version in the last 90 days")
            refs.append(resource)
    if bad:
        return failed(f"{len(bad)} of {len(facts.live)} endpoint(s) were not retrained by the loop", evidence,
                      refs, endpoints=bad)  # fmt: skip
    return passed(f"the loop retrained all {len(facts.live)} endpoint(s)", evidence, refs)


def _full(revision: Deployment) -> int | None:
    """The version taking all of a revision's traffic, if one does."""
    live = [r for r in revision.routes if r.weight > 0]
    return live[0].version if len(live) == 1 and live[0].weight >= 1.0 else None


@check(
    "lifecycle.canary",
    concern="lifecycle",
    severity="medium",
    title="Each new serving version took a share of traffic (canary, A/B) or a shadow before taking all of it",
    fix="Deploy in steps: `mloop deploy ENDPOINT MODEL -v N --canary 0.1` (or --shadow N), then fully; the "
    "loop's rollout (loop.policies[].rollout.steps) does this by itself.",
    mlts=("infra-6",),
    maturity=3,
)
def canary(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    since, skipped, latest_skipped, evidence, changes = facts.now - WINDOW, [], [], [], 0
    for endpoint in sorted(facts.live):
        history = facts.history(endpoint)
        by_number = {d.revision: d for d in history}
        last_change: tuple[int, bool] | None = None
        serving: int | None = None  # the version last at 100%: a canary on top of it does not replace it
        for revision in history:
            before = by_number.get(revision.previous) if revision.previous is not None else None
            version = _full(revision)
            if version is None or version == serving:  # a split, or back to the serving version (rollback)
                continue
            took_over, serving = serving is not None or before is not None, version
            if (revision.kind != "deploy" or before is None or not took_over
                    or (revision.created_at is not None and as_utc(revision.created_at) < since)):  # fmt: skip
                continue
            split = (
                any(r.version == version and 0 < r.weight < 1 for r in before.routes)
                or version in before.shadow
            )
            changes += 1
            last_change = (revision.revision, split)
            how = "after a split or shadow in revision" if split else "straight from revision"
            evidence.append(
                f"{endpoint}: revision {revision.revision} gave v{version} 100% {how} {before.revision}"
            )
            if not split:
                skipped.append(f"{endpoint}#{revision.revision}")
        if last_change is not None and not last_change[1]:
            latest_skipped.append(endpoint)
    if not changes:
        return not_applicable("no version took over an endpoint in the last 90 days")
    refs = [f"endpoint:{e}" for e in sorted(facts.live)]
    if latest_skipped:
        return failed(f"the serving version of {len(latest_skipped)} endpoint(s) went live without a canary",
                      evidence, refs, skipped=skipped)  # fmt: skip
    if skipped:
        return warned(f"{len(skipped)} earlier change(s) of {changes} skipped the canary; the latest did not",
                      evidence, refs, skipped=skipped)  # fmt: skip
    return passed(
        f"all {changes} change(s) of serving version went through a canary or shadow", evidence, refs
    )

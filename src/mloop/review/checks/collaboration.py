"""Collaboration and trade-offs: decisions recorded, owned and reviewed on time, and a metadata store that
several people can share."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from mloop.access.users import User
from mloop.review.decisions import Decision
from mloop.review.facts import Facts
from mloop.review.model import Outcome, check, failed, not_applicable, passed
from mloop.store.schema import EventRow

#: How far back a user's changes make it an active user of the store.
ACTIVE_WINDOW = timedelta(days=30)


def _decisions(facts: Facts) -> list[Decision]:
    platform = facts.platform
    return facts.memo("decisions", lambda: platform.decisions.list())


def _users(facts: Facts) -> dict[str, User]:
    return facts.memo("users", lambda: {u.name: u for u in facts.platform.users.list()})


def _refs(decision: Decision) -> list[str]:
    return [f"decision:{decision.id}", *decision.links]


@check(
    "collaboration.decisions",
    concern="collaboration",
    severity="low",
    title="A project that serves models has its architecture decisions recorded, with options, choice and "
    "trade-off",
    fix="mloop decisions add --title ... --context ... --option A --option B --choice A --tradeoff ... "
    "--owner USER --review-by YYYY-MM-DD --link endpoint:NAME",
)
def decisions_recorded(facts: Facts) -> Outcome:
    if not facts.live:
        return not_applicable("no endpoint is deployed")
    found = _decisions(facts)
    endpoints = sorted(facts.live)
    if not found:
        return failed(f"{len(endpoints)} live endpoint(s) and no recorded decision",
                      ["decisions recorded: 0", f"live endpoints: {', '.join(endpoints)}"],
                      [f"endpoint:{e}" for e in endpoints], decisions=0)  # fmt: skip
    accepted = [d for d in found if d.accepted]
    linked = sorted({link.removeprefix("endpoint:") for d in accepted for link in d.links} & set(endpoints))
    evidence = [
        f"decisions recorded: {len(found)} ({len(accepted)} accepted)",
        *(f"{d.id} {d.title!r}: {d.state}, owner {d.owner}" for d in found),
        f"live endpoints linked by an accepted decision: {', '.join(linked) or 'none'}",
    ]
    return passed(f"{len(found)} decision(s) recorded", evidence, [f"decision:{d.id}" for d in found],
                  decisions=len(found), accepted=len(accepted))  # fmt: skip


@check(
    "tradeoffs.review-due",
    concern="tradeoffs",
    severity="medium",
    title="Every accepted trade-off decision is reviewed by its review date",
    fix="Review the decision: record what replaces it (`mloop decisions add ...`) and "
    "`mloop decisions supersede ADR-n --by ADR-m`, or re-record it with a new review date and supersede the "
    "old one.",
)
def review_due(facts: Facts) -> Outcome:
    accepted = [d for d in _decisions(facts) if d.accepted]
    if not accepted:
        return not_applicable("no accepted decision is recorded")
    today = facts.now.date()
    due = [d for d in accepted if d.due(today)]
    if due:
        evidence = [f"{d.id} {d.title!r}: review by {d.review_by.isoformat()}, {(today - d.review_by).days} "
                    f"day(s) overdue (owner {d.owner})" for d in due]  # fmt: skip
        first = due[0]
        return failed(
            f"{len(due)} of {len(accepted)} accepted decision(s) past their review date", evidence,
            [r for d in due for r in _refs(d)], due=[d.id for d in due],
            fix=f"Review {first.id}: record its successor with `mloop decisions add ...`, then "
            f"`mloop decisions supersede {first.id} --by ADR-<new>`.",
        )  # fmt: skip
    soonest = min(accepted, key=lambda d: d.review_by)
    return passed(
        f"all {len(accepted)} accepted decision(s) within their review date",
        [f"{d.id}: review by {d.review_by.isoformat()}" for d in accepted],
        [f"decision:{d.id}" for d in accepted], next_review=soonest.review_by.isoformat(),
    )  # fmt: skip


@check(
    "collaboration.owners",
    concern="collaboration",
    severity="low",
    title="Every accepted decision is owned by an active user of the project",
    fix="Record the decision again with an active owner (`mloop decisions add ... --owner USER`) and "
    "supersede the old one, or `mloop users enable OWNER`.",
)
def owners(facts: Facts) -> Outcome:
    accepted = [d for d in _decisions(facts) if d.accepted]
    if not accepted:
        return not_applicable("no accepted decision is recorded")
    users = _users(facts)
    orphaned, evidence = [], []
    for d in accepted:
        user = users.get(d.owner)
        state = "unknown" if user is None else "disabled" if user.disabled else "active"
        evidence.append(f"{d.id}: owner {d.owner} is {state}")
        if state != "active":
            orphaned.append(d)
    if orphaned:
        return failed(f"{len(orphaned)} of {len(accepted)} accepted decision(s) have no active owner", evidence,
                      [r for d in orphaned for r in (f"decision:{d.id}", f"user:{d.owner}")],
                      decisions=[d.id for d in orphaned])  # fmt: skip
    return passed(f"all {len(accepted)} accepted decision(s) have an active owner", evidence,
                  sorted({f"user:{d.owner}" for d in accepted}))  # fmt: skip


def _writers(facts: Facts) -> dict[str, int]:
    """The accounts that changed the project in the last :data:`ACTIVE_WINDOW`, with their event counts."""

    def read() -> dict[str, int]:
        since = facts.now - ACTIVE_WINDOW
        query = (
            select(EventRow.actor, func.count())
            .where(EventRow.project == facts.platform.name, EventRow.ts >= since, EventRow.ts <= facts.now)
            .group_by(EventRow.actor)
        )
        with facts.platform.store.read() as session:
            return {actor: count for actor, count in session.execute(query)}

    return facts.memo("writers", read)


@check(
    "collaboration.shared-store",
    concern="collaboration",
    severity="medium",
    title="A metadata store several people write to is a server (PostgreSQL), not a SQLite file on one machine",
    fix="metadata_url: postgresql+psycopg://USER@HOST/DB in mloop.yaml (pip install 'mloop[postgres]'), "
    "so every user and replica shares one store with row locks.",
)
def shared_store(facts: Facts) -> Outcome:
    store = facts.platform.store
    users = _users(facts)
    active = {
        name: count for name, count in _writers(facts).items() if name in users and not users[name].disabled
    }
    evidence = [
        f"metadata store: {store.backend} ({store.url})",
        f"active users (changes in the last {ACTIVE_WINDOW.days} days): {len(active)}",
        *(f"{name}: {count} change(s)" for name, count in sorted(active.items())),
    ]
    refs = [f"user:{name}" for name in sorted(active)]
    if store.backend == "sqlite" and len(active) > 1:
        return failed(f"{len(active)} active users share a SQLite file", evidence, ["setting:metadata_url", *refs],
                      active_users=len(active))  # fmt: skip
    if store.backend == "sqlite":
        return passed(f"one SQLite file, {len(active)} active user", evidence, refs, active_users=len(active))
    return passed(
        f"{len(active)} active user(s) on {store.backend}", evidence, refs, active_users=len(active)
    )

"""Alias and stage spans rebuilt from events with explicit timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.registry import history
from mloop.security.audit_chain import Event

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def event(minute: int, action: str, actor: str = "ann", **payload: object) -> Event:
    return Event(
        minute, T0 + timedelta(minutes=minute), "p", actor, action, "model:fraud", dict(payload), "h"
    )


def test_alias_spans_across_moves_deletions_and_reassignment() -> None:
    events = [
        event(1, "models.alias", alias="champion", version=1, previous=None),
        event(2, "models.register", version=2),  # not an alias change
        event(3, "models.alias", "bob", alias="champion", version=2, previous=1),
        event(4, "models.alias", alias="champion", version=None, previous=2),
        event(6, "models.alias", alias="champion", version=1, previous=None),
    ]
    spans = history.alias_spans(events)
    at = lambda minute: history.holder_at(spans, T0 + timedelta(minutes=minute))  # noqa: E731
    assert [(s.version, s.set_by, s.end is None) for s in spans] == [
        (1, "ann", False),
        (2, "bob", False),
        (1, "ann", True),
    ]
    assert [at(m) for m in (0, 1, 2, 3, 3.5, 4, 5, 6, 100)] == [[], [1], [1], [2], [2], [], [], [1], [1]]


def test_naive_times_are_read_as_utc() -> None:
    spans = history.alias_spans([event(1, "models.alias", alias="c", version=1, previous=None)])
    assert history.holder_at(spans, datetime(2024, 1, 1, 0, 1)) == [1]


def test_stage_spans_follow_promotions_approvals_and_deletes() -> None:
    events = [
        event(1, "models.promote", version=1, stage="production", status="done", archived=[]),
        event(2, "models.promote", "alice", version=2, stage="production", status="pending"),
        event(3, "models.approve", "bob", version=2, stage="production", requested_by="alice", archived=[1]),
        event(4, "models.delete", version=1, stage="deleted"),
    ]
    spans = history.stage_spans(events)
    production = [s for s in spans if s.stage == "production"]
    assert [(s.version, s.set_by, s.approved_by) for s in production] == [
        (1, "ann", None),
        (2, "alice", "bob"),
    ]
    at = lambda minute: history.holder_at(production, T0 + timedelta(minutes=minute))  # noqa: E731
    assert [at(m) for m in (0, 1, 2, 3, 9)] == [[], [1], [1], [2], [2]]  # a pending request moves nothing
    assert [(s.stage, s.version) for s in spans if s.version == 1] == [
        ("production", 1),
        ("archived", 1),
        ("deleted", 1),
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=1, max_size=12))
def test_the_holder_at_each_event_is_what_that_event_set(versions: list[int | None]) -> None:
    events = []
    previous = None
    for minute, version in enumerate(versions, start=1):
        events.append(event(minute, "models.alias", alias="champion", version=version, previous=previous))
        previous = version
    spans = history.alias_spans(events)
    for minute, version in enumerate(versions, start=1):
        t = T0 + timedelta(minutes=minute)
        assert history.holder_at(spans, t) == ([] if version is None else [version])
        assert history.holder_at(spans, t + timedelta(seconds=30)) == ([] if version is None else [version])
    assert history.holder_at(spans, T0) == []

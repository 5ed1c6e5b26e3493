"""``project.loop.timeline_page``: one endpoint's decisions a page at a time, newest first, read from the
database page by page (what the dashboard's Loop page shows)."""

from __future__ import annotations

import pytest

from mloop import Project
from mloop.errors import PermissionDenied
from mloop.security import Actor, Grant, audit_chain


def test_an_endpoints_decisions_newest_first_page_by_page(sqlite_project: Project) -> None:
    loop = sqlite_project.loop
    for step in range(5):
        loop.record("fraud", "canary", challenger=2, champion=1, step=step, share=0.1 * (step + 1))
        loop.record("churn", "trigger", trigger="schedule", reason="scheduled run")  # another endpoint
    with sqlite_project.store.write() as session:  # an alert on fraud, as monitoring records it
        audit_chain.append(session, project="p", actor="monitor", action="monitoring.alert",
                           resource="endpoint:fraud", payload={"alert": {"name": "slo_burn"}})  # fmt: skip
    first = loop.timeline_page("fraud", limit=4)
    assert [e.action for e in first.events] == ["monitoring.alert"] + ["loop.canary"] * 3
    assert [e.payload["step"] for e in first.events[1:]] == [4, 3, 2]
    rest = loop.timeline_page("fraud", before=first.older, limit=4)
    assert [e.payload["step"] for e in rest.events] == [1, 0] and rest.older is None
    quiet = loop.timeline_page("fraud", alerts=False, limit=4)
    assert [e.payload["step"] for e in quiet.events] == [4, 3, 2, 1]


def test_the_timeline_needs_loop_read_on_the_endpoint(sqlite_project: Project) -> None:
    other = sqlite_project.as_actor(Actor("ops", grants=(Grant("mlops", "endpoint:churn"),)))
    assert other.loop.timeline_page("churn").events == []
    with pytest.raises(PermissionDenied, match="loop.read on endpoint:fraud"):
        other.loop.timeline_page("fraud")

"""The Audit page: the event log newest first, filtered and paged in the database, one event's payload on
its own page, the chain verified on demand; ``audit.read`` only (an auditor reads it, a data scientist not)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mloop import Project
from mloop.store.schema import EventRow
from tests.ui.conftest import Strict


def rows(page: str) -> list[int]:
    """The event numbers of the page's rows, top to bottom."""
    return [int(n) for n in re.findall(r'<td class="num"><a href="/ui/audit/(\d+)">', page)]


def link(page: str, label: str) -> str:
    found = re.search(rf'href="(/ui/audit\?[^"]*)">{label}', page)
    assert found, f"no {label} link"
    return found.group(1).replace("&amp;", "&")


def test_an_auditor_reads_the_log_and_a_data_scientist_gets_403(strict: Strict, ui_project: Project) -> None:
    auditor = strict.client("auditor")
    page = auditor.get("/ui/audit")
    assert page.status_code == 200
    newest = ui_project.audit.events()[-1]
    assert rows(page.text)[0] == newest.seq and newest.action in page.text
    assert auditor.get(f"/ui/audit/{newest.seq}").status_code == 200
    assert auditor.get("/ui/audit/verify").status_code == 200
    assert 'href="/ui/audit"' in auditor.get("/ui/").text
    scientist = strict.client("data_scientist")
    assert 'href="/ui/audit"' not in scientist.get("/ui/").text  # no link to a page it may not read
    for path in ("/ui/audit", "/ui/audit/1", "/ui/audit/verify", "/ui/audit?action=users.*"):
        refused = scientist.get(path)
        assert refused.status_code == 403 and "audit.read" in refused.text, path
        assert "users.add" not in refused.text


def test_filters_give_exactly_the_matching_events(strict: Strict, ui_project: Project) -> None:
    client = strict.client("auditor")
    for query, expected in (
        ({"action": "keys.*"}, ui_project.audit.events(action="keys.*")),
        ({"actor": "local-admin", "action": "users.add"},
         ui_project.audit.events(action="users.add", actor="local-admin")),
        ({"resource": "user:ui-a*"}, ui_project.audit.events(resource="user:ui-a*")),
    ):  # fmt: skip
        assert expected, query
        page = client.get("/ui/audit", params={**query, "per": 200}).text
        assert rows(page) == [e.seq for e in reversed(expected)], query
    every = ui_project.audit.events()
    middle = every[len(every) // 2]
    with ui_project.store.read() as session:  # the events' stored times, to cut a range between two of them
        times = {seq: ts for seq, ts in session.execute(select(EventRow.seq, EventRow.ts))}
    since = times[middle.seq].replace(tzinfo=None).isoformat()  # naive: UTC
    newer = [e.seq for e in every if times[e.seq] >= times[middle.seq]]
    page = client.get("/ui/audit", params={"since": since, "per": 200}).text
    assert rows(page) == sorted(newer, reverse=True)
    assert rows(client.get("/ui/audit", params={"until": "2000-01-01T00:00"}).text) == []
    bad = client.get("/ui/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "2025-01-31T14:00" in bad.text
    assert (
        client.get("/ui/audit", params={"action": "keys.*", "actor": "x"}).text.count("No event matches") == 1
    )


def test_pages_walk_the_log_newest_first(strict: Strict, ui_project: Project) -> None:
    client = strict.client("auditor")
    every = [e.seq for e in reversed(ui_project.audit.events())]
    assert len(every) > 6
    first = client.get("/ui/audit?per=3&action=*").text
    assert rows(first) == every[:3] and "← Newer" not in first
    second = client.get(link(first, "Older")).text
    assert rows(second) == every[3:6] and "action=%2A" in link(second, "Older")  # the filters stay
    assert rows(client.get(link(second, "← Newer")).text) == every[:3]
    assert "mloop audit log --action &#39;*&#39; -n 3" in first


def test_an_events_payload_on_its_own_page(strict: Strict, ui_project: Project) -> None:
    client = strict.client("auditor")
    issued = ui_project.audit.events(action="keys.issue")[-1]
    page = client.get(f"/ui/audit/{issued.seq}")
    assert page.status_code == 200
    assert issued.hash in page.text and issued.resource in page.text
    for key, value in issued.payload.items():
        assert f'<th scope="row">{key}</th><td>{"—" if value is None else value}</td>' in page.text
    missing = client.get("/ui/audit/999999")
    assert missing.status_code == 404 and "No audit event 999999" in missing.text


def test_verification_finds_an_edited_event(ui: TestClient, ui_project: Project) -> None:
    assert 'hx-get="/ui/audit/verify"' in ui.get("/ui/audit").text  # computed on demand, not with the page
    intact = ui.get("/ui/audit/verify").text
    assert "intact" in intact and f"{len(ui_project.audit.events())} events checked" in intact
    with ui_project.store.write() as session:
        original = session.scalar(select(EventRow.payload).where(EventRow.seq == 2))
        session.execute(update(EventRow).where(EventRow.seq == 2).values(payload='{"roles":["admin"]}'))
    try:
        broken = ui.get("/ui/audit/verify").text
        assert "tampered with" in broken and "event 2 (" in broken and "was edited" in broken
    finally:
        with ui_project.store.write() as session:
            session.execute(update(EventRow).where(EventRow.seq == 2).values(payload=original))
    assert "intact" in ui.get("/ui/audit/verify").text

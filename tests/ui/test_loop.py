"""The Loop page: an endpoint's state and its timeline of decisions with their numbers, newest first and
paged in the database; pause, resume and approve for ``loop.operate`` only (a forged POST is refused)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from tests.ui.conftest import Strict, csrf

CHALLENGER = {
    "requests": 200,
    "errors": 12,
    "error_rate": 0.06,
    "p99_ms": 4.1,
    "labelled": 0,
    "live_auc": None,
}
CHAMPION = {
    "requests": 1800,
    "errors": 1,
    "error_rate": 0.000556,
    "p99_ms": 3.2,
    "labelled": 0,
    "live_auc": None,
}


@pytest.fixture(scope="module")
def history(ui_project: Project) -> Iterator[Project]:
    """A loop's life on ``fraud``, recorded through the loop service as the controller records it: a drift
    trigger, a failed gate, a second trigger, a passed gate, a 10% canary step, a rollback."""
    loop = ui_project.loop
    loop.record("fraud", "trigger", trigger="on_drift", reason="PSI >= 0.2 on amount",
                numbers={"psi": 0.3117, "feature": "amount"})  # fmt: skip
    loop.record("fraud", "gate", passed=False, challenger=3, champion=1, metric="roc_auc", challenger_value=0.812,
                champion_value=0.8532, holdout_rows=600, reason="failed roc_auc_gain -0.0412 vs limit 0",
                checks=[{"name": "roc_auc_gain", "value": -0.0412, "limit": 0.0, "passed": False,
                         "challenger": 0.812, "champion": 0.8532},
                        {"name": "latency_p99_ms", "value": 3.2, "limit": 50.0, "passed": True}])  # fmt: skip
    loop.record(
        "fraud",
        "trigger",
        trigger="schedule",
        reason="scheduled run (0 3 * * *)",
        numbers={},
        at="2031-05-04T03:00:00+00:00",
    )  # the controller's clock, shown rather than the event's
    loop.record("fraud", "gate", passed=True, challenger=2, champion=1, metric="roc_auc", reason="passed every check",
                checks=[{"name": "roc_auc_gain", "value": 0.004, "limit": 0.0, "passed": True}])  # fmt: skip
    loop.record("fraud", "canary", challenger=2, champion=1, step=0, share=0.1,
                reason="v2 takes 10% of the traffic (step 1 of 3)")  # fmt: skip
    loop.record("fraud", "rollback", reason="12 failed requests of 200 (at most 1.0% of 200)", restored=1,
                challenger=2, numbers={"challenger": CHALLENGER, "champion": CHAMPION, "step": 0},
                seconds=0.0123)  # fmt: skip
    yield ui_project


def shown(page: str) -> list[int]:
    """The event numbers of the timeline's rows, top to bottom."""
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', page)]


def test_the_timeline_shows_each_decision_with_its_numbers_newest_first(
    ui: TestClient, history: Project
) -> None:
    page = ui.get("/ui/loop?endpoint=fraud")
    assert page.status_code == 200, page.text[:500]
    text = page.text
    seqs = shown(text)
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 6
    assert text.index("12 failed requests of 200") < text.index("PSI &gt;= 0.2 on amount")  # newest first
    # the failed gate: each check with its value and limit, and the two versions' metric
    assert re.search(r"roc_auc_gain <span class=\"muted\">\(challenger 0.812, champion 0.8532\)</span></td>"
                     r"<td class=\"num\">-0.0412</td><td class=\"num\">0</td><td><span class=\"tag bad\">failed",
                     text)  # fmt: skip
    assert re.search(r"latency_p99_ms</td><td class=\"num\">3.2</td><td class=\"num\">50</td>", text)
    # the canary step's share, the rollback's reason and both versions' live numbers
    assert '<span class="muted">share</span> 10%' in text and '<span class="muted">step</span> 1' in text
    assert re.search(r"challenger v2</th><td class=\"num\">200</td><td class=\"num\">12</td><td class=\"num\">6.00%",
                     text)  # fmt: skip
    assert re.search(r"champion v1</th><td class=\"num\">1800</td>", text)
    assert (
        '<span class="muted">restored</span> v1' in text and '<span class="muted">psi</span> 0.3117' in text
    )
    main = text[text.index("<main") :]
    assert '{"' not in main and "&#34;" not in main and "'challenger'" not in main  # readable, not raw JSON
    assert ">rollback</span>" in text and 'id="loop-phase">idle' in text
    assert "<td>2031-05-04 03:00:00</td>" in text


def test_the_timeline_is_paged(ui: TestClient, history: Project) -> None:
    everything = shown(ui.get("/ui/loop?endpoint=fraud&per=200").text)
    first = ui.get("/ui/loop?endpoint=fraud&per=2").text
    assert shown(first) == everything[:2] and "← Newer" not in first
    older = re.search(r'href="(/ui/loop\?[^"]*before=[^"]*)">Older', first)
    assert older, first
    second = ui.get(older.group(1).replace("&amp;", "&")).text
    assert shown(second) == everything[2:4]
    newer = re.search(r'href="(/ui/loop\?[^"]*after=[^"]*)">← Newer', second)
    assert newer and shown(ui.get(newer.group(1).replace("&amp;", "&")).text) == everything[:2]
    assert ui.get("/ui/loop?endpoint=fraud&per=0").status_code == 400


def test_mlops_pauses_and_resumes_the_loop_from_the_page(strict: Strict, history: Project) -> None:
    client = strict.client("mlops")
    page = client.get("/ui/loop?endpoint=fraud").text
    assert 'action="/ui/loop/fraud/pause"' in page and 'for="pause-reason"' in page
    done = client.post("/ui/loop/fraud/pause", data={"csrf": csrf(client, "/ui/loop?endpoint=fraud"),
                                                     "reason": "label backfill"})  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/ui/loop?endpoint=fraud"
    try:
        assert history.loop.state("fraud").paused
        event = history.audit.events(action="loop.pause")[-1]
        assert (event.actor, event.resource, event.payload["reason"]) == (
            "ui-mlops",
            "endpoint:fraud",
            "label backfill",
        )
        page = client.get("/ui/loop?endpoint=fraud").text
        assert "paused</span>" in page and 'action="/ui/loop/fraud/resume"' in page
        assert "label backfill" in page
    finally:
        resumed = client.post("/ui/loop/fraud/resume", data={"csrf": csrf(client, "/ui/loop?endpoint=fraud")})
    assert resumed.status_code == 303 and not history.loop.state("fraud").paused
    assert history.audit.events(action="loop.resume")[-1].actor == "ui-mlops"


def test_a_data_scientist_sees_no_button_and_a_forged_post_changes_nothing(
    strict: Strict, history: Project
) -> None:
    client = strict.client("data_scientist")
    page = client.get("/ui/loop?endpoint=fraud")
    assert page.status_code == 200 and "12 failed requests" in page.text  # loop.read: it may look
    assert 'action="/ui/loop/' not in page.text and "Pause the loop" not in page.text
    before = history.loop.state("fraud").last_seq
    token = csrf(client, "/ui/loop?endpoint=fraud")
    for action in ("pause", "resume", "approve"):
        forged = client.post(f"/ui/loop/fraud/{action}", data={"csrf": token, "reason": "x"})
        assert forged.status_code == 403 and "loop.operate" in forged.text
    stale = strict.client("mlops").post("/ui/loop/fraud/pause", data={"csrf": "guess"})
    assert stale.status_code == 403  # the right role, but not the dashboard's form
    assert history.loop.state("fraud").last_seq == before and not history.loop.state("fraud").paused


def test_mlops_approves_a_canary_that_waits_for_it(strict: Strict, history: Project) -> None:
    client = strict.client("mlops")
    token = csrf(client, "/ui/loop?endpoint=fraud")
    idle = client.post("/ui/loop/fraud/approve", data={"csrf": token})
    assert idle.status_code == 400 and "nothing waits for approval" in idle.text
    history.loop.record("fraud", "canary", challenger=2, champion=1, step=1, share=0.5, reason="v2 takes 50%")
    history.loop.record("fraud", "awaiting", challenger=2, reason="v2 is healthy; the final step waits for approval",
                        numbers={"challenger": CHAMPION, "champion": CHAMPION, "step": 1})  # fmt: skip
    try:
        page = client.get("/ui/loop?endpoint=fraud").text
        assert 'action="/ui/loop/fraud/approve"' in page and "waits for approval" in page
        assert client.post("/ui/loop/fraud/approve", data={"csrf": token}).status_code == 303
        assert history.loop.state("fraud").approved
        assert history.audit.events(action="loop.approve")[-1].actor == "ui-mlops"
        assert 'action="/ui/loop/fraud/approve"' not in client.get("/ui/loop?endpoint=fraud").text
    finally:  # back to idle, as the other tests found it
        history.loop.record("fraud", "rollback", reason="test over", restored=1, challenger=2)


def test_the_endpoints_are_listed_and_an_unknown_one_is_named(ui: TestClient) -> None:
    index = ui.get("/ui/loop")
    assert index.status_code == 200 and 'href="/ui/loop?endpoint=fraud"' in index.text
    unknown = ui.get("/ui/loop?endpoint=nope")
    assert (
        unknown.status_code == 404
        and "No endpoint &#39;nope&#39;" in unknown.text
        and "fraud" in unknown.text
    )
    assert (
        ui.post("/ui/loop/nope/pause", data={"csrf": csrf(ui, "/ui/loop?endpoint=fraud")}).status_code == 404
    )

"""The Deployments pages: endpoints, traffic split, canary progress, live figures, history and rollback."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient

from mloop import Project
from mloop._time import utcnow
from mloop.predictions.files import partition, to_table, write_parquet
from mloop.predictions.log import predictions_folder
from tests.ui.conftest import Strict, csrf


def test_the_list_shows_each_endpoint_with_its_split_revision_and_author(ui: TestClient,
                                                                         ui_project: Project) -> None:  # fmt: skip
    live = ui_project.deployments.get("fraud")
    page = ui.get("/ui/deployments")
    assert page.status_code == 200 and "mloop deployments list" in page.text
    row = re.search(r'<a href="/ui/deployments/fraud">fraud</a></th>(.*?)</tr>', page.text, re.S)
    assert row, page.text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert "v1 100.0%" in cells[1] and cells[2] == str(live.revision) and cells[3] == live.kind
    assert cells[4] == live.created_by
    assert "1–1 of 1" in page.text


def test_the_live_figures_come_from_the_last_hour_of_the_prediction_log(ui: TestClient,
                                                                        ui_project: Project) -> None:  # fmt: skip
    now = utcnow()
    records = [_record(now - timedelta(minutes=5), 1, "ok", 0.002 * (i + 1)) for i in range(100)]
    records += [_record(now - timedelta(minutes=4), 1, "error", 0.5) for _ in range(4)]
    records += [_record(now - timedelta(hours=3), 2, "ok", 0.1)]  # older than an hour: left out
    part = partition(predictions_folder(ui_project.settings), "fraud", now.date()) / "part-ui-test.parquet"
    write_parquet(to_table(records), part)
    try:
        page = ui.get("/ui/deployments/fraud")
        assert 'hx-get="/ui/deployments/fraud/live" hx-trigger="load, every 10s"' in page.text
        live = ui.get("/ui/deployments/fraud/live").text
        rows = re.findall(
            r'<th scope="row">v(\d+)[^<]*(?:<span[^>]*>[^<]*</span>)?</th>(.*?)</tr>', live, re.S
        )
        assert [v for v, _ in rows] == ["1"], live
        cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1])
        assert cells[0] == "104" and cells[2] == "4" and cells[3] == "3.85%"
        assert 198 <= float(cells[1]) <= 200  # p99 of 2..200 ms, the errors' 500 ms left out
    finally:
        part.unlink()
    assert "No request in the last hour" in ui.get("/ui/deployments/fraud/live").text


def test_a_canary_shows_its_split_and_progress_and_a_confirmed_rollback_restores_the_split(
    strict: Strict, ui_project: Project
) -> None:
    before = ui_project.deployments.get("fraud")
    canary = ui_project.deploy("fraud", "fraud", version=2, canary=0.1)
    ui_project.loop.record("fraud", "canary", challenger=2, champion=1, step=1, share=0.1)
    ops = strict.client("mlops")
    page = ops.get("/ui/deployments/fraud").text
    assert "v1 90.0%" in page and "v2 10.0%" in page and f"revision {canary.revision}" in page
    assert "Challenger" in page and 'value="0.1"' in page and "step 1" in page
    assert 'href="/ui/deployments/fraud/rollback"' in page
    confirm = ops.get("/ui/deployments/fraud/rollback")
    assert confirm.status_code == 200 and f"restores revision {before.revision}" in confirm.text
    token = csrf(ops, "/ui/deployments/fraud")
    unconfirmed = ops.post("/ui/deployments/fraud/rollback", data={"csrf": token})
    assert unconfirmed.status_code == 400 and ui_project.deployments.get("fraud").revision == canary.revision
    done = ops.post("/ui/deployments/fraud/rollback", data={"csrf": token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/ui/deployments/fraud"
    ui_project.loop.record("fraud", "rollback", reason="ui test", restored=1)
    after = ui_project.deployments.get("fraud")
    assert after.revision == canary.revision + 1 and after.kind == "rollback"
    assert [(r.version, r.weight) for r in after.routes] == [(1, 1.0)]  # as before the canary
    shown = ops.get("/ui/deployments/fraud").text
    assert f"revision {after.revision}" in shown and "v1 100.0%" in shown and "No canary in progress" in shown
    history = re.findall(r'<th scope="row">(\d+)', shown)
    assert history[:2] == [str(after.revision), str(canary.revision)]  # newest first
    event = ui_project.audit.events(resource="endpoint:fraud", action="deployments.rollback")[-1]
    assert event.actor == "ui-mlops" and event.payload["restored_revision"] == before.revision
    assert event.payload["revision"] == after.revision


def test_a_data_scientist_sees_no_rollback_and_a_forged_one_changes_nothing(strict: Strict,
                                                                            ui_project: Project) -> None:  # fmt: skip
    ui_project.deploy("fraud", "fraud", version=2)
    try:
        live = ui_project.deployments.get("fraud")
        events = len(ui_project.audit.events())
        scientist = strict.client("data_scientist")
        page = scientist.get("/ui/deployments/fraud").text
        assert "v2 100.0%" in page and "/rollback" not in page and "<button" not in page.split("</header>")[1]
        assert scientist.get("/ui/deployments/fraud/rollback").status_code == 403
        token = csrf(scientist, "/ui/deployments/fraud")
        forged = scientist.post("/ui/deployments/fraud/rollback", data={"csrf": token, "confirm": "yes"})
        assert forged.status_code == 403 and "deployments.rollback" in forged.text
        assert ui_project.deployments.get("fraud").revision == live.revision
        assert len(ui_project.audit.events()) == events
        ops = strict.client("mlops")
        stale = ops.post("/ui/deployments/fraud/rollback", data={"csrf": "guess", "confirm": "yes"})
        assert stale.status_code == 403 and ui_project.deployments.get("fraud").revision == live.revision
    finally:
        ui_project.rollback("fraud")  # v1 serves again, as the other tests expect
    assert ui_project.deployments.get("fraud").primary == 1


def test_an_unknown_endpoint_is_404(ui: TestClient) -> None:
    assert ui.get("/ui/deployments/nowhere").status_code == 404
    assert "nowhere" in ui.get("/ui/deployments/nowhere/live").text


def _record(ts, version: int, status: str, latency: float) -> dict:  # type: ignore[no-untyped-def]
    return {"request_id": uuid.uuid4().hex, "ts": ts.timestamp(), "endpoint": "fraud", "model": "fraud",
            "version": version, "revision": 1, "latency_s": latency, "status": status,
            "predictions": [0.5 if status == "ok" else None], "inputs": {}}  # fmt: skip


def test_the_overview_shows_the_last_hour_of_each_endpoint(ui: TestClient, ui_project: Project) -> None:
    now = utcnow()
    records = [_record(now - timedelta(minutes=5), 1, "ok", 0.002 * (i + 1)) for i in range(100)]
    records += [_record(now - timedelta(minutes=4), 1, "error", 0.5) for _ in range(4)]
    part = (
        partition(predictions_folder(ui_project.settings), "fraud", now.date()) / "part-ui-overview.parquet"
    )
    write_parquet(to_table(records), part)
    try:
        live = ui.get("/ui/overview/live/fraud").text
        found = re.search(r"(\d+) requests · p99 ([\d.]+) ms · (\d+) errors \(([\d.]+)%\)", live)
        assert found, live
        assert (found[1], found[3], found[4]) == ("104", "4", "3.85")
        assert 198 <= float(found[2]) <= 200
    finally:
        part.unlink()

"""The Models pages: the registry as each role sees it, the card and lineage, and promotion with approval."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.ui import create_ui_app
from tests.models.cases import case
from tests.ui.conftest import Strict, csrf, login


@pytest.fixture(scope="module")
def approvals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    """A project of its own with ``require_approval`` on and local_admin off: models m1..m3 (m1 with
    three versions, deployed on ``ep``), and a key per role."""
    root = tmp_path_factory.mktemp("ui-approvals")
    admin = Project.open(root, env={"MLOOP_REQUIRE_APPROVAL": "true"})
    model = case("lgbm-classifier").model
    for name in ("m3", "m1", "m2", "m1", "m1"):
        admin.models.register(name, model, metrics={"auc": 0.8})
    admin.deploy("ep", "m1", version=1)
    keys = {}
    for role in ("data_scientist", "ml_engineer", "mlops"):
        admin.users.add(f"ap-{role}", [role])
        keys[role] = admin.keys.issue(f"ap-{role}").token
    opened = Project.open(root, env={"MLOOP_REQUIRE_APPROVAL": "true", "MLOOP_LOCAL_ADMIN": "false"},
                          actor=admin.actor)  # fmt: skip
    try:
        yield Strict(opened, keys)
    finally:
        opened.close()
        admin.close()


def stage(project: Project, name: str, version: int) -> str:
    return project.models.get(name, version).stage


def test_the_list_shows_each_model_with_its_latest_version_and_pages(approvals: Strict) -> None:
    client = approvals.client("data_scientist")
    page = client.get("/ui/models?per=2")
    assert page.status_code == 200 and "mloop models list" in page.text
    assert 'href="/ui/models/m1"' in page.text and 'href="/ui/models/m1/3"' in page.text  # latest is v3
    assert (
        "m3" not in page.text
        and "1–2 of 3" in page.text
        and 'href="/ui/models?per=2&amp;page=2"' in page.text
    )
    second = client.get("/ui/models?page=2&per=2").text
    assert 'href="/ui/models/m3"' in second and 'href="/ui/models/m1"' not in second


def test_a_model_page_shows_its_versions_newest_first_the_card_and_the_lineage(ui: TestClient) -> None:
    page = ui.get("/ui/models/fraud")
    assert page.status_code == 200
    versions = re.findall(r'<th scope="row"><a href="/ui/models/fraud/(\d+)">', page.text)
    assert versions == ["2", "1"]
    assert "Model card: fraud v2" in page.text and "Intended use" in page.text
    card = ui.get("/ui/models/fraud/2").text.split('id="card"')[1].split("<details>")[0]
    assert '<th scope="row">roc_auc</th>' in card and '<th scope="row">tp</th>' not in card  # counts left out
    assert '<svg class="lineage"' in page.text and "Feature views" in page.text
    one = ui.get("/ui/models/fraud/1")
    assert one.status_code == 200 and "Model card: fraud v1" in one.text
    # v1 serves the endpoint: the lineage ends in it, linked to its page
    assert 'href="/ui/deployments/fraud"' in one.text and "100% of traffic" in one.text
    assert "<script" not in one.text.split("<main", 1)[1]  # the card is data, rendered escaped
    assert ui.get("/ui/models/nope").status_code == 404
    assert ui.get("/ui/models/fraud/99").status_code == 404


def test_the_lineage_names_the_views_the_run_and_the_training_set(
    ui: TestClient, ui_project: Project
) -> None:
    v1 = ui_project.models.get("fraud", 1)
    text = ui.get("/ui/models/fraud/1").text
    svg = text[text.index('<svg class="lineage"') : text.index("</svg>", text.index('<svg class="lineage"'))]
    for view in v1.lineage["feature_views"]:
        assert f"{view['name']} v{view['version']}" in svg
    assert v1.run_id[:20] in svg and "fingerprint " + v1.lineage["training_set_fingerprint"][:12] in svg
    assert (
        svg.count("<path") >= len(v1.lineage["feature_views"]) + 3
    )  # views → set → run → version → endpoint


def test_promotion_to_production_waits_for_a_second_person(approvals: Strict) -> None:
    project = approvals.project
    engineer = approvals.client("ml_engineer")
    page = engineer.get("/ui/models/m1").text
    assert 'action="/ui/models/m1/2/promote"' in page and "/decide" not in page
    token = csrf(engineer, "/ui/models/m1")
    asked = engineer.post(
        "/ui/models/m1/2/promote", data={"csrf": token, "to": "production", "comment": "better"}
    )
    assert asked.status_code == 303 and asked.headers["location"] == "/ui/models/m1"
    assert stage(project, "m1", 2) == "none"
    waiting = engineer.get("/ui/models/m1").text
    assert "Waiting for approval" in waiting and "ap-ml_engineer" in waiting
    assert 'action="/ui/models/m1/2/decide"' not in waiting  # the engineer may not approve

    ops = approvals.client("mlops")
    assert 'action="/ui/models/m1/2/decide"' in ops.get("/ui/models/m1").text
    done = ops.post("/ui/models/m1/2/decide", data={"csrf": csrf(ops, "/ui/models/m1/2"), "to": "production",
                                                    "decision": "approve", "back": "/ui/models/m1/2"})  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/ui/models/m1/2"
    assert stage(project, "m1", 2) == "production"
    assert "Waiting for approval" not in ops.get("/ui/models/m1").text
    events = project.audit.events(resource="model:m1", action="models.*")
    assert [(e.action, e.actor) for e in events[-2:]] == [("models.promote", "ap-ml_engineer"),
                                                          ("models.approve", "ap-mlops")]  # fmt: skip
    assert events[-1].payload["requested_by"] == "ap-ml_engineer"


def test_the_requester_cannot_approve_their_own_promotion(approvals: Strict) -> None:
    ops = approvals.client("mlops")
    token = csrf(ops, "/ui/models/m1")
    assert ops.post("/ui/models/m1/3/promote", data={"csrf": token, "to": "production"}).status_code == 303
    own = ops.post("/ui/models/m1/3/decide", data={"csrf": token, "to": "production", "decision": "approve"})
    assert own.status_code == 403 and "second person" in own.text
    assert stage(approvals.project, "m1", 3) == "none"
    rejected = ops.post(
        "/ui/models/m1/3/decide", data={"csrf": token, "to": "production", "decision": "reject"}
    )
    assert rejected.status_code == 303 and approvals.project.models.promotions("m1", status="pending") == []


def test_staging_needs_no_approval(approvals: Strict) -> None:
    engineer = approvals.client("ml_engineer")
    token = csrf(engineer, "/ui/models/m2/1")
    answer = engineer.post(
        "/ui/models/m2/1/promote", data={"csrf": token, "to": "staging", "back": "/ui/models/m2/1"}
    )
    assert answer.status_code == 303 and stage(approvals.project, "m2", 1) == "staging"
    assert ">staging</span>" in engineer.get("/ui/models/m2/1").text


def test_a_data_scientist_sees_no_buttons_and_a_forged_post_changes_nothing(approvals: Strict) -> None:
    project = approvals.project
    project.models.promote("m3", 1, to="production")  # a pending request a forged approval could target
    before = len(project.audit.events())
    scientist = approvals.client("data_scientist")
    for path in ("/ui/models/m3", "/ui/models/m3/1"):
        page = scientist.get(path).text
        assert "Waiting for approval" in page or "waiting for approval" in page.lower()
        assert (
            "/promote" not in page and "/decide" not in page and "<button" not in page.split("</header>")[1]
        )
    token = csrf(scientist, "/ui/models/m3")
    forged = scientist.post("/ui/models/m3/1/promote", data={"csrf": token, "to": "staging"})
    assert forged.status_code == 403 and "models.promote" in forged.text
    approve = scientist.post(
        "/ui/models/m3/1/decide", data={"csrf": token, "to": "production", "decision": "approve"}
    )
    assert approve.status_code == 403
    assert stage(project, "m3", 1) == "none" and len(project.audit.events()) == before


def test_a_form_without_the_dashboard_token_is_refused(approvals: Strict) -> None:
    ops = approvals.client("mlops")
    ops.get("/ui/models/m2")
    answer = ops.post("/ui/models/m2/1/promote", data={"csrf": "guess", "to": "archived"})
    assert answer.status_code == 403 and stage(approvals.project, "m2", 1) != "archived"


def test_the_pages_need_a_login(approvals: Strict) -> None:
    client = approvals.client()
    assert client.get("/ui/models/m1").status_code == 303
    other = TestClient(create_ui_app(approvals.project), follow_redirects=False)
    assert other.post("/ui/models/m1/1/promote", data={"to": "staging"}).status_code == 303
    login(other, approvals.keys["mlops"])
    assert other.get("/ui/models/m1/1").status_code == 200

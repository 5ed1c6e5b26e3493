"""The review as a user reads it: the CLI, the reports, --fail-on, the HTTP route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.cli import _state
from mloop.cli.main import main
from mloop.review import render
from tests.review.conftest import reopen


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


def mloop(project: Project, *args: str, capsys: object) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["-C", str(project.root), *args])
    _state.close()
    out = capsys.readouterr()  # type: ignore[attr-defined]
    return int(exited.value.code or 0), out.out + out.err


def test_fail_on_high_exits_1_on_a_project_with_a_high_finding_and_0_once_it_is_fixed(
    reviewed: Project, capsys: object
) -> None:
    code, text = mloop(reviewed, "review", "--only", "lifecycle", "--fail-on", "high", "--format", "markdown",
                       capsys=capsys)  # fmt: skip
    assert code == 1 and "lifecycle.monitored" in text and "--fail-on high" in text, text
    fixed = reopen(reviewed, monitoring={"endpoints": {"fraud": {}}})
    try:
        code, text = mloop(fixed, "review", "--only", "lifecycle", "--fail-on", "high", capsys=capsys)
        assert code == 0, text
    finally:
        fixed.close()
        reopen(reviewed, monitoring=None).close()


def test_a_wrong_severity_or_format_is_named(reviewed: Project, capsys: object) -> None:
    code, text = mloop(reviewed, "review", "--fail-on", "severe", capsys=capsys)
    assert code != 0 and "Unknown severity 'severe'" in text
    code, text = mloop(reviewed, "review", "--format", "pdf", capsys=capsys)
    assert code != 0 and "use table, markdown, html or json" in text
    code, text = mloop(reviewed, "review", "--only", "nothing.like.this", capsys=capsys)
    assert code != 0 and "No check matches nothing.like.this" in text


def test_json_markdown_and_html_carry_every_finding_with_its_evidence(
    reviewed: Project, tmp_path: Path, capsys: object
) -> None:
    code, text = mloop(reviewed, "review", "--json", capsys=capsys)
    data = json.loads(text)
    ids = {f["id"] for f in data["findings"]}
    assert code == 0 and "lifecycle.rollback-target" in ids and data["ml_test_score"]["line"].endswith("/ 28")
    for name, marker in (
        ("r.md", "# Architecture review of"),
        ("r.html", "<!doctype html>"),
        ("r.json", '"findings"'),
    ):
        code, text = mloop(reviewed, "review", "-o", str(tmp_path / name), capsys=capsys)
        body = (tmp_path / name).read_text()
        assert code == 0 and marker in body and "lifecycle.rollback-target" in body
    html = (tmp_path / "r.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    assert "fraud: back to revision 1" in html  # the evidence


def test_evidence_is_escaped_in_html_and_a_missing_folder_writes_nothing(
    reviewed: Project, tmp_path: Path
) -> None:
    review = reviewed.review(only=["lifecycle.rollback-target"])
    finding = review.findings[0]
    object.__setattr__(finding.outcome, "evidence", ("<img src=x onerror=alert(1)>",))
    page = render.html(review)
    assert "<img src=x" not in page and "&lt;img src=x" in page
    from mloop.errors import MalformedInput

    with pytest.raises(MalformedInput, match="does not exist"):
        render.save(review, tmp_path / "no" / "r.html", "html")
    assert list(tmp_path.iterdir()) == []


def test_the_http_route_answers_json_and_html_to_whoever_may_read_the_review(reviewed: Project) -> None:
    from mloop.serving.http.app import create_app

    with TestClient(create_app(reviewed)) as client:
        data = client.get("/v1/review", params={"only": "lifecycle"}).json()
        assert {f["id"] for f in data["findings"]} >= {"lifecycle.rollback-target", "lifecycle.monitored"}
        page = client.get("/v1/review", params={"format": "html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert client.get("/v1/review", params={"format": "pdf"}).status_code == 422


def test_a_role_without_review_read_is_refused(reviewed: Project) -> None:
    from mloop.errors import PermissionDenied

    reviewed.users.add("dana", roles=["data_scientist"])
    try:
        with pytest.raises(PermissionDenied):
            reviewed.as_actor(reviewed.users.get("dana").actor()).review()
        auditor = reviewed.users.add("audrey", roles=["auditor"])
        assert reviewed.as_actor(auditor.actor()).review(only=["lifecycle"]).findings
    finally:
        reviewed.users.disable("dana")

"""The Review page: scores and findings with evidence and fix, filtered by concern; the HTML report as a
download; ``review.read`` only (mlops and auditors read it, a data scientist not)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mloop import Project
from tests.ui.conftest import Strict


def test_the_page_shows_the_scores_and_each_failing_check_with_its_fix(
    ui: TestClient, ui_project: Project
) -> None:
    review = ui_project.review()
    page = ui.get("/ui/review")
    assert page.status_code == 200
    final, rest = review.mlts.line().split(" (", 1)
    assert f"<strong>{final}</strong>" in page.text and f"({rest}" in page.text
    assert f"level {review.maturity.level}" in page.text
    for finding in review.findings:
        shown = f'id="{finding.check.id}"' in page.text
        assert shown == (finding.status not in ("pass", "n/a")), finding.check.id  # problems only, by default
    every = ui.get("/ui/review", params={"show": "all", "concern": "lifecycle"}).text
    assert 'id="lifecycle.rollback-target"' in every and "mloop review --only lifecycle --all" in every
    assert 'id="security.' not in every  # one concern


def test_the_report_downloads_as_one_self_contained_file(ui: TestClient) -> None:
    answer = ui.get("/ui/review/report")
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    assert "<!doctype html>" in answer.text and "<script" not in answer.text


def test_mlops_reads_the_review_and_a_data_scientist_gets_403(strict: Strict) -> None:
    assert strict.client("mlops").get("/ui/review").status_code == 200
    scientist = strict.client("data_scientist")
    assert 'href="/ui/review"' not in scientist.get("/ui/").text
    for path in ("/ui/review", "/ui/review/report"):
        refused = scientist.get(path)
        assert refused.status_code == 403 and "review.read" in refused.text, path

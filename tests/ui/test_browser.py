"""The dashboard in a real browser (Chromium through Playwright) against a real ``mloop serve`` that needs
keys and a second person's approval for production: log in, open every page; filter, page, sort and compare
runs with the keyboard; promote a model as one user and approve it as another; roll a canary back and see
the revision change; a read-only user's forged POSTs are refused. In every test no request leaves the
machine (each is refused and recorded) and no script logs an error. A screenshot of each page goes to a
folder named in any failure (kept with ``MLOOP_UI_SCREENSHOTS=DIR``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mloop import Project
from mloop.ui.render import NAV
from tests.browser import chromium
from tests.serving.http.running import Server, mloop_serve
from tests.ui.conftest import Strict

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("browser"),
]  # the module's fixtures are built once, on one worker

SWEEP = 25  # runs of the "sweep" experiment: two pages of 20


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(strict: Strict, ui_project: Project) -> Iterator[Server]:
    """``mloop serve`` as a shared server runs: local_admin off, production needs a second person's
    approval, its own identity an admin's key. The project gets 25 runs of "sweep" (lr 0.01..0.25)."""
    for i in range(SWEEP):
        with ui_project.run("sweep", params={"lr": round(0.01 * (i + 1), 2)}, name=f"trial-{i:02d}") as run:
            for step in range(3):
                run.log_metric("auc", 0.5 + i / 100 - (2 - step) * 0.1, step=step)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOOP_LOCAL_ADMIN", "false")
        patch.setenv("MLOOP_REQUIRE_APPROVAL", "true")
        patch.setenv("MLOOP_API_KEY", strict.keys["admin"])
        with mloop_serve(Path(ui_project.root)) as running:
            yield running


class Watched:
    """A browser context whose script errors and off-machine requests are recorded (those requests are
    refused); ``open`` screenshots each page it opens into ``shots``."""

    def __init__(self, browser: Any, server: Server, shots: Path) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.server, self.shots = server, shots
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(f"{self.page.url}: {exc}"))
        self.page.on(
            "console",
            lambda m: self.errors.append(f"{self.page.url}: {m.text}") if m.type == "error" else None,
        )

    def _route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def open(self, path: str, name: str) -> Any:
        answer = self.page.goto(f"{self.server.url}{path}")
        self.settled(name)
        return answer

    def settled(self, name: str) -> None:
        self.page.wait_for_load_state("networkidle")
        self.shot(name)

    @contextmanager
    def navigating(self, name: str) -> Iterator[None]:
        """Around a click or key press that opens a page: wait for that page, then screenshot it."""
        with self.page.expect_navigation():
            yield
        self.settled(name)

    def log_in(self, key: str) -> None:
        self.open("/ui/login", "login")
        self.page.get_by_label("API key").fill(key)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Log in").click()
        assert self.page.url == f"{self.server.url}/ui/", self.page.url

    def log_out(self) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Log out").click()
        assert self.page.url == f"{self.server.url}/ui/login", self.page.url

    def forgive(self, status: int) -> None:
        """Drop the console's report of the current page's expected error status."""
        said = f"{self.page.url}: Failed to load resource: the server responded with a status of {status}"
        self.errors = [e for e in self.errors if not e.startswith(said)]

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests that would have left the machine: {self.outside}"
        assert self.errors == [], f"script errors: {self.errors} (screenshots in {self.shots})"


@pytest.fixture
def watched(browser: Any, server: Server, tmp_path: Path) -> Iterator[Watched]:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    watching = Watched(browser, server, shots)
    try:
        yield watching
    finally:
        keep = os.environ.get("MLOOP_UI_SCREENSHOTS")
        if keep:
            shutil.copytree(shots, keep, dirs_exist_ok=True)
        watching.context.close()


def test_log_in_visit_every_page_and_log_out(watched: Watched, strict: Strict) -> None:
    page = watched.page
    watched.open("/ui/", "redirected")
    assert "/ui/login" in page.url
    watched.log_in(strict.keys["admin"])
    assert page.get_by_text("ui-admin").count() >= 1
    for key, label, href in NAV:
        answer = watched.open(href, key)
        assert answer is not None and answer.status == 200, f"{href}: {answer and answer.status}"
        assert page.get_by_role("heading", level=1).count() == 1, href
        assert page.locator('nav a[aria-current="page"]').inner_text() == label, href
    # from the top: the skip link, which moves focus to the page's content; else the brand, then the pages
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == NAV[0][2]
    watched.log_out()
    watched.open("/ui/runs", "after-logout")
    assert "/ui/login" in page.url
    watched.assert_clean()


def row_names(page: Any) -> list[str]:
    return page.locator("tbody th[scope=row] a").all_inner_texts()


def test_filter_page_sort_and_compare_runs_from_the_keyboard(watched: Watched, strict: Strict) -> None:
    page = watched.page
    watched.log_in(strict.keys["data_scientist"])
    watched.open("/ui/runs?experiment=sweep&per=20", "runs")
    assert len(row_names(page)) == 20 and "25 runs · page 1 of 2" in page.locator("nav.pager").inner_text()
    with watched.navigating("runs-page-2"):
        page.get_by_role("link", name="Next").click()
    assert len(row_names(page)) == SWEEP - 20 and "page 2 of 2" in page.locator("nav.pager").inner_text()

    page.get_by_label("Filter").fill("params.lr > 0.205")  # the last five: lr 0.21 .. 0.25
    with watched.navigating("runs-filtered"):
        page.keyboard.press("Enter")
    assert sorted(row_names(page)) == [f"trial-{i}" for i in range(20, SWEEP)]
    assert "filter=params.lr" in page.url and "page=" not in page.url.split("filter")[1]

    # sort by the metric: its header link, reached with the keyboard, Enter twice (descending, ascending)
    for direction, expected in (("desc", 24), ("asc", 20)):
        page.locator('thead a[href*="sort=metrics.auc"]').focus()
        with watched.navigating(f"runs-sorted-{direction}"):
            page.keyboard.press("Enter")
        assert row_names(page)[0] == f"trial-{expected}", direction
        assert page.locator("th[aria-sort]").inner_text().startswith("metrics.auc")

    # tick three rows with Space, moving by Tab (checkbox, then the run's link, then the next checkbox)
    page.locator("tbody input[type=checkbox]").first.focus()
    for _ in range(3):
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
    assert page.locator("tbody input[type=checkbox]:checked").count() == 3
    page.get_by_role("button", name="Compare selected (2–10)").focus()
    with watched.navigating("runs-compare"):
        page.keyboard.press("Enter")
    assert "/ui/runs/compare" in page.url and page.url.count("ids=") == 3
    assert page.locator("main ul.plain li").count() == 3
    assert page.locator(".curves canvas").count() >= 1  # uPlot drew the overlaid auc curves
    assert page.locator('[role=region][tabindex="0"] svg').count() == 1  # parallel coordinates, scrollable
    page.get_by_role("heading", name="Parameters, metrics and tags").wait_for()

    answer = watched.open("/ui/runs?experiment=sweep&filter=params.lr+%3E%3E+1", "runs-bad-filter")
    assert answer.status == 400
    watched.forgive(400)
    assert page.get_by_role("alert").count() == 1 and len(row_names(page)) == 0
    watched.assert_clean()


def test_a_promotion_to_production_is_approved_by_a_second_user(watched: Watched, strict: Strict) -> None:
    page, project = watched.page, strict.project
    watched.log_in(strict.keys["ml_engineer"])
    watched.open("/ui/models/fraud", "model")
    page.get_by_label("Promote v2 to").select_option("production")
    page.get_by_label("Why", exact=True).first.fill("smaller trees, same AUC")
    with watched.navigating("model-requested"):
        page.locator('form[action="/ui/models/fraud/2/promote"] button').click()
    assert page.get_by_role("heading", name="Waiting for approval").count() == 1
    assert page.get_by_role("button", name="Approve v2 → production").count() == 0  # not the requester's
    assert project.models.get("fraud", 2).stage == "none"
    watched.log_out()

    watched.log_in(strict.keys["mlops"])
    watched.open("/ui/models/fraud", "model-to-approve")
    assert "ui-ml_engineer" in page.locator("#pending ~ table, section table").first.inner_text()
    with watched.navigating("model-approved"):
        page.get_by_role("button", name="Approve v2 → production").click()
    assert page.get_by_role("heading", name="Waiting for approval").count() == 0
    assert project.models.get("fraud", 2).stage == "production"
    row = page.locator("tbody tr", has=page.locator('a[href="/ui/models/fraud/2"]')).first
    assert "production" in row.inner_text()
    events = project.audit.events(resource="model:fraud", action="models.*")
    assert [(e.action, e.actor) for e in events[-2:]] == [("models.promote", "ui-ml_engineer"),
                                                          ("models.approve", "ui-mlops")]  # fmt: skip
    watched.assert_clean()


def test_a_canary_is_rolled_back_from_the_page_and_the_revision_changes(
    watched: Watched, strict: Strict, ui_project: Project
) -> None:
    page = watched.page
    before = ui_project.deployments.get("fraud")
    canary = ui_project.deploy("fraud", "fraud", version=2, canary=0.1)
    watched.log_in(strict.keys["mlops"])
    watched.open("/ui/deployments/fraud", "deployment-canary")
    assert f"revision {canary.revision}" in page.locator("#split").inner_text()
    assert "v2 10.0%" in page.locator("main").inner_text()
    with watched.navigating("deployment-confirm"):
        page.get_by_role("link", name="Roll back…").click()
    assert f"restores revision {before.revision}" in page.locator("main").inner_text()
    with watched.navigating("deployment-rolled-back"):
        page.get_by_role("button", name=f"Roll back fraud to revision {before.revision}").click()
    assert page.url == f"{watched.server.url}/ui/deployments/fraud"
    after = ui_project.deployments.get("fraud")
    assert after.revision == canary.revision + 1 and after.kind == "rollback"
    assert [(r.version, r.weight) for r in after.routes] == [(r.version, r.weight) for r in before.routes]
    split = page.locator("section", has=page.locator("#split")).inner_text()
    assert f"revision {after.revision}" in split and "v1: 100.0%" in split and "v2" not in split
    live = page.locator("tbody tr", has=page.locator(".tag.ok", has_text="live"))
    assert live.count() == 1 and live.locator("th").inner_text().startswith(str(after.revision))
    event = ui_project.audit.events(resource="endpoint:fraud", action="deployments.rollback")[-1]
    assert event.actor == "ui-mlops" and event.payload["revision"] == after.revision
    watched.assert_clean()


FORGE = """async ([path, fields]) => {
  const body = new URLSearchParams(fields);
  body.set("csrf", document.querySelector("input[name=csrf]").value);  // this session's own token
  const answer = await fetch(path, {method: "POST", body, redirect: "manual"});
  return answer.status;
}"""


def test_a_read_only_users_forged_posts_are_refused(watched: Watched, strict: Strict,
                                                    ui_project: Project) -> None:  # fmt: skip
    page = watched.page
    ui_project.deploy("fraud", "fraud", version=2, canary=0.1)
    live, events = ui_project.deployments.get("fraud"), len(ui_project.audit.events())
    watched.log_in(strict.keys["auditor"])
    for path in ("/ui/deployments/fraud", "/ui/models/fraud", "/ui/loop?endpoint=fraud"):
        assert watched.open(path, path[4:].replace("/", "-").replace("?", "-")).status == 200, path
        assert page.locator("main form[method=post], main form[method=post] button").count() == 0, path
        assert page.get_by_role("link", name="Roll back…").count() == 0, path
    forged = {
        "/ui/deployments/fraud/rollback": {"confirm": "yes"},
        "/ui/models/fraud/1/promote": {"to": "archived"},
        "/ui/models/fraud/2/decide": {"to": "production", "decision": "approve"},
        "/ui/loop/fraud/pause": {},
    }
    for path, fields in forged.items():
        assert page.evaluate(FORGE, [path, fields]) == 403, path
    watched.forgive(403)  # the console reports each refusal
    # a form on another site posting to the dashboard: no session travels with it (SameSite), nothing moves
    page.goto("about:blank")
    page.set_content(f'<form method="post" action="{watched.server.url}/ui/deployments/fraud/rollback">'
                     '<input name="confirm" value="yes"><button>go</button></form>')  # fmt: skip
    with watched.navigating("forged-from-elsewhere"):
        page.get_by_role("button", name="go").click()
    assert "/ui/login" in page.url
    assert ui_project.deployments.get("fraud").revision == live.revision
    assert len(ui_project.audit.events()) == events
    assert ui_project.models.get("fraud", 1).stage != "archived"
    watched.assert_clean()

"""The dashboard in a real browser (Chromium through Playwright) against a real ``mloop serve`` that needs
keys: log in, open every page of the navigation, with no request leaving the machine and no script error;
keyboard navigation; log out. A screenshot of each page goes to a folder (kept with
``MLOOP_UI_SCREENSHOTS=DIR``), named in any failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mloop import Project
from mloop.ui.render import NAV
from tests.browser import chromium
from tests.serving.http.running import Server, mloop_serve
from tests.ui.conftest import Strict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def server(strict: Strict, ui_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """``mloop serve`` as a shared server runs: local_admin off, its own identity an admin's key."""
    monkeypatch.setenv("MLOOP_LOCAL_ADMIN", "false")
    monkeypatch.setenv("MLOOP_API_KEY", strict.keys["admin"])
    with mloop_serve(Path(ui_project.root)) as running:
        yield running


class Watched:
    """A page whose script errors and off-machine requests are recorded (those requests are refused)."""

    def __init__(self, browser: Any, shots: Path) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.shots = shots
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

    def open(self, url: str, name: str) -> Any:
        answer = self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        return answer


def test_log_in_visit_every_page_and_log_out(browser: Any, server: Server, strict: Strict,
                                             tmp_path: Path) -> None:  # fmt: skip
    shots = tmp_path / "screenshots"
    shots.mkdir()
    watched = Watched(browser, shots)
    page = watched.page
    try:
        watched.open(f"{server.url}/ui/", "login")
        assert "/ui/login" in page.url
        page.get_by_label("API key").fill(strict.keys["admin"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{server.url}/ui/")
        assert page.get_by_text("ui-admin").count() >= 1
        for key, label, href in NAV:
            answer = watched.open(f"{server.url}{href}", key)
            assert answer is not None and answer.status == 200, (
                f"{href}: {answer and answer.status} ({shots})"
            )
            assert page.get_by_role("heading", level=1).count() == 1, href
            assert page.locator('nav a[aria-current="page"]').inner_text() == label, href
        page.keyboard.press("Tab")  # the first focusable element is the brand link, then the navigation
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == NAV[0][2]
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{server.url}/ui/login")
        watched.open(f"{server.url}/ui/runs", "after-logout")
        assert "/ui/login" in page.url
        assert watched.outside == [], watched.outside
        assert watched.errors == [], f"{watched.errors} ({shots})"
    finally:
        keep = os.environ.get("MLOOP_UI_SCREENSHOTS")
        if keep:
            shutil.copytree(shots, keep, dirs_exist_ok=True)
        watched.context.close()

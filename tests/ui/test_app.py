"""Logging in to the dashboard, its CSRF rule and its assets, on the strict project (local_admin off)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from mloop import Project
from mloop.serving.http.app import create_app
from tests.ui.conftest import Strict, csrf, login


def test_without_a_session_every_page_leads_to_the_login_form_and_back(strict: Strict) -> None:
    client = strict.client()
    answer = client.get("/ui/?x=1")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login?next=/ui/?x=1"
    assert client.get("/ui/", headers={"HX-Request": "true"}).status_code == 401
    token = csrf(client)
    back = client.post(
        "/ui/login", data={"api_key": strict.keys["data_scientist"], "csrf": token, "next": "/ui/?x=1"}
    )
    assert back.status_code == 303 and back.headers["location"] == "/ui/?x=1"
    cookie = back.headers["set-cookie"]
    assert "mloop_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert strict.keys["data_scientist"] not in cookie  # sealed, not the key itself
    page = client.get("/ui/")
    assert page.status_code == 200 and "ui-data_scientist" in page.text


def test_a_wrong_key_is_named_and_a_login_never_redirects_off_the_dashboard(strict: Strict) -> None:
    client = strict.client()
    wrong = client.post("/ui/login", data={"api_key": "mlk_nope", "csrf": csrf(client), "next": "/ui/"})
    assert wrong.status_code == 401 and "mloop_session" not in wrong.headers.get("set-cookie", "")
    assert re.search(r'role="alert">[^<]*key', wrong.text, re.I), wrong.text
    away = client.post("/ui/login", data={"api_key": strict.keys["data_scientist"], "csrf": csrf(client),
                                          "next": "https://evil.example/"})  # fmt: skip
    assert away.headers["location"] == "/ui/"


def test_a_login_or_logout_without_the_form_token_is_refused(strict: Strict) -> None:
    client = strict.client()
    client.get("/ui/login")  # the browser has its CSRF cookie; a forged form does not know the token
    forged = client.post("/ui/login", data={"api_key": strict.keys["admin"], "csrf": "guess", "next": "/ui/"})
    assert forged.status_code == 401 and "mloop_session" not in forged.headers.get("set-cookie", "")
    login(client, strict.keys["admin"])
    assert client.post("/ui/logout", data={"csrf": "guess"}).status_code == 403
    out = client.post("/ui/logout", data={"csrf": csrf(client, "/ui/")})
    assert out.status_code == 303
    assert client.get("/ui/").status_code == 303  # logged out


def test_a_revoked_key_ends_its_session_at_the_next_click(strict: Strict, ui_project: Project) -> None:
    ui_project.users.add("ui-leaver", ["data_scientist"])
    issued = ui_project.keys.issue("ui-leaver")
    client = strict.client()
    login(client, issued.token)
    assert client.get("/ui/").status_code == 200
    ui_project.keys.revoke(issued.key_id)
    assert client.get("/ui/").status_code == 303


def test_a_tampered_or_foreign_cookie_is_no_session(strict: Strict) -> None:
    client = strict.client("data_scientist")
    sealed = client.cookies["mloop_session"]
    client.cookies.set("mloop_session", sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"),
                       path="/ui")  # fmt: skip
    assert client.get("/ui/").status_code == 303


def test_the_overview_lists_the_endpoint_and_the_assets_are_served_from_the_package(ui: TestClient) -> None:
    page = ui.get("/ui/")
    assert page.status_code == 200
    assert 'href="/ui/deployments/fraud"' in page.text and "v1 100.0%" in page.text
    for src in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text):
        assert ui.get(src).status_code == 200, src
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)  # nothing from another host
    live = ui.get("/ui/overview/live/fraud")
    assert live.status_code == 200 and "no request in the last hour" in live.text


def test_mloop_serve_serves_the_dashboard_too(ui_project: Project) -> None:
    with TestClient(create_app(ui_project)) as client:
        assert client.get("/ui/").status_code == 200
        assert client.get("/ui/static/htmx.min.js").status_code == 200
        mistyped = client.get("/ui/modles/fraud")  # served by mloop serve, yet the dashboard's page answers
        assert mistyped.status_code == 404 and "text/html" in mistyped.headers["content-type"]
        assert "No dashboard page /ui/modles/fraud" in mistyped.text and "/ui/models" in mistyped.text
        assert client.get("/ui/static/nope.js").status_code == 404  # the assets are not caught
        assert client.get("/v1/endpoints/nope").headers["content-type"].startswith("application/json")


def test_an_unknown_dashboard_path_needs_a_login_first(strict: Strict) -> None:
    answer = strict.client().get("/ui/nowhere")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login?next=/ui/nowhere"

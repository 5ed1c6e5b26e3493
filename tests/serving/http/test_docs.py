"""``/docs`` and ``/redoc`` render offline: every script, style and icon they load is served by mloop."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.serving.http.app import create_app

TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    project = Project.open(tmp_path_factory.mktemp("docs"), env={})
    yield TestClient(create_app(project))
    project.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_the_internet(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert not re.findall(r"(?:https?:)?//[\w.-]+\.\w+", html.text), "a URL off this server"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert {a.rsplit(".", 1)[1] for a in assets} >= (
        {"js", "css", "png"} if page == "/docs" else {"js", "png"}
    )
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"].startswith(TYPES["." + asset.rsplit(".", 1)[1]]), asset
        assert len(answer.content) > 500


def test_the_pages_point_at_the_openapi_document_which_lists_the_routes(client: TestClient) -> None:
    assert (
        "'/openapi.json'" in client.get("/docs").text
        and 'spec-url="/openapi.json"' in client.get("/redoc").text
    )
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/endpoints/{name}/predict" in paths and "/v1/feedback" in paths
    assert not any(p.startswith("/static") for p in paths)


def test_the_oauth2_redirect_page_of_swagger_ui_is_served(client: TestClient) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 200

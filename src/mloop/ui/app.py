"""The dashboard's routes under ``/ui``: login, logout, the vendored assets and each page's router.

``mount(app, project)`` adds them to ``mloop serve``'s app; ``create_ui_app(project)`` is an app with the
dashboard alone (``mloop ui``). Pages live one per module in :mod:`mloop.ui.pages`; each is thin: it reads
through the project's services as the viewer (so a role sees exactly what the API would show it) and
renders a template. Errors render as pages: no session goes to the login form (401 to htmx requests), a
permission the viewer lacks or a forged form is 403, an unknown name 404.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from mloop._version import __version__
from mloop.errors import AuthenticationError, MloopError, NotFound, PermissionDenied
from mloop.project import Project
from mloop.ui import pages
from mloop.ui.forms import form
from mloop.ui.render import NAV, error_page, render
from mloop.ui.session import LoginNeeded, Sessions

STATIC = Path(__file__).with_name("static")
logger = logging.getLogger(__name__)


def mount(app: FastAPI, project: Project) -> None:
    """Serve the dashboard at ``/ui`` on ``app``."""
    sessions = Sessions(project)
    app.state.ui_sessions = sessions
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(_auth_router(sessions), include_in_schema=False)
    for page in pages.routers(sessions):
        app.include_router(page, prefix="/ui", include_in_schema=False)
    app.include_router(_unknown_router(sessions), include_in_schema=False)  # last: after every page
    app.add_exception_handler(LoginNeeded, _login_needed)  # type: ignore[arg-type]


def create_ui_app(project: Project) -> FastAPI:
    """An app with the dashboard alone (``mloop ui``): no inference, no prediction log."""
    app = FastAPI(
        title="mloop dashboard", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    mount(app, project)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/v2/health/live", include_in_schema=False)
    def live() -> dict[str, bool]:
        return {"live": True}

    return app


def warm(project: Project) -> threading.Thread:
    """Read each endpoint's log summaries once, in a background thread, so that the first Overview and
    Monitoring pages after a start do not wait for every Parquet part of the log to be read (seconds at
    10 million rows; :mod:`mloop.predictions.summary` keeps what it read). For ``mloop ui``, whose process
    serves no predictions; ``mloop serve`` leaves it to the first view, to keep its CPU for requests."""

    def run() -> None:
        try:
            for deployment in project.deployments.list():
                project.monitoring.slo(deployment.endpoint)
                project.monitoring.report(deployment.endpoint, since="7d", stored=True)
        except MloopError as exc:  # a key without monitoring.read: the pages read on first view instead
            logger.info("dashboard: summaries not read ahead (%s)", exc)

    thread = threading.Thread(target=run, name="mloop-ui-warm", daemon=True)
    thread.start()
    return thread


def _auth_router(sessions: Sessions) -> APIRouter:
    router = APIRouter()

    @router.get("/ui/login")
    def login_page(request: Request, next: str = "/ui/") -> HTMLResponse:
        return render(request, "login.html", sessions.project, title="Log in", next=_local(next), message="")

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        fields = await form(request)
        target = _local(fields.get("next", "/ui/"))
        try:
            sessions.check_csrf(request, fields.get("csrf"))
            response = RedirectResponse(target, status_code=303)
            sessions.login(response, fields.get("api_key", ""), secure=request.url.scheme == "https")
        except (AuthenticationError, PermissionDenied) as exc:
            return render(request, "login.html", sessions.project, status=401, title="Log in", next=target,
                          message=str(exc))  # fmt: skip
        return response

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        try:
            await sessions.posted(request)
        except PermissionDenied as exc:
            return error_page(request, sessions.viewer(request), exc)
        response = RedirectResponse("/ui/login", status_code=303)
        sessions.logout(response)
        return response

    return router


def _unknown_router(sessions: Sessions) -> APIRouter:
    """A mistyped dashboard URL gets the dashboard's 404 page, which names the pages, not the API's JSON."""
    router = APIRouter()

    @router.get("/ui/{rest:path}")
    def unknown(request: Request, rest: str) -> HTMLResponse:
        pages = ", ".join(href for _, _, href in NAV)
        return error_page(request, sessions.viewer(request),
                          NotFound(f"No dashboard page /ui/{rest}; the pages are {pages}."))  # fmt: skip

    return router


def _local(target: str) -> str:
    """Only a path inside the dashboard: a login never redirects to another site."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


def _login_needed(request: Request, exc: LoginNeeded) -> Response:
    if request.headers.get("hx-request"):
        return HTMLResponse("Log in again.", status_code=401, headers={"HX-Redirect": "/ui/login"})
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&")
    if request.method != "GET":
        target = "/ui/"
    return RedirectResponse(f"/ui/login?next={target}", status_code=303)

"""``/ui/``: every endpoint at a glance (its live deployment, the loop's state and last decision, open
alerts), with each endpoint's last hour (requests, p99, errors) and SLO budgets loaded live by htmx (they
read the prediction log). The p99 shown is the highest of the versions' (each version's own is on the
endpoint's page).
The same from the CLI: ``mloop deployments list``, ``mloop loop status``, ``mloop monitor slo ENDPOINT``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop.errors import MloopError
from mloop.project import Project
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/")
    def overview(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            rows = [_endpoint(viewer, d) for d in viewer.deployments.list()]
            alerts = viewer.monitoring.alerts(open_only=True) if viewer.actor.can("monitoring.read") else []
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "overview.html", viewer, title="Overview", page="overview", rows=rows,
                      alerts=alerts, cli="mloop deployments list && mloop loop status")  # fmt: skip

    @r.get("/overview/live/{endpoint}")
    def live(request: Request, endpoint: str) -> HTMLResponse:
        """The last hour of the endpoint (answered requests, p99, errors: what callers got, shadows left
        out) and its SLO budgets, both read from the prediction log."""
        viewer = sessions.viewer(request)
        try:
            served = [v for v in viewer.monitoring.traffic(endpoint, since="1h") if not v["shadow"]]
            budgets = viewer.monitoring.slo(endpoint)
        except MloopError as exc:
            return HTMLResponse(f"<span class=muted>{_escape(str(exc))}</span>", status_code=200)
        requests = sum(v["requests"] for v in served)
        errors = sum(v["errors"] for v in served)
        p99 = max((v["p99_ms"] for v in served if v["p99_ms"] is not None), default=None)
        return render(request, "fragments/live.html", viewer, requests=requests, errors=errors, p99=p99,
                      budgets=budgets)  # fmt: skip

    return r


def _endpoint(viewer: Project, deployment: Any) -> dict[str, Any]:
    state = viewer.loop.state(deployment.endpoint)
    timeline = viewer.loop.timeline(deployment.endpoint, alerts=False)
    return {"deployment": deployment, "state": state, "last": timeline[-1] if timeline else None}


def _escape(text: str) -> str:
    from html import escape

    return escape(text)

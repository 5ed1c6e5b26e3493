"""``/ui/deployments``: every endpoint's live revision; ``/ui/deployments/ENDPOINT``: its traffic split, the
loop's canary progress, live figures per version (requests, p99 latency, errors over the last hour, from the
prediction log, refreshed every 10 s) and its revision history, with a Rollback button for those holding
``deployments.rollback``. A rollback asks for confirmation first (a page saying what will serve afterwards,
whose form carries ``confirm=yes``) and is audited by the deployment service like any other revision.
The same from the CLI: ``mloop deployments list``, ``mloop deployments show|history ENDPOINT``,
``mloop rollback ENDPOINT``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mloop.deployments.revision import Deployment
from mloop.errors import MloopError
from mloop.ui.pages._paging import Paging
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

COLOURS = ("#1f5fbf", "#e0891b", "#2f9e57", "#8e44ad", "#c0392b", "#16a2b8")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/deployments")
    def deployments(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        try:
            rows = viewer.deployments.list(include_inactive=True, offset=paging.offset, limit=paging.per)
            total = viewer.deployments.count()
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "deployments.html", viewer, title="Deployments", page="deployments", rows=rows,
                      pager=paging.links(request, total, label="endpoints"), cli="mloop deployments list --all")  # fmt: skip

    @r.get("/deployments/{endpoint}")
    def endpoint(request: Request, endpoint: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        resource = f"endpoint:{endpoint}"
        try:
            live = viewer.deployments.get(endpoint)
            history = viewer.deployments.history(
                endpoint, offset=paging.offset, limit=paging.per, newest_first=True
            )
            state = viewer.loop.state(endpoint) if viewer.actor.can("loop.read", resource) else None
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "deployment.html", viewer, title=f"Endpoint {endpoint}", page="deployments",
                      live=live, history=history, state=state, bar=split_bar(live), resource=resource,
                      pager=paging.links(request, live.revision, label="revisions"),
                      cli=f"mloop deployments show {endpoint} && mloop deployments history {endpoint}")  # fmt: skip

    @r.get("/deployments/{endpoint}/live")
    def live_figures(request: Request, endpoint: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            rows, message = viewer.monitoring.traffic(endpoint, since="1h"), ""
        except MloopError as exc:
            rows, message = [], str(exc)
        return render(request, "fragments/deployment_live.html", viewer, rows=rows, message=message)

    @r.get("/deployments/{endpoint}/rollback")
    def confirm(request: Request, endpoint: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            viewer.actor.require("deployments.rollback", f"endpoint:{endpoint}")
            live = viewer.deployments.get(endpoint)
            target = viewer.deployments.get(endpoint, live.previous) if live.previous is not None else None
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "deployment_rollback.html", viewer, title=f"Roll back {endpoint}?",
                      page="deployments", live=live, target=target, cli=f"mloop rollback {endpoint}")  # fmt: skip

    @r.post("/deployments/{endpoint}/rollback")
    async def rollback(request: Request, endpoint: str) -> Response:
        viewer = sessions.viewer(request)
        try:
            fields = await sessions.posted(request)
            if fields.get("confirm") != "yes":
                raise MloopError(
                    f"A rollback of {endpoint!r} needs confirming: open /ui/deployments/{endpoint}/rollback, "
                    "check what will serve afterwards, and press Roll back there."
                )
            viewer.deployments.rollback(endpoint)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return RedirectResponse(f"/ui/deployments/{endpoint}", status_code=303)

    return r


def split_bar(d: Deployment) -> list[dict[str, Any]]:
    """The traffic split as segments of a 100-wide bar: version, share, start, width, colour."""
    out, start = [], 0.0
    for i, route in enumerate(d.routes):
        width = route.weight * 100
        out.append({"version": route.version, "share": route.weight, "x": start, "width": width,
                    "colour": COLOURS[i % len(COLOURS)]})  # fmt: skip
        start += width
    return out

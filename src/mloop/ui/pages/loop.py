"""``/ui/loop``: the endpoints the loop can drive; ``/ui/loop?endpoint=E``: one endpoint's loop state and its
timeline of decisions (triggers, gates with their checks, canary steps, promotions, rollbacks, alerts),
newest first and paged in the database, with pause, resume and approve for whoever holds ``loop.operate``.
The same from the CLI: ``mloop loop status E``, ``mloop loop timeline E``, ``mloop loop pause E``."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mloop.errors import MloopError, NotFound
from mloop.project import Project
from mloop.ui.pages._decisions import STATS, entry
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

ACTIONS = ("pause", "resume", "approve")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/loop")
    def loop_page(request: Request, endpoint: str = "", before: int | None = None, after: int | None = None,
                  per: int = 50) -> HTMLResponse:  # fmt: skip
        viewer = sessions.viewer(request)
        try:
            known = _endpoints(viewer)
            if not endpoint:
                return render(request, "loop.html", viewer, title="Loop", page="loop", endpoints=known,
                              endpoint="", cli="mloop loop timeline")  # fmt: skip
            _require_known(endpoint, known)
            state = viewer.loop.state(endpoint)
            found = viewer.loop.timeline_page(endpoint, before=before, after=after, limit=per)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        operate = viewer.actor.can(
            "loop.operate", f"endpoint:{endpoint}"
        )  # the service still checks each POST
        return render(request, "loop.html", viewer, title=f"Loop · {endpoint}", page="loop", endpoints=known,
                      endpoint=endpoint, state=state, entries=[entry(e) for e in found.events], older=found.older,
                      newer=found.newer, per=per, stats=STATS, operate=operate,
                      cli=f"mloop loop status {endpoint} && mloop loop timeline {endpoint}")  # fmt: skip

    @r.post("/loop/{endpoint}/{action}")
    async def act(request: Request, endpoint: str, action: str) -> Response:
        viewer = sessions.viewer(request)
        try:
            fields = await sessions.posted(request)
            if action not in ACTIONS:
                raise NotFound(f"No loop action {action!r}; the loop can be told to {', '.join(ACTIONS)}.")
            _require_known(endpoint, _endpoints(viewer))
            if action == "pause":
                viewer.loop.pause(endpoint, reason=fields.get("reason", "").strip())
            elif action == "resume":
                viewer.loop.resume(endpoint)
            else:
                viewer.loop.approve(endpoint)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return RedirectResponse(f"/ui/loop?endpoint={quote(endpoint)}", status_code=303)

    return r


def _endpoints(viewer: Project) -> list[str]:
    """The endpoints the loop can act on: those deployed (now or before) and those with a loop policy."""
    known = {d.endpoint for d in viewer.deployments.list(include_inactive=True)}
    known |= {str(p["endpoint"]) for p in viewer.settings.loop.policies if p.get("endpoint")}
    return sorted(known)


def _require_known(endpoint: str, known: list[str]) -> None:
    # Without this a typo would get a loop of its own: an idle page, and a pause recorded for nothing.
    if endpoint not in known:
        raise NotFound(
            f"No endpoint {endpoint!r} (endpoints: {', '.join(known) or 'none yet'}). Deploy one with "
            f"`mloop deploy {endpoint} MODEL --version N`, or give it a policy under loop.policies in mloop.yaml."
        )

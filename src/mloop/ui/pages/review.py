"""``/ui/review``: the architecture review of the project (the ML Test Score, the maturity level and every
finding with its evidence and fix, filtered by concern and status); ``/ui/review/report`` downloads the
self-contained HTML report for a review meeting. Needs ``review.read``. The same from the CLI:
``mloop review``."""

from __future__ import annotations

import shlex

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop.errors import MloopError
from mloop.review.model import CONCERNS
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

SHOWN = ("problems", "all")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/review")
    def review_page(request: Request, concern: str = "", show: str = "problems") -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            found = viewer.review(only=[concern] if concern in CONCERNS else [])
        except MloopError as exc:
            return error_page(request, viewer, exc)
        show = show if show in SHOWN else "problems"
        groups = {
            c: [f for f in fs if show == "all" or f.status not in ("pass", "n/a")]
            for c, fs in found.by_concern().items()
        }
        cli = "mloop review" + (f" --only {shlex.quote(concern)}" if concern in CONCERNS else "")
        return render(request, "review.html", viewer, title="Architecture review", page="review", review=found,
                      groups=groups, concerns=CONCERNS, concern=concern, show=show,
                      cli=cli + (" --all" if show == "all" else ""))  # fmt: skip

    @r.get("/review/report")
    def report(request: Request) -> HTMLResponse:
        from mloop.review import render as review_render

        viewer = sessions.viewer(request)
        try:
            found = viewer.review()
        except MloopError as exc:
            return error_page(request, viewer, exc)
        name = f"review-{found.project}-{found.at:%Y%m%d-%H%M}.html"
        return HTMLResponse(review_render.html(found),
                            headers={"content-disposition": f'attachment; filename="{name}"'})  # fmt: skip

    return r

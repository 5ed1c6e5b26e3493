"""``/v1/review``: what ``mloop review`` shows, as JSON, Markdown or a self-contained HTML report.
Parse, call ``project.review``, answer; no logic here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from mloop.project import Project

_REVIEW: dict[int | str, dict[str, Any]] = {
    200: {"description": "The review as JSON (default), Markdown or HTML (format=markdown|html).",
          "content": {"application/json": {"schema": {"type": "object"}}, "text/html": {}, "text/markdown": {}}}}  # fmt: skip


def router(caller: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["review"])

    @api.get("/review", responses=_REVIEW)
    def review(only: list[str] = Query([], description="Only checks whose id starts so (repeatable)."),
               format: str = Query("json", pattern="^(json|markdown|html)$"),
               project: Project = Depends(caller)) -> Any:  # fmt: skip
        from mloop.review import render

        found = project.review(only=only)
        if format == "html":
            return HTMLResponse(render.html(found))
        if format == "markdown":
            return PlainTextResponse(render.markdown(found), media_type="text/markdown; charset=utf-8")
        return JSONResponse(found.to_dict())

    return api

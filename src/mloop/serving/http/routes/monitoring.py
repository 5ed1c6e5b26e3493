"""``/v1/monitoring/{endpoint}/...``: what ``mloop monitor`` shows, as JSON (and the report as HTML).
Parse, call ``project.monitoring``, answer; no logic here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse

from mloop.project import Project

Since = Query("1d", min_length=1, description="How far back: a duration (7d, 12h) or an ISO time.")
Window = Query(None, min_length=1, description="Window size (default monitoring.window, coarser when the "
               "range would hold over 1,000 of them).")  # fmt: skip
_REPORT: dict[int | str, dict[str, Any]] = {
    200: {"description": "The report: HTML, or its data as JSON with format=json.",
          "content": {"application/json": {"schema": {"type": "object"}}}}}  # fmt: skip
Partial = Query(False, description="Also the window still open now (not stored).")


def router(caller: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

    @api.get("/{endpoint}/drift")
    def drift(endpoint: str, since: str = Since, window: str | None = Window, partial: bool = Partial,
              project: Project = Depends(caller)) -> list[dict[str, Any]]:  # fmt: skip
        return project.monitoring.drift(endpoint, since=since, window=window, partial=partial)

    @api.get("/{endpoint}/performance")
    def performance(endpoint: str, since: str = Since, window: str | None = Window, partial: bool = Partial,
                    project: Project = Depends(caller)) -> list[dict[str, Any]]:  # fmt: skip
        return project.monitoring.performance(endpoint, since=since, window=window, partial=partial)

    @api.get("/{endpoint}/slo")
    def slo(endpoint: str, project: Project = Depends(caller)) -> list[dict[str, Any]]:
        return project.monitoring.slo(endpoint)

    @api.get("/{endpoint}/alerts")
    def alerts(endpoint: str, open_only: bool = Query(False, alias="open"),
               since: str | None = Query(None, min_length=1),
               project: Project = Depends(caller)) -> list[dict[str, Any]]:  # fmt: skip
        return project.monitoring.alerts(endpoint, open_only=open_only, since=since)

    @api.get("/{endpoint}/report", response_class=HTMLResponse, responses=_REPORT)
    def report(endpoint: str, since: str = Query("7d", min_length=1), window: str | None = Window,
               format: str = Query("html", pattern="^(html|json)$"), project: Project = Depends(caller)) -> Any:  # fmt: skip
        from mloop.monitoring.report import render_html

        found = project.monitoring.report(endpoint, since=since, window=window)
        return JSONResponse(found) if format == "json" else HTMLResponse(render_html(found))

    return api

"""``/ui/models``: registered models; ``/ui/models/NAME``: a model's versions with their stage, aliases and
metrics, its pending promotions and the newest version's card and lineage; ``/ui/models/NAME/VERSION``: one
version. Promote and approve (or reject) are forms that call the registry as the viewer, so the registry's
rules hold as in the API: ``models.promote`` to promote, ``models.approve`` and not the requester to approve.
The same from the CLI: ``mloop models list``, ``mloop models show NAME [VERSION]``, ``mloop models card``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mloop.errors import MloopError
from mloop.project import Project
from mloop.registry import ModelVersion
from mloop.registry.card import shown_metric
from mloop.ui.pages._lineage import layout
from mloop.ui.pages._paging import Paging
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

STAGES = ("staging", "production", "archived")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/models")
    def models(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        try:
            rows = viewer.models.list(offset=paging.offset, limit=paging.per)
            total = viewer.models.count()
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "models.html", viewer, title="Models", page="models", rows=rows,
                      pager=paging.links(request, total, label="models"), cli="mloop models list")  # fmt: skip

    @r.get("/models/{name}")
    def model(request: Request, name: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        try:
            versions = viewer.models.list_versions(
                name, offset=paging.offset, limit=paging.per, newest_first=True
            )
            total = viewer.models.count_versions(name)
            pending = viewer.models.promotions(name, status="pending")
            newest = viewer.models.get(name) if total else None
            focus = _version_view(viewer, newest) if newest is not None else {}
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "model.html", viewer, title=f"Model {name}", page="models", name=name,
                      versions=versions, pending=pending, stages=STAGES, resource=f"model:{name}",
                      pager=paging.links(request, total, label="versions"), cli=f"mloop models show {name}",
                      **focus)  # fmt: skip

    @r.get("/models/{name}/{version}")
    def version(request: Request, name: str, version: int) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            found = viewer.models.get(name, version)
            pending = [p for p in viewer.models.promotions(name, status="pending") if p.version == version]
            focus = _version_view(viewer, found)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "model_version.html", viewer, title=f"{name} version {version}", page="models",
                      name=name, pending=pending, stages=STAGES, resource=f"model:{name}",
                      cli=f"mloop models show {name} {version} && mloop models card {name} {version}",
                      **focus)  # fmt: skip

    @r.post("/models/{name}/{version}/promote")
    async def promote(request: Request, name: str, version: int) -> Response:
        viewer = sessions.viewer(request)
        try:
            fields = await sessions.posted(request)
            viewer.models.promote(name, version, to=fields.get("to", ""), comment=fields.get("comment", ""))
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return RedirectResponse(_back(fields, name), status_code=303)

    @r.post("/models/{name}/{version}/decide")
    async def decide(request: Request, name: str, version: int) -> Response:
        viewer = sessions.viewer(request)
        try:
            fields = await sessions.posted(request)
            to, comment = fields.get("to", "production"), fields.get("comment", "")
            if fields.get("decision") == "reject":
                viewer.models.reject(name, version, to=to, comment=comment)
            else:
                viewer.models.approve(name, version, to=to, comment=comment)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return RedirectResponse(_back(fields, name), status_code=303)

    return r


def _version_view(viewer: Project, found: ModelVersion) -> dict[str, Any]:
    """What the card and lineage sections of a page show for one version."""
    card = found.card or {}
    serving = viewer.deployments.serving(found.name, found.version)
    graph = layout(viewer.models.lineage(found.name, found.version), found.name, found.version, serving)
    markdown = viewer.models.card(found.name, found.version)
    return {"focus": found, "card": card, "card_markdown": markdown, "graph": graph, "serving": serving,
            "card_metrics": metric_table(card.get("metrics") or {})}  # fmt: skip


def metric_table(metrics: dict[str, Any]) -> dict[str, Any]:
    """A card's metrics as a table: splits as columns when they are nested by split, else one column; counts
    and settings (rows, tp, threshold...) left out, as ``mloop models card`` leaves them out."""
    nested = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    if nested:
        names = sorted({m for split in nested.values() for m, v in split.items() if shown_metric(m, v)})
        return {"columns": list(nested), "rows": [(m, [nested[s].get(m) for s in nested]) for m in names]}
    flat = [(k, [v]) for k, v in sorted(metrics.items()) if shown_metric(k, v)]
    return {"columns": ["value"], "rows": flat}


def _back(fields: dict[str, str], name: str) -> str:
    """Back to the page the form was on (a dashboard path of this model only)."""
    target = fields.get("back", "")
    return target if target.startswith(f"/ui/models/{name}") and "//" not in target else f"/ui/models/{name}"

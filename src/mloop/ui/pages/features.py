"""``/ui/features``: the feature views (and on-demand views) with their entities, version, freshness
(the newest event materialized, and the watermark's lag behind now) and row counts, paged in the
database; ``/ui/features/{view}``: its versions, who recorded each, and the diff between two of them.
The same from the CLI: ``mloop features list``, ``mloop features show VIEW``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop.errors import MloopError
from mloop.ui.pages._paging import Paging
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

KINDS = ("feature_view", "on_demand_view")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/features")
    def views(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        try:
            found, total = viewer.features.view_page(offset=paging.offset, limit=paging.per)
            names = [v.name for v in found if v.kind == "feature_view"]
            fresh = {f.view: f for f in viewer.features.freshness(views=names)} if names else {}
            counts = viewer.features.row_counts(views=names) if names else {}
        except MloopError as exc:
            return error_page(request, viewer, exc)
        rows = [_row(v, fresh.get(v.name), counts.get(v.name)) for v in found]
        return render(request, "features.html", viewer, title="Features", page="features",
                      cli="mloop features list", rows=rows, pager=paging.links(request, total, label="views"))  # fmt: skip

    @r.get("/features/{view}")
    def view(request: Request, view: str, kind: str = "feature_view", a: int | None = None,
             b: int | None = None) -> HTMLResponse:  # fmt: skip
        viewer = sessions.viewer(request)
        paging = Paging.read(request, per=20)
        kind = kind if kind in KINDS else "feature_view"
        try:
            versions, total = viewer.features.versions(
                view, kind=kind, offset=paging.offset, limit=paging.per
            )
            newest = (
                viewer.features.versions(view, kind=kind, limit=1)[0][0] if paging.page > 1 else versions[0]
            )
            # By default the newest version against the one before it: what the last apply changed.
            after = b if b is not None else newest.version
            before = a if a is not None else max(1, after - 1)
            diff = viewer.features.diff(view, before, after, kind=kind) if before != after else []
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "features_view.html", viewer, title=f"Feature view {view}", page="features",
                      cli=f"mloop features show {view}", name=view, kind=kind, versions=versions, newest=newest,
                      choices=range(newest.version, 0, -1), before=before, after=after, diff=diff,
                      pager=paging.links(request, total, label="versions"))  # fmt: skip

    return r


def _row(view: Any, fresh: Any, counts: Any) -> dict[str, Any]:
    spec = view.spec
    features = [f["name"] for f in spec.get("features", [])] + [
        a["name"] for a in spec.get("aggregations", [])
    ]
    return {
        "name": view.name, "kind": view.kind, "version": view.version, "entities": spec.get("entities", []),
        "source": spec.get("source", {}).get("type", "on demand"), "ttl": spec.get("ttl"),
        "features": features + [f["name"] for f in spec.get("outputs", [])],
        "last_event": fresh.last_event_ts if fresh else None,
        "age": _duration(fresh.age_seconds if fresh else None),
        "lag": _duration(fresh.lag_seconds if fresh else None),
        "online": counts.online if counts else None, "offline": counts.offline if counts else None,
    }  # fmt: skip


def _duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``40s``: the two largest units, as a person reads an age."""
    if seconds is None:
        return "—"
    left, parts = int(max(seconds, 0)), list[str]()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts)

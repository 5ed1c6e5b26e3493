"""``/ui/runs``: the runs of an experiment as a table (the ``runs.search`` filter language, sorting by any
column, pages counted in the database, params and metrics as chosen columns), one run with its metric
curves, and 2 to 10 runs compared (curves overlaid, a parameter diff, parallel coordinates).
The same from the CLI: ``mloop runs list``, ``mloop runs show RUN``, ``mloop runs compare A B``."""

from __future__ import annotations

import math
import shlex
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mloop.errors import MloopError
from mloop.project import Project
from mloop.training import RunInfo
from mloop.ui.pages._runs_charts import COLOURS, aligned_curves, parallel_coordinates
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

PER_PAGE = (20, 50, 100, 200)
MAX_COMPARE = 10


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/runs")
    def runs(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        q = request.query_params
        try:
            names = viewer.runs.experiment_names()
        except MloopError as exc:
            return error_page(request, viewer, exc)
        if not names:
            return render(request, "runs.html", viewer, title="Runs", page="runs", experiments=[], table=None,
                          cli="mloop runs list")  # fmt: skip
        experiment = q.get("experiment") or names[0]  # the newest experiment at first
        table = _Table(experiment, q.get("filter", "").strip(), q.get("sort", "attributes.started_at"),
                       "asc" if q.get("dir") == "asc" else "desc", _whole(q.get("page"), 1),
                       _whole(q.get("per"), 50), [c for c in q.getlist("cols") if c])  # fmt: skip
        try:
            table.load(viewer)
        except MloopError as exc:  # a bad filter or sort: say what is wrong on the page itself
            table.error = str(exc)
        return render(request, "runs.html", viewer, status=400 if table.error else 200, title="Runs",
                      page="runs", experiments=sorted(names), table=table, cli=table.cli())  # fmt: skip

    @r.get("/runs/compare")
    def compare(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        ids = list(
            dict.fromkeys(i.strip() for v in request.query_params.getlist("ids") for i in v.split(","))
        )
        ids = [i for i in ids if i]
        if not 2 <= len(ids) <= MAX_COMPARE:
            message = (f"Pick from 2 to {MAX_COMPARE} runs to compare (got {len(ids)}): tick them in the runs "
                       "table and press Compare, or open /ui/runs/compare?ids=RUN1,RUN2.")  # fmt: skip
            return render(request, "error.html", viewer, status=400, title="Compare runs", page="runs",
                          message=message)  # fmt: skip
        try:
            side = viewer.runs.compare(ids)
            ids = [run["id"] for run in side["runs"]]
            curves = {
                key: aligned_curves([viewer.runs.metric_history(i, key) for i in ids])
                for key in side["metrics"]
            }
        except MloopError as exc:
            return error_page(request, viewer, exc)
        labels = [f"{run['name']} ({run['id'][:8]})" for run in side["runs"]]
        axes = [("params." + k, v) for k, v in side["params"].items()]
        axes += [("metrics." + k, v) for k, v in side["metrics"].items()]
        return render(request, "runs_compare.html", viewer, title="Compare runs", page="runs", side=side,
                      labels=labels, curves=curves, svg=parallel_coordinates(axes, labels), colours=COLOURS,
                      cli="mloop runs compare " + " ".join(ids))  # fmt: skip

    @r.get("/runs/{run_id}")
    def run(request: Request, run_id: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        try:
            info = viewer.runs.get(run_id)
            curves = {
                key: aligned_curves([viewer.runs.metric_history(info.id, key)])
                for key in sorted(info.metrics)
            }
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "run.html", viewer, title=f"Run {info.name}", page="runs", run=info,
                      curves=curves, colours=COLOURS, cli=f"mloop runs show {info.id}")  # fmt: skip

    @r.get("/runs/{run_id}/artifacts/{name:path}")
    def artifact(request: Request, run_id: str, name: str) -> Response:
        viewer = sessions.viewer(request)
        try:
            data = viewer.runs.artifact(run_id, name)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        # Always a download: an HTML or SVG artifact must not run in the dashboard's origin.
        filename = name.rsplit("/", 1)[-1].replace('"', "")
        return Response(data, media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"})  # fmt: skip

    return r


class _Table:
    """What the runs table shows: its query (from the URL), then its page of runs."""

    def __init__(self, experiment: str, filter: str, sort: str, direction: str, page: int, per: int,
                 cols: list[str]) -> None:  # fmt: skip
        self.experiment, self.filter, self.sort, self.direction = experiment, filter, sort, direction
        self.per = per if per in PER_PAGE else 50
        self.page, self.cols, self.chosen = page, cols, bool(cols)
        self.rows: list[RunInfo] = []
        self.total = 0
        self.exact = True
        self.keys: dict[str, list[str]] = {"params": [], "metrics": [], "tags": []}
        self.error = ""

    def load(self, viewer: Project) -> None:
        self.keys = viewer.runs.keys(self.experiment)
        if not self.chosen:  # a first look: a few of each, the rest one click away in the picker
            self.cols = [f"params.{k}" for k in self.keys["params"][:4]] + [
                f"metrics.{k}" for k in self.keys["metrics"][:4]]  # fmt: skip
        # Counted ten pages ahead, not to the end: a broad filter's count costs in proportion to its matches.
        at_most = (self.page + 10) * self.per + 1
        self.total = viewer.runs.count(self.experiment, self.filter or None, at_most=at_most)
        self.exact = self.total < at_most
        if self.exact:
            self.page = min(self.page, self.pages)
        self.rows = viewer.runs.search(self.experiment, self.filter or None, [f"{self.sort} {self.direction}"],
                                       limit=self.per, offset=(self.page - 1) * self.per)  # fmt: skip

    @property
    def pages(self) -> int:
        return max(1, math.ceil((self.total if self.exact else self.total - 1) / self.per))

    @property
    def columns(self) -> list[tuple[str, str]]:
        """``(sort key, heading)`` of every column after the attributes."""
        return [(c, c) for c in self.cols]

    @property
    def choices(self) -> list[str]:
        known = [f"{kind}.{k}" for kind in ("params", "metrics", "tags") for k in self.keys[kind]]
        return known + [c for c in self.cols if c not in known]

    def value(self, run: RunInfo, column: str) -> Any:
        kind, _, key = column.partition(".")
        parts: dict[str, dict[str, Any]] = {"params": run.params, "metrics": run.metrics, "tags": run.tags}
        values = parts.get(kind, {})
        return values.get(key)

    def url(self, **change: Any) -> str:
        """This table's URL with ``change`` applied (a sort link resets to page 1)."""
        state: dict[str, Any] = {"experiment": self.experiment, "filter": self.filter, "sort": self.sort,
                                 "dir": self.direction, "per": self.per, "page": self.page}  # fmt: skip
        state.update(change)
        pairs = [(k, v) for k, v in state.items() if v not in ("", None)]
        pairs += [("cols", c) for c in self.cols] if self.chosen else []
        return "/ui/runs?" + urlencode(pairs)

    def sort_url(self, column: str) -> str:
        flip = "asc" if self.sort == column and self.direction == "desc" else "desc"
        return self.url(sort=column, dir=flip, page=1)

    def cli(self) -> str:
        command = f"mloop runs list --experiment {shlex.quote(self.experiment)}"
        if self.filter:
            command += f" --filter {shlex.quote(self.filter)}"
        return command + f" --order-by {shlex.quote(f'{self.sort} {self.direction}')} --limit {self.per}"


def _whole(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**9 else default

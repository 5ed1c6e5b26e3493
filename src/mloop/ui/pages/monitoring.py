"""``/ui/monitoring?endpoint=E&since=7d``: an endpoint's monitoring over a range, from the same data as
``mloop monitor report`` (:meth:`MonitoringService.report`): the drift of each column per window and
version as a table of coloured cells (the drift score in each cell's text and title), the prediction
distribution against the reference and live performance with its estimate (uPlot), fairness gaps where
the endpoint names sensitive columns, and the alerts with their incidents, paged in the database.

The drift score is the report's (:func:`mloop.monitoring.report_charts.score`): 1 at the decision
boundary whatever the method, green below and red above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mloop.errors import MloopError
from mloop.ui.pages._paging import Paging
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

QUALITY = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "positive_rate")  # one 0-1 scale
COUNTS = ("rows", "positives", "threshold")  # in the table's own columns, or a setting: not metrics
PREDICTION = "__prediction__"
CLIP = 3.0


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/monitoring")
    def monitoring(request: Request, endpoint: str = "", since: str = "7d") -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request, param="apage", per=20)
        try:
            # A user scoped to some endpoints cannot list them all: the form then offers the one asked for.
            listed = viewer.actor.can("deployments.read", "endpoint:*")
            endpoints = [d.endpoint for d in viewer.deployments.list()] if listed else []
            endpoint = endpoint or (endpoints[0] if endpoints else "")
            report = viewer.monitoring.report(endpoint, since=since, stored=True) if endpoint else None
            incidents = (
                viewer.monitoring.alerts(endpoint, offset=paging.offset, limit=paging.per + 1)
                if endpoint
                else []
            )
        except MloopError as exc:
            return error_page(request, viewer, exc)
        shown = incidents[: paging.per]
        cli = f"mloop monitor report {endpoint or 'ENDPOINT'} --since {since}"
        return render(request, "monitoring.html", viewer, title="Monitoring", page="monitoring", cli=cli,
                      endpoint=endpoint, endpoints=endpoints, since=since, report=report,
                      heatmaps=_heatmaps(report["drift"]) if report else [],
                      predictions=[_distribution(p) for p in report["predictions"]] if report else [],
                      performance=_performance(report["performance"]) if report else [],
                      fairness=_fairness(report["performance"]) if report else [], incidents=shown,
                      pager=paging.open_ended(request, len(shown), len(incidents) > paging.per, label="incidents"))  # fmt: skip

    return r


# ---- drift: columns × windows -------------------------------------------------------------------------


def _heatmaps(drift: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model version, the rows (columns) and cells (windows) of its drift table. A window without
    predictions belongs to no version: it is a blank column in each version's table."""
    empty = [e for e in drift if not e.get("version")]
    versions = sorted({e["version"] for e in drift if e.get("version")})
    out = []
    for version in versions or [None]:
        entries = sorted(
            [e for e in drift if e.get("version") == version] + empty, key=lambda e: str(e["start"])
        )
        columns = list(dict.fromkeys(c["column"] for e in entries for c in e.get("columns", [])))
        rows = []
        for column in columns:
            cells = [
                _cell(next((c for c in e.get("columns", []) if c["column"] == column), None), e)
                for e in entries
            ]
            rows.append({"column": "(model output)" if column == PREDICTION else column, "cells": cells})
        out.append({"version": version, "windows": [_short(e["start"]) for e in entries], "rows": rows,
                    "drifted": sum(bool(e.get("drifted")) for e in entries), "count": len(entries)})  # fmt: skip
    return out


def _cell(cell: Mapping[str, Any] | None, window: Mapping[str, Any]) -> dict[str, Any]:
    from mloop.monitoring.report_charts import score  # plotly is imported only when a page draws

    when = f"{_short(window['start'])} UTC"
    if cell is None:
        why = "no predictions in this window" if window.get("empty") else "column not reported"
        return {"text": "", "title": f"{when}: {why}", "colour": "", "drifted": False}
    value = score(cell)
    decision = {True: "drifted", False: "no drift", None: "undecided"}[cell.get("drifted")]
    title = (f"{when}: {decision}; drift score {_num(value)} (1 = threshold); {cell.get('method') or '—'} "
             f"statistic {_num(cell.get('statistic'))}, p-value {_num(cell.get('p_value'))}, threshold "
             f"{_num(cell.get('threshold'))}, {cell.get('rows') or 0:,} values"
             + (f" ({cell['note']})" if cell.get("note") else ""))  # fmt: skip
    text = "–" if value is None else "≥3" if value >= CLIP else _num(value, ".2f")
    return {"text": text, "title": title,
            "colour": _colour(value), "drifted": bool(cell.get("drifted"))}  # fmt: skip


def _colour(value: float | None) -> str:
    """The report's scale: light to darker green below 1, orange to red from 1 to 3."""
    if value is None:
        return ""
    if value < 1:
        return _mix((0xE8, 0xF5, 0xE9), (0xA5, 0xD6, 0xA7), value)
    return _mix((0xFF, 0xCC, 0x80), (0xC6, 0x28, 0x28), (min(value, CLIP) - 1) / (CLIP - 1))


def _mix(low: tuple[int, int, int], high: tuple[int, int, int], share: float) -> str:
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high, strict=True))


# ---- predictions, performance, fairness ---------------------------------------------------------------


def _distribution(entry: Mapping[str, Any]) -> dict[str, Any]:
    edges = list(entry.get("edges") or [])
    bins = [f"{_num(edges[i])} to {_num(edges[i + 1])}" for i in range(len(edges) - 1)]
    return {"version": entry.get("version"), "bins": bins, "reference": list(entry.get("reference") or []),
            "current": list(entry.get("current") or [])}  # fmt: skip


def _performance(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per version, every metric realised and estimated over the windows (the table), and the 0-to-1
    quality metrics among them as uPlot's columns (x in epoch seconds, None where a window has none)."""
    out = []
    for version in sorted({e.get("version") for e in entries}, key=str):
        mine = [e for e in entries if e.get("version") == version]
        metrics = dict.fromkeys(m for e in mine for k in ("realised", "estimated") for m in (e.get(k) or {}))
        series = []
        for metric in [m for m in metrics if m not in COUNTS]:
            for kind in ("realised", "estimated"):
                values = [(e.get(kind) or {}).get(metric) for e in mine]
                if any(v is not None for v in values):
                    series.append(
                        {"label": f"{metric} ({kind})", "metric": metric, "kind": kind, "values": values}
                    )
        windows = [{"start": _short(e["start"]), "rows": e.get("rows"), "labelled": e.get("labelled"),
                    "note": e.get("note", ""), "values": [s["values"][i] for s in series]}
                   for i, e in enumerate(mine)]  # fmt: skip
        span = _epoch(mine[0]["end"]) - _epoch(mine[0]["start"]) if mine and mine[0].get("end") else 3600
        out.append({"version": version, "x": [_epoch(e["start"]) for e in mine], "series": series, "span": span,
                    "plotted": [s for s in series if s["metric"] in QUALITY], "windows": windows})  # fmt: skip
    return out


def _fairness(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per version and sensitive column, the gaps of the newest window that has them."""
    out = []
    for version in sorted({e.get("version") for e in entries}, key=str):
        latest = next(
            (e for e in reversed([e for e in entries if e.get("version") == version]) if e.get("fairness")),
            None,
        )
        if latest is None:
            continue
        for column, gaps in sorted(latest["fairness"].items()):
            out.append({"version": version, "window": _short(latest["start"]), "column": column,
                        "parity": gaps.get("demographic_parity_difference"),
                        "opportunity": gaps.get("equal_opportunity_difference"),
                        "groups": sorted((gaps.get("groups") or {}).items())})  # fmt: skip
    return out


# ---- formatting ---------------------------------------------------------------------------------------


def _short(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _num(value: Any, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)

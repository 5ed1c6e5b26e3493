"""The recsys demo's HTML report: one self-contained page (plotly.js inline, no network) with the daily
click-through rate of each towers version as the shoppers saw it, the A/B test's arms with their
always-valid intervals and its decision, each stage's latency, and the loop's decisions in order."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from mloop._files import write_text


def render(summary: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]]) -> str:
    """The page for the demo's ``summary`` (what :func:`~mloop.examples.recsys.demo.run` returns) and the
    loop's ``timeline`` of ``recs-towers`` (``project.loop.timeline``)."""
    ab = summary.get("ab") or {}
    arms = [(f"v{a['version']}", _num(a.get("mean")), f"[{_num(a.get('low'))}, {_num(a.get('high'))}]", a.get("n"))
            for a in ab.get("arms", [])]  # fmt: skip
    stages = [(f"stage {k}", v) for k, v in (summary.get("stage_p99_ms") or {}).items()]
    decisions = [(str(e.get("ts", ""))[11:19], e.get("action"), _versions(e), e.get("reason") or e.get("verdict"))
                 for e in timeline if e.get("action") != "loop.ab" or e.get("started") or e.get("verdict") != "need more data"]  # fmt: skip
    sections = [
        "<h1>mloop demo · recommendations</h1>",
        f"<p>{_e(_story(summary))}</p>",
        "<h2>Click-through rate per simulated day and towers version</h2>",
        pio.to_html(_ctr_figure(summary), full_html=False, include_plotlyjs="inline", div_id="plot-ctr"),
        "<h2>The A/B test (mixture sequential test: valid at every look)</h2>",
        _table(["arm", "CTR", "interval", "answers"], arms),
        f"<p>Decision: <b>{_e(ab.get('decision'))}</b>. {_e(ab.get('reason', ''))}</p>",
        f"<p>Lift {_num(ab.get('lift'))}, always-valid interval [{_num(ab.get('lift_low'))}, "
        f"{_num(ab.get('lift_high'))}], after {_e(ab.get('outcomes'))} outcomes.</p>",
        "<h2>Latency</h2>",
        _table(["part", "p99 (ms)"], [("whole request, at the client", summary.get("p99_ms")), *stages]),
        "<h2>Offline figures</h2>",
        _table(["figure", "value"], [(k, _num(v)) for k, v in (summary.get("offline") or {}).items()]),
        "<h2>The loop's decisions</h2>",
        _table(["time (UTC)", "action", "versions", "why"], decisions),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mloop recsys demo</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )


def write(
    path: str | os.PathLike[str], summary: Mapping[str, Any], timeline: Sequence[Mapping[str, Any]]
) -> Path:
    """:func:`render` written atomically to ``path``."""
    return write_text(path, render(summary, timeline), what="report", option="--dir")


def _ctr_figure(summary: Mapping[str, Any]) -> go.Figure:
    by_version: dict[Any, list[tuple[int, float]]] = {}
    for (day, version), ctr in sorted((summary.get("ctr_by_day") or {}).items()):
        by_version.setdefault(version, []).append((int(day), float(ctr)))
    figure = go.Figure()
    for version, points in by_version.items():
        figure.add_trace(go.Scatter(x=[d for d, _ in points], y=[c for _, c in points], mode="lines+markers",
                                    name=f"towers v{version}"))  # fmt: skip
    shift = summary.get("shift_day")
    if shift is not None:
        figure.add_vline(x=shift - 0.5, line_dash="dot", annotation_text="tastes shift")
    figure.update_layout(xaxis_title="simulated day", yaxis_title="share of answers clicked", height=360,
                         margin={"t": 30, "b": 40, "l": 60, "r": 20})  # fmt: skip
    return figure


def _story(summary: Mapping[str, Any]) -> str:
    shipped = summary.get("shipped")
    if shipped:
        return (f"Tastes shifted on day {summary.get('shift_day')}; the loop retrained the towers, the A/B test "
                f"shipped v{shipped} on day {summary.get('shipped_on')}.")  # fmt: skip
    return f"Tastes shifted on day {summary.get('shift_day')}; no challenger was shipped in this run."


def _versions(event: Mapping[str, Any]) -> str:
    pair = [f"v{event[k]}" for k in ("champion", "challenger") if event.get(k) is not None]
    return " → ".join(pair)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "—" if value is None else str(value)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


__all__ = ["render", "write"]

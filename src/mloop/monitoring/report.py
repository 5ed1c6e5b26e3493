"""The monitoring report: one self-contained HTML file per endpoint and time range, and a terminal summary.

:func:`render_html` turns the report dict the monitoring service builds (drift per window, the prediction
distribution, live performance, SLO budgets, alerts) into an HTML5 document that opens with no network:
plotly.js is embedded once, inline, and each figure is a JSON block handed to ``Plotly.newPlot`` by one
small loader. Every section is rendered, with a "no data" line when its list is empty.

>>> path = write_html(report, "fraud-report.html")          # doctest: +SKIP
>>> print(summary_text(report))                             # doctest: +SKIP
fraud: 2026-11-26 00:00 → 2026-12-03 00:00 UTC, 1h windows
drift: 3 of 24 windows drifted (amount)
...

Figures, each in a ``<div>`` with a stable id (suffixed ``-v<version>`` when a section holds several model
versions): ``plot-drift``, ``plot-drift-share``, ``plot-predictions``, ``plot-performance``, ``plot-slo``.

The drift heatmap's colour is a *drift score*, 1 at the decision boundary whatever the method:
``statistic / threshold`` for distances (psi, jensen_shannon, hellinger, wasserstein), where drift is a
large statistic, and ``threshold / p_value`` for tests (ks, chi2), where drift is a small p-value. Scores
are clipped to [0, 3], so a cell is green below 1 and turns red above it; undecided cells (no value in the
window, a column the profile does not hold) are left blank and the hover says why. The share line beside
it is drifted columns over decided columns per window.

User-supplied strings (endpoint, column, SLO and alert text) are HTML-escaped, in the page and in the
figures' labels (plotly shows entities as the characters they stand for).
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from mloop.monitoring.suite import PREDICTION, TESTS

__all__ = ["render_html", "summary_text", "write_html"]

CLIP = 3.0  # drift scores above this are drawn as 3
_METRIC_ORDER = ("roc_auc", "precision", "recall", "accuracy", "f1", "rmse", "mae")
_CONFIG = {"displaylogo": False, "responsive": True}
_LOADER = """document.querySelectorAll('script[type="application/json"][data-plot]').forEach(function (s) {
  Plotly.newPlot(s.getAttribute("data-plot"), JSON.parse(s.textContent));
});"""
_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1200px;
margin:1.5rem auto;padding:0 1rem}h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;
border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}.meta{color:#555;margin:.2rem 0}
.summary{font-weight:600}.nodata{color:#777;font-style:italic}table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}.firing{color:#b00020;font-weight:600}"""


def render_html(report: Mapping[str, Any]) -> str:
    """The report as a complete HTML5 document that needs no network to open.

    >>> html_text = render_html(service.report("fraud", since, until))   # doctest: +SKIP
    """
    endpoint = html.escape(str(report.get("endpoint", "")))
    body = "\n".join(
        [
            _header(report),
            _drift_section(report.get("drift") or []),
            _predictions_section(report.get("predictions") or []),
            _performance_section(report.get("performance") or []),
            _slo_section(report.get("slos") or []),
            _alerts_section(report.get("alerts") or []),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Monitoring report: {endpoint}</title>\n<style>{_CSS}</style>\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script>\n</head>\n<body>\n{body}\n"
        f"<script>{_LOADER}</script>\n</body>\n</html>\n"
    )


def write_html(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_html` to ``path`` atomically: a reader sees the old file or the new one, whole."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(render_html(report))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def summary_text(report: Mapping[str, Any]) -> str:
    """A few plain lines for a terminal: drift, the latest performance, SLO budgets, open alerts."""
    lines = [f"{report.get('endpoint', '')}: {_when(report.get('since'))} → {_when(report.get('until'))} UTC, "
             f"{report.get('window', '?')} windows"]  # fmt: skip
    drift = report.get("drift") or []
    columns = sorted({c["column"] for d in drift for c in d.get("columns", []) if c.get("drifted")})
    lines.append(f"drift: {len(_drifted_windows(drift))} of {len(_windows(report))} windows drifted"
                 + (f" ({', '.join(columns)})" if columns else ""))  # fmt: skip
    for version, entries in _by_version(report.get("performance") or []).items():
        parts = []
        for kind in ("realised", "estimated"):
            latest = next((p for p in reversed(entries) if p.get(kind)), None)
            if latest is not None:
                metric = _metrics([{kind: latest[kind]}])[0]
                value = _num(latest[kind].get(metric))
                parts.append(f"{kind} {metric} {value} ({_when(latest.get('start'))})")
        lines.append(f"performance v{version}: " + ("; ".join(parts) or "no realised or estimated metrics"))
    for slo in report.get("slos") or []:
        lines.append(f"SLO {slo.get('name')}: {_pct(slo.get('remaining'))} of budget left, "
                     f"SLI {_num(slo.get('sli'), '.4f')} (target {_num(slo.get('target'), '.4f')})")  # fmt: skip
    open_alerts = [a for a in report.get("alerts") or [] if _is_open(a)]
    lines.append(f"alerts: {len(open_alerts)} open")
    lines += [f"  [{a.get('severity')}] {a.get('name')}: {a.get('summary', '')}" for a in open_alerts]
    return "\n".join(lines)


# -- sections ------------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> str:
    drift, alerts = report.get("drift") or [], report.get("alerts") or []
    summary = (f"{len(_windows(report))} windows, {len(_drifted_windows(drift))} with drift, "
               f"{sum(_is_open(a) for a in alerts)} open alerts")  # fmt: skip
    return (
        f"<header><h1>Monitoring report: {_e(report.get('endpoint', ''))}</h1>\n"
        f'<p class="meta">{_e(_when(report.get("since")))} → {_e(_when(report.get("until")))} UTC, '
        f"{_e(report.get('window', '?'))} windows; generated {_e(_when(report.get('generated_at')))} UTC</p>\n"
        f'<p class="summary">{summary}</p></header>'
    )


def _drift_section(drift: Sequence[Mapping[str, Any]]) -> str:
    if not drift:
        return _section("Drift", _no_data("no drift windows in this range"))
    parts = []
    # A window without predictions belongs to no version: it is a gap in every version's plots.
    empty = [e for e in drift if not e.get("version")]
    groups = _by_version([e for e in drift if e not in empty]) or {None: []}
    groups = {
        v: sorted([*entries, *empty], key=lambda e: str(e.get("start"))) for v, entries in groups.items()
    }
    for version, entries in groups.items():
        suffix = _suffix(version, groups)
        parts.append(_figure(f"plot-drift{suffix}", _drift_heatmap(entries, version)))
        parts.append(_figure(f"plot-drift-share{suffix}", _drift_share(entries, version)))
    return _section("Drift", "\n".join(parts))


def _predictions_section(predictions: Sequence[Mapping[str, Any]]) -> str:
    if not predictions:
        return _section("Prediction distribution", _no_data("no predictions in this range"))
    groups = _by_version(predictions)
    parts = []
    for version, (entry, *_) in groups.items():
        edges, reference, current = (entry.get(k) or [] for k in ("edges", "reference", "current"))
        k = max(len(reference), len(current))
        bins = ([f"{_num(edges[i])}–{_num(edges[i + 1])}" for i in range(k)] if len(edges) == k + 1
                else [f"bin {i + 1}" for i in range(k)])  # fmt: skip
        fig = go.Figure([go.Bar(name="reference", x=bins, y=list(reference)),
                         go.Bar(name="current", x=bins, y=list(current))])  # fmt: skip
        fig.update_layout(barmode="group", title=f"Prediction distribution, v{version}",
                          xaxis_title="prediction bin", yaxis=dict(title="share", tickformat=".0%"))  # fmt: skip
        parts.append(_figure(f"plot-predictions{_suffix(version, groups)}", fig))
    return _section("Prediction distribution", "\n".join(parts))


def _performance_section(performance: Sequence[Mapping[str, Any]]) -> str:
    if not performance:
        return _section("Performance", _no_data("no performance windows in this range"))
    groups = _by_version(performance)
    parts = []
    palette = pio.templates["plotly_white"].layout.colorway
    for version, entries in groups.items():
        x = [_plot_time(p.get("start")) for p in entries]
        fig = go.Figure()
        for i, metric in enumerate(_metrics(entries)):
            colour = palette[i % len(palette)]
            for kind, dash in (("realised", "solid"), ("estimated", "dash")):
                y = [(p.get(kind) or {}).get(metric) for p in entries]
                if any(v is not None for v in y):
                    fig.add_scatter(x=x, y=y, name=f"{_e(metric)} ({kind})", legendgroup=metric,
                                    mode="lines+markers", line=dict(color=colour, dash=dash))  # fmt: skip
        fig.add_scatter(x=x, y=[p.get("coverage") for p in entries], name="label coverage", yaxis="y2",
                        mode="lines", line=dict(color="#999", dash="dot"))  # fmt: skip
        fig.update_layout(title=f"Performance, v{version} (estimated dashed)", xaxis_title="window start (UTC)",
                          yaxis_title="metric", yaxis2=dict(title="label coverage", overlaying="y", side="right",
                                                            range=[0, 1], tickformat=".0%", showgrid=False))  # fmt: skip
        parts.append(_figure(f"plot-performance{_suffix(version, groups)}", fig))
    return _section("Performance", "\n".join(parts))


def _slo_section(slos: Sequence[Mapping[str, Any]]) -> str:
    if not slos:
        return _section("SLOs", _no_data("no SLOs declared for this endpoint"))
    remaining = [s.get("remaining") for s in slos]
    colours = ["#999" if r is None else "#d62728" if r < 0 else "#ff7f0e" if r < 0.25 else "#2ca02c"
               for r in remaining]  # fmt: skip
    fig = go.Figure(go.Bar(x=[_e(s.get("name", "")) for s in slos], y=remaining, marker_color=colours,
                           text=[_pct(r) for r in remaining], name="budget remaining"))  # fmt: skip
    fig.update_layout(title="Error budget remaining", yaxis=dict(title="budget remaining", tickformat=".0%"))
    windows = list(dict.fromkeys(w for s in slos for w in (s.get("burn_rates") or {})))
    head = ["SLO", "kind", "target", "period", "SLI", "events", "bad", "budget left"]
    head += [f"burn {w}" for w in windows]
    rows = [
        [_e(s.get("name", "")), _e(s.get("kind", "")), _num(s.get("target"), ".4g"), _e(s.get("period", "")),
         _num(s.get("sli"), ".4f"), _num(s.get("events"), ","), _num(s.get("bad"), ","), _pct(s.get("remaining"))]
        + [_num((s.get("burn_rates") or {}).get(w), ".2f") for w in windows]
        for s in slos
    ]  # fmt: skip
    return _section("SLOs", _figure("plot-slo", fig) + "\n" + _table(head, rows, numeric_from=2))


def _alerts_section(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return _section("Alerts", _no_data("no alerts in this range"))
    rows = [[_e(a.get("name", "")), _e(a.get("severity", "")),
             f'<span class="{"firing" if _is_open(a) else ""}">{_e(a.get("status", ""))}</span>',
             _e(a.get("summary", "")), _e(_when(a.get("started_at"))), _e(_when(a.get("resolved_at")))]
            for a in alerts]  # fmt: skip
    return _section("Alerts", _table(["alert", "severity", "status", "summary", "started", "resolved"], rows))


# -- figures -------------------------------------------------------------------------------------------


def _drift_heatmap(entries: Sequence[Mapping[str, Any]], version: Any) -> go.Figure:
    columns = list(dict.fromkeys(c["column"] for d in entries for c in d.get("columns", [])))
    cells = [{c["column"]: c for c in d.get("columns", [])} for d in entries]
    z = [[_score(w.get(col)) for w in cells] for col in columns]
    text = [[_hover(w.get(col), d) for w, d in zip(cells, entries, strict=True)] for col in columns]
    labels = ["(model output)" if c == PREDICTION else _e(c) for c in columns]
    fig = go.Figure(go.Heatmap(
        x=[_plot_time(d.get("start")) for d in entries], y=labels, z=z, text=text, zmin=0, zmax=CLIP,
        colorscale=[[0, "#e8f5e9"], [1 / CLIP - 0.001, "#a5d6a7"], [1 / CLIP, "#ffcc80"], [1, "#c62828"]],
        colorbar=dict(title="drift score", tickvals=[0, 1, 2, 3], ticktext=["0", "1 (threshold)", "2", "≥3"]),
        hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>", xgap=1, ygap=1,
    ))  # fmt: skip
    fig.update_layout(title=f"Drift per column, v{version}", xaxis_title="window start (UTC)",
                      yaxis=dict(autorange="reversed"), height=max(320, 120 + 26 * len(columns)))  # fmt: skip
    return fig


def _drift_share(entries: Sequence[Mapping[str, Any]], version: Any) -> go.Figure:
    shares, text = [], []
    for d in entries:
        decided = [c for c in d.get("columns", []) if c.get("drifted") is not None]
        drifted = sum(bool(c["drifted"]) for c in decided)
        shares.append(drifted / len(decided) if decided else None)
        text.append(f"{drifted} of {len(decided)} decided columns, {d.get('rows') or 0:,} rows")
    fig = go.Figure(go.Scatter(x=[_plot_time(d.get("start")) for d in entries], y=shares, text=text,
                               mode="lines+markers", name="drifted share",
                               hovertemplate="%{x}<br>%{text}<extra></extra>"))  # fmt: skip
    fig.update_layout(title=f"Share of drifted columns, v{version}", xaxis_title="window start (UTC)",
                      yaxis=dict(title="drifted columns", range=[0, 1.05], tickformat=".0%"), height=300)  # fmt: skip
    return fig


def _score(cell: Mapping[str, Any] | None) -> float | None:
    """1 at the decision boundary: statistic / threshold for distances, threshold / p-value for tests."""
    if not cell or cell.get("drifted") is None or not cell.get("threshold"):
        return None
    if cell.get("method") in TESTS:
        p = cell.get("p_value")
        return None if p is None else CLIP if p <= 0 else min(cell["threshold"] / p, CLIP)
    statistic = cell.get("statistic")
    return None if statistic is None else min(max(statistic / cell["threshold"], 0.0), CLIP)


def _hover(cell: Mapping[str, Any] | None, window: Mapping[str, Any]) -> str:
    if cell is None:
        return "empty window" if window.get("empty") else "column not reported"
    decision = {True: "<b>drifted</b>", False: "no drift", None: "undecided"}[cell.get("drifted")]
    note = f" ({_e(cell['note'])})" if cell.get("note") else ""
    return (f"{_e(cell.get('method') or '—')}: statistic {_num(cell.get('statistic'))}, "
            f"p-value {_num(cell.get('p_value'))}, threshold {_num(cell.get('threshold'))}<br>"
            f"{decision}{note}, {cell.get('rows') or 0:,} values")  # fmt: skip


def _figure(div_id: str, fig: go.Figure) -> str:
    fig.update_layout(template="plotly_white", margin=dict(t=50, r=30, b=50, l=60))
    payload = pio.json.to_json_plotly({**fig.to_plotly_json(), "config": _CONFIG})  # escapes < > /
    return (f'<div id="{div_id}" class="plot"></div>\n'
            f'<script type="application/json" data-plot="{div_id}">{payload}</script>')  # fmt: skip


# -- helpers -------------------------------------------------------------------------------------------


def _section(title: str, content: str) -> str:
    return f"<section><h2>{title}</h2>\n{content}\n</section>"


def _no_data(message: str) -> str:
    return f'<p class="nodata">No data: {message}.</p>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int | None = None) -> str:
    """Cells are already escaped HTML; columns from ``numeric_from`` on are right-aligned."""
    start = len(head) if numeric_from is None else numeric_from
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f'<td class="num">{v}</td>' if i >= start else f"<td>{v}</td>"
                                      for i, v in enumerate(row)) + "</tr>" for row in rows)  # fmt: skip
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _by_version(entries: Sequence[Mapping[str, Any]]) -> dict[Any, list[Mapping[str, Any]]]:
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(entry.get("version"), []).append(entry)
    return dict(sorted(groups.items(), key=lambda item: _version_order(item[0])))


def _version_order(version: Any) -> tuple[bool, bool, Any]:
    """Numbers in numeric order, then anything else by its text, None last."""
    number = isinstance(version, int)
    return version is None, not number, version if number else str(version)


def _suffix(version: Any, groups: Mapping[Any, Any]) -> str:
    return f"-v{version}" if len(groups) > 1 else ""


def _metrics(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every metric key that appears, the usual ones first in a fixed order, then the rest sorted."""
    keys = {k for p in entries for kind in ("realised", "estimated") for k in (p.get(kind) or {})}
    return [k for k in _METRIC_ORDER if k in keys] + sorted(keys - set(_METRIC_ORDER))


def _windows(report: Mapping[str, Any]) -> set[Any]:
    return {d.get("start") for d in (report.get("drift") or report.get("performance") or [])}


def _drifted_windows(drift: Sequence[Mapping[str, Any]]) -> set[Any]:
    return {d.get("start") for d in drift if any(c.get("drifted") for c in d.get("columns", []))}


def _is_open(alert: Mapping[str, Any]) -> bool:
    return alert.get("resolved_at") is None and alert.get("status") != "resolved"


def _time(value: Any, layout: str = "%Y-%m-%d %H:%M") -> str | None:
    """An ISO time in UTC, naive (plotly.js has no time zones); the text itself if it is not ISO."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).strftime(layout)


def _when(value: Any) -> str:
    return _time(value) or "—"


def _plot_time(value: Any) -> str | None:
    return _time(value, "%Y-%m-%d %H:%M:%S")


def _num(value: Any, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value:.1%}"


def _e(value: Any) -> str:
    return html.escape(str(value))

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

The figures themselves, and the rules they keep (one scale per axis, a legend that never repeats a
style, bins placed by number), are :mod:`mloop.monitoring.report_charts`. The drift section also says
which statistic and threshold decided (Jensen-Shannon in base 2, Wasserstein normed by the reference
sample's spread), so a reader comparing with another tool knows what 0.1 means here.

User-supplied strings (endpoint, column, SLO and alert text) are HTML-escaped, in the page and in the
figures' labels (plotly shows entities as the characters they stand for).
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from mloop._files import write_text
from mloop.monitoring import report_charts as charts
from mloop.monitoring.report_charts import escape as _e
from mloop.monitoring.report_charts import num as _num
from mloop.monitoring.report_charts import pct as _pct
from mloop.monitoring.report_charts import time_text

__all__ = ["drift_rows", "render_html", "summary_text", "write_html"]

_METRIC_ORDER = ("roc_auc", "precision", "recall", "accuracy", "f1", "rmse", "mae")
_METHOD_NOTES = {
    "jensen_shannon": "Jensen-Shannon is the distance in base 2 (0 to 1); scipy's and Evidently's default is "
    "the natural log, whose distance is 0.83 times this one, so their 0.1 is 0.12 here.",
    "wasserstein": "Wasserstein is the first Wasserstein distance over the reference's standard deviation, "
    "estimated from the reference profile's sample of at most 5,000 values.",
    "psi": "PSI is computed on the reference's decile bins.",
    "ks": "Numeric columns with 1,000 values or fewer in a window are decided by a two-sample Kolmogorov-Smirnov "
    "test against the reference sample (p below the threshold, Bonferroni-corrected over the tested columns).",
    "chi2": "Categorical columns with 1,000 values or fewer are decided by a chi-square test of the category "
    "counts (p below the threshold, Bonferroni-corrected).",
}
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
    return write_text(path, render_html(report), what="report", option="--out")


def summary_text(report: Mapping[str, Any]) -> str:
    """A few plain lines for a terminal: drift, the latest performance, SLO budgets, open alerts."""
    lines = [f"{report.get('endpoint', '')}: {_when(report.get('since'))} → {_when(report.get('until'))} UTC, "
             f"{report.get('window', '?')} windows"]  # fmt: skip
    drift = report.get("drift") or []
    columns = sorted({c["column"] for d in drift for c in d.get("columns", []) if c.get("drifted")})
    lines.append(f"drift: {len(_drifted_windows(drift))} of {_count(len(_windows(report)), 'window')} drifted"
                 + (f" ({', '.join(columns)})" if columns else ""))  # fmt: skip
    for version, entries in _by_version(report.get("performance") or []).items():
        parts = []
        for kind in ("realised", "estimated"):
            latest = next((p for p in reversed(entries) if p.get(kind)), None)
            if latest is not None:
                metric = _headline(latest[kind])
                value = _num(latest[kind].get(metric)) if metric else "—"
                parts.append(f"{kind} {metric} {value} ({_when(latest.get('start'))})")
        lines.append(f"performance v{version}: " + ("; ".join(parts) or "no realised or estimated metrics"))
    for slo in report.get("slos") or []:
        lines.append(f"SLO {slo.get('name')}: {_pct(slo.get('remaining'))} of budget left, "
                     f"SLI {_num(slo.get('sli'), '.4f')} (target {_num(slo.get('target'), '.4f')})")  # fmt: skip
    open_alerts = [a for a in report.get("alerts") or [] if _is_open(a)]
    lines.append(f"alerts: {len(open_alerts)} open")
    if report.get("note"):
        lines.insert(1, f"note: {report['note']}")
    lines += [f"  [{a.get('severity')}] {a.get('name')}: {a.get('summary', '')}" for a in open_alerts]
    return "\n".join(lines)


def drift_rows(entries: Sequence[Mapping[str, Any]], *, show_all: bool = False
               ) -> tuple[list[Mapping[str, Any]], int]:  # fmt: skip
    """The drift windows a terminal table shows, drifted ones first, and how many were left out: windows
    without data (no prediction, or no column decided), unless ``show_all``.

    >>> rows, hidden = drift_rows(project.monitoring.drift("fraud"))      # doctest: +SKIP
    """
    shown = [e for e in entries if show_all or _has_data(e)]
    drifted = [e for e in shown if e.get("drifted")]
    rest = [e for e in shown if not e.get("drifted")]
    return [*drifted, *rest], len(entries) - len(shown)


def _has_data(entry: Mapping[str, Any]) -> bool:
    if entry.get("empty"):
        return False
    columns = entry.get("columns") or []
    return not columns or any(c.get("drifted") is not None for c in columns)


# -- sections ------------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> str:
    drift, alerts = report.get("drift") or [], report.get("alerts") or []
    summary = (f"{_count(len(_windows(report)), 'window')}, {len(_drifted_windows(drift))} with drift, "
               f"{_count(sum(_is_open(a) for a in alerts), 'open alert')}")  # fmt: skip
    note = f'<p class="meta">{_e(report["note"])}.</p>\n' if report.get("note") else ""
    return (
        f"<header><h1>Monitoring report: {_e(report.get('endpoint', ''))}</h1>\n"
        f'<p class="meta">{_e(_when(report.get("since")))} → {_e(_when(report.get("until")))} UTC, '
        f"{_e(report.get('window', '?'))} windows; generated {_e(_when(report.get('generated_at')))} UTC</p>\n"
        f'{note}<p class="summary">{summary}</p></header>'
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
        parts.append(_figure(f"plot-drift{suffix}", charts.drift_heatmap(entries, version)))
        parts.append(_figure(f"plot-drift-share{suffix}", charts.drift_share(entries, version)))
    return _section("Drift", _methods_note(drift) + "\n".join(parts))


def _predictions_section(predictions: Sequence[Mapping[str, Any]]) -> str:
    if not predictions:
        return _section("Prediction distribution", _no_data("no predictions in this range"))
    groups = _by_version(predictions)
    parts = []
    for version, (entry, *_) in groups.items():
        fig = charts.predictions(entry, version)
        parts.append(_figure(f"plot-predictions{_suffix(version, groups)}", fig))
    return _section("Prediction distribution", "\n".join(parts))


def _performance_section(performance: Sequence[Mapping[str, Any]]) -> str:
    if not performance:
        return _section("Performance", _no_data("no performance windows in this range"))
    groups = _by_version(performance)
    parts = []
    for version, entries in groups.items():
        fig = charts.performance(entries, version)
        parts.append(_figure(f"plot-performance{_suffix(version, groups)}", fig))
    return _section("Performance", "\n".join(parts))


def _slo_section(slos: Sequence[Mapping[str, Any]]) -> str:
    if not slos:
        return _section("SLOs", _no_data("no SLOs declared for this endpoint"))
    fig = charts.slo_budgets(slos)
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


# -- helpers -------------------------------------------------------------------------------------------


def _figure(div_id: str, fig: go.Figure) -> str:
    margin = fig.layout.margin
    fig.update_layout(template="plotly_white", margin=dict(t=margin.t or 50, r=margin.r or 30, b=margin.b or 50,
                                                           l=margin.l or 60))  # fmt: skip
    payload = pio.json.to_json_plotly({**fig.to_plotly_json(), "config": _CONFIG})  # escapes < > /
    return (f'<div id="{div_id}" class="plot"></div>\n'
            f'<script type="application/json" data-plot="{div_id}">{payload}</script>')  # fmt: skip


def _methods_note(drift: Sequence[Mapping[str, Any]]) -> str:
    """Which statistics decided, and what their numbers mean next to another tool's."""
    used = {c.get("method") for d in drift for c in d.get("columns", []) if c.get("method")}
    notes = [text for method, text in _METHOD_NOTES.items() if method in used]
    if not notes:
        return ""
    return '<p class="meta">' + " ".join(notes) + "</p>\n"


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


def _headline(metrics: Mapping[str, Any]) -> str | None:
    """The metric a summary line names: the first of the usual ones a window has, else its first."""
    keys = [k for k in metrics if k not in charts.NOT_PLOTTED]
    return next((k for k in _METRIC_ORDER if k in keys), keys[0] if keys else None)


def _windows(report: Mapping[str, Any]) -> set[Any]:
    return {d.get("start") for d in (report.get("drift") or report.get("performance") or [])}


def _drifted_windows(drift: Sequence[Mapping[str, Any]]) -> set[Any]:
    return {d.get("start") for d in drift if any(c.get("drifted") for c in d.get("columns", []))}


def _is_open(alert: Mapping[str, Any]) -> bool:
    return alert.get("resolved_at") is None and alert.get("status") != "resolved"


def _when(value: Any) -> str:
    return time_text(value) or "—"


def _count(n: int, noun: str) -> str:
    """``1 open alert``, ``2 open alerts``, ``0 windows``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"

"""The monitoring report's figures: plotly figures built from the report dict, one function per chart.

Rules every chart keeps (the report's tests check them from the figure JSON):

- **One scale per axis.** The performance chart is small multiples sharing the time axis: quality metrics
  (0 to 1) in one panel, calibration errors, losses, counts of rows and label coverage each in their own,
  so 600 rows never flatten an AUC of 0.9 to a line at 0.
- **A legend never lies.** Every legend entry has its own colour and line style (a realised metric and
  its estimate share a colour, solid and dashed), and each panel has its own legend beside it.
- **Numbers are placed by number.** Prediction bins sit at numeric positions with the reference's edges
  as tick labels printed with as many digits as it takes to tell them apart, so two bins never merge
  into one category.

The drift heatmap's colour is a *drift score*, 1 at the decision boundary whatever the method:
``statistic / threshold`` for distances (psi, jensen_shannon, hellinger, wasserstein), where drift is a
large statistic, and ``threshold / p_value`` for tests (ks, chi2), where drift is a small p-value. Scores
are clipped to [0, 3], so a cell is green below 1 and turns red above it; undecided cells (no value in the
window, a column the profile does not hold) are left blank and the hover says why.

User-supplied strings are HTML-escaped in labels (plotly shows entities as the characters they stand for).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from mloop.monitoring.suite import PREDICTION, TESTS

CLIP = 3.0  # drift scores above this are drawn as 3
PALETTE = [*qualitative.Plotly, *qualitative.Dark24[10:]]  # 24 colours, no two alike
# One panel per family; a family's metrics share a scale. (title, metrics, fixed y range or None)
FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[float, float] | None], ...] = (
    ("quality (0–1)", ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "positive_rate"), (0, 1.02)),
    ("calibration error", ("ece", "brier"), None),
    ("log loss", ("log_loss",), None),
    ("error", ("rmse", "mae"), None),
    ("r²", ("r2",), None),
)  # fmt: skip
NOT_PLOTTED = {"rows", "positives", "threshold"}  # counts go to the rows panel; the threshold is a setting
PANEL_HEIGHT = 190


# -- drift ---------------------------------------------------------------------------------------------


def drift_heatmap(entries: Sequence[Mapping[str, Any]], version: Any) -> go.Figure:
    columns = list(dict.fromkeys(c["column"] for d in entries for c in d.get("columns", [])))
    cells = [{c["column"]: c for c in d.get("columns", [])} for d in entries]
    z = [[score(w.get(col)) for w in cells] for col in columns]
    text = [[_hover(w.get(col), d) for w, d in zip(cells, entries, strict=True)] for col in columns]
    labels = ["(model output)" if c == PREDICTION else escape(c) for c in columns]
    fig = go.Figure(go.Heatmap(
        x=[plot_time(d.get("start")) for d in entries], y=labels, z=z, text=text, zmin=0, zmax=CLIP,
        colorscale=[[0, "#e8f5e9"], [1 / CLIP - 0.001, "#a5d6a7"], [1 / CLIP, "#ffcc80"], [1, "#c62828"]],
        colorbar=dict(title="drift score", tickvals=[0, 1, 2, 3], ticktext=["0", "1 (threshold)", "2", "≥3"]),
        hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>", xgap=1, ygap=1,
    ))  # fmt: skip
    fig.update_layout(title=f"Drift per column, v{version}", xaxis_title="window start (UTC)",
                      yaxis=dict(autorange="reversed"), height=max(320, 120 + 26 * len(columns)))  # fmt: skip
    return fig


def drift_share(entries: Sequence[Mapping[str, Any]], version: Any) -> go.Figure:
    shares, text = [], []
    for d in entries:
        decided = [c for c in d.get("columns", []) if c.get("drifted") is not None]
        drifted = sum(bool(c["drifted"]) for c in decided)
        shares.append(drifted / len(decided) if decided else None)
        text.append(f"{drifted} of {len(decided)} decided columns, {d.get('rows') or 0:,} rows")
    fig = go.Figure(go.Scatter(x=[plot_time(d.get("start")) for d in entries], y=shares, text=text,
                               mode="lines+markers", name="drifted share", line=dict(color=PALETTE[0]),
                               hovertemplate="%{x}<br>%{text}<extra></extra>"))  # fmt: skip
    fig.update_layout(title=f"Share of drifted columns, v{version}", xaxis_title="window start (UTC)",
                      yaxis=dict(title="drifted columns", range=[0, 1.05], tickformat=".0%"), height=300)  # fmt: skip
    return fig


def score(cell: Mapping[str, Any] | None) -> float | None:
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
    note = f" ({escape(cell['note'])})" if cell.get("note") else ""
    return (f"{escape(cell.get('method') or '—')}: statistic {num(cell.get('statistic'))}, "
            f"p-value {num(cell.get('p_value'))}, threshold {num(cell.get('threshold'))}<br>"
            f"{decision}{note}, {cell.get('rows') or 0:,} values")  # fmt: skip


# -- predictions ---------------------------------------------------------------------------------------


def predictions(entry: Mapping[str, Any], version: Any) -> go.Figure:
    """Reference and current shares per bin, the bins side by side at positions 0.5, 1.5, ... and the
    reference's edges as ticks between them (quantile bins are equal in share, not in width)."""
    edges, reference, current = (list(entry.get(k) or []) for k in ("edges", "reference", "current"))
    k = max(len(reference), len(current))
    x = [i + 0.5 for i in range(k)]
    has_edges = len(edges) == k + 1
    labels = edge_labels(edges) if has_edges else [str(i) for i in range(k + 1)]
    ranges = [f"{labels[i]} to {labels[i + 1]}" for i in range(k)]
    fig = go.Figure()
    for name, values, colour in (("reference", reference, PALETTE[7]), ("current", current, PALETTE[0])):
        fig.add_bar(x=x, y=values, name=name, marker_color=colour, customdata=ranges,
                    hovertemplate=f"{name}: %{{y:.1%}} of predictions in %{{customdata}}<extra></extra>")  # fmt: skip
    fig.update_layout(
        barmode="group", bargap=0.15, title=f"Prediction distribution, v{version}", yaxis=dict(title="share",
        tickformat=".0%", rangemode="tozero"),
        xaxis=dict(title="prediction, in the reference's bins" if has_edges else "bin", tickmode="array",
                   tickvals=list(range(k + 1)), ticktext=labels, range=[0, k]),
    )  # fmt: skip
    return fig


def edge_labels(edges: Sequence[float | None]) -> list[str]:
    """Edges printed with the fewest significant digits (3 at least) that keep distinct edges distinct."""
    values = [e for e in edges if e is not None]
    for digits in range(3, 17):
        labels = [format(e, f".{digits}g") for e in values]
        if len(set(labels)) == len(set(values)):
            break
    it = iter(labels)
    return ["—" if e is None else next(it) for e in edges]


# -- performance ---------------------------------------------------------------------------------------


def performance(entries: Sequence[Mapping[str, Any]], version: Any) -> go.Figure:
    """Small multiples over the windows: one panel per metric family, then rows, then label coverage."""
    x = [plot_time(p.get("start")) for p in entries]
    panels: list[tuple[str, list[go.Scatter], tuple[float, float] | None, str | None]] = []
    colours = iter(PALETTE * 2)
    known = {m for _, members, _ in FAMILIES for m in members}
    present = _metrics(entries)
    families = [*FAMILIES, *((m, (m,), None) for m in present if m not in known)]
    for title, members, fixed in families:
        lines = []
        for metric in (m for m in members if m in present):
            colour = next(colours)
            for kind, dash in (("realised", "solid"), ("estimated", "dash")):
                y = [(p.get(kind) or {}).get(metric) for p in entries]
                if any(v is not None for v in y):
                    lines.append(go.Scatter(x=x, y=y, name=f"{escape(metric)} ({kind})", mode="lines+markers",
                                            line=dict(color=colour, dash=dash), legendgroup=metric))  # fmt: skip
        if lines:
            panels.append((escape(title), lines, fixed, None))
    counts = [("predictions", [p.get("rows") for p in entries]),
              ("labelled", [p.get("labelled") for p in entries]),
              ("positives (labelled)", [(p.get("realised") or {}).get("positives") for p in entries])]  # fmt: skip
    panels.append(("rows", [go.Scatter(x=x, y=y, name=name, mode="lines+markers", line=dict(color=next(colours)))
                            for name, y in counts if any(v is not None for v in y)], None, None))  # fmt: skip
    coverage = [p.get("coverage") for p in entries]
    panels.append(("label coverage", [go.Scatter(x=x, y=coverage, name="label coverage", mode="lines+markers",
                                                 line=dict(color=next(colours)))], (0, 1.02), ".0%"))  # fmt: skip
    # A panel is tall enough for its legend: about 19 px an entry.
    heights = [max(PANEL_HEIGHT, 30 + 19 * len(lines)) for _, lines, _, _ in panels]
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=40 / sum(heights),
                        row_heights=heights)  # fmt: skip
    for row, (title, lines, fixed, fmt) in enumerate(panels, start=1):
        legend = "legend" if row == 1 else f"legend{row}"
        for line in lines:
            fig.add_trace(line.update(legend=legend), row=row, col=1)
        fig.update_yaxes(title_text=title, row=row, col=1, range=list(fixed) if fixed else None,
                         rangemode="tozero", tickformat=fmt)  # fmt: skip
        domain = fig.get_subplot(row, 1).yaxis.domain
        fig.update_layout({legend: dict(y=domain[1], yanchor="top", x=1.01, xanchor="left",
                                        tracegroupgap=2, font=dict(size=11))})  # fmt: skip
    fig.update_xaxes(title_text="window start (UTC)", row=len(panels), col=1)
    fig.update_layout(title=f"Performance, v{version} (estimated dashed)", height=120 + sum(heights) + 40 * len(panels),
                      margin=dict(r=190))  # fmt: skip
    return fig


def _metrics(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every metric key that appears, bar the counts and the threshold, in first-seen order."""
    keys = dict.fromkeys(
        k for p in entries for kind in ("realised", "estimated") for k in (p.get(kind) or {})
    )
    return [k for k in keys if k not in NOT_PLOTTED]


# -- SLOs ----------------------------------------------------------------------------------------------


def slo_budgets(slos: Sequence[Mapping[str, Any]]) -> go.Figure:
    remaining = [s.get("remaining") for s in slos]
    colours = ["#999" if r is None else "#d62728" if r < 0 else "#ff7f0e" if r < 0.25 else "#2ca02c"
               for r in remaining]  # fmt: skip
    fig = go.Figure(go.Bar(x=[escape(s.get("name", "")) for s in slos], y=remaining, marker_color=colours,
                           text=[pct(r) for r in remaining], name="budget remaining",
                           width=[0.5] * len(slos) if len(slos) < 4 else None))  # fmt: skip
    fig.update_layout(title="Error budget remaining", yaxis=dict(title="budget remaining", tickformat=".0%"))
    return fig


# -- formatting ----------------------------------------------------------------------------------------


def time_text(value: Any, layout: str = "%Y-%m-%d %H:%M") -> str | None:
    """An ISO time in UTC, naive (plotly.js has no time zones); the text itself if it is not ISO."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).strftime(layout)


def plot_time(value: Any) -> str | None:
    return time_text(value, "%Y-%m-%d %H:%M:%S")


def num(value: Any, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def pct(value: Any) -> str:
    return "—" if value is None else f"{value:.1%}"


def escape(value: Any) -> str:
    return html.escape(str(value))

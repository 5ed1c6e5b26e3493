"""The HTML report: opens offline, one figure per section and version, escaped text, "no data" sections."""

from __future__ import annotations

import copy
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from mloop.monitoring.report import render_html, summary_text, write_html

START = datetime(2026, 12, 2, tzinfo=UTC)
WINDOWS = 24
DRIFT_FROM = 18  # amount drifts in v2's windows from here on
LABELS_UNTIL = 18  # labels arrive for v1's windows before this one
EMPTY = 5  # v1's window with no traffic


def iso(hour: int) -> str:
    return (START + timedelta(hours=hour)).isoformat()


def column(name: str, kind: str, method: str, statistic: float, *, p_value: float | None = None,
           threshold: float = 0.1, rows: int = 1200, drifted: bool | None = None, note: str = "") -> dict[str, Any]:  # fmt: skip
    if drifted is None and not note:
        drifted = p_value < threshold if p_value is not None else statistic >= threshold
    return {"column": name, "kind": kind, "method": method, "statistic": statistic, "p_value": p_value,
            "threshold": threshold, "drifted": drifted, "rows": rows, "note": note}  # fmt: skip


def drift_window(hour: int, version: int) -> dict[str, Any]:
    if version == 1 and hour == EMPTY:
        columns = [column(c, k, m, None, drifted=None, rows=0, note="no value in the window")
                   for c, k, m in (("amount", "numeric", "psi"), ("merchant", "categorical", "jensen_shannon"),
                                   ("age", "numeric", "ks"), ("__prediction__", "numeric", "psi"))]  # fmt: skip
        return {"start": iso(hour), "end": iso(hour + 1), "version": version, "rows": 0, "empty": True,
                "columns": columns}  # fmt: skip
    shifted = version == 2 and hour >= DRIFT_FROM
    columns = [
        column("amount", "numeric", "psi", 0.31 if shifted else 0.02 + 0.001 * hour),
        column("merchant", "categorical", "jensen_shannon", 0.04),
        column("age", "numeric", "ks", 0.03, p_value=0.4, threshold=0.05, rows=600),
        column("__prediction__", "numeric", "psi", 0.05),
    ]
    return {"start": iso(hour), "end": iso(hour + 1), "version": version, "rows": 1200, "empty": False,
            "columns": columns}  # fmt: skip


def performance_window(hour: int, version: int) -> dict[str, Any]:
    labelled = version == 1 and hour < LABELS_UNTIL
    realised = ({"rows": 800, "positives": 310 + hour, "positive_rate": 0.39, "threshold": 0.5,
                 "roc_auc": 0.9 + 0.001 * hour, "precision": 0.5, "recall": 0.7, "ece": 0.03, "log_loss": 0.41}
                if labelled else None)  # fmt: skip
    return {"start": iso(hour), "end": iso(hour + 1), "version": version, "rows": 1200,
            "labelled": 800 if labelled else 0, "coverage": 0.667 if labelled else 0.0, "realised": realised,
            "estimated": {"rows": 1200, "roc_auc": 0.89, "precision": 0.48, "recall": 0.71,
                          "positive_rate": 0.4}}  # fmt: skip


def make_report(endpoint: str = "fraud") -> dict[str, Any]:
    """v1 serves all 24 hourly windows, v2 (a canary) the last 12; amount drifts under v2 from hour 18."""
    versions = [(hour, 1) for hour in range(WINDOWS)] + [(hour, 2) for hour in range(12, WINDOWS)]
    versions.sort()
    return {
        "endpoint": endpoint, "since": iso(0), "until": iso(WINDOWS), "generated_at": iso(WINDOWS),
        "window": "1h",
        "drift": [drift_window(h, v) for h, v in versions],
        "predictions": [
            {"version": 1, "edges": [0.0, 0.25, 0.5, 0.75, 1.0], "reference": [0.7, 0.2, 0.07, 0.03],
             "current": [0.68, 0.21, 0.08, 0.03]},
            {"version": 2, "edges": [0.0, 0.25, 0.5, 0.75, 1.0], "reference": [0.7, 0.2, 0.07, 0.03],
             "current": [0.5, 0.3, 0.12, 0.08]},
        ],
        "performance": [performance_window(h, v) for h, v in versions],
        "slos": [
            {"name": "latency", "kind": "latency", "target": 0.99, "period": "30d", "events": 10000, "bad": 20,
             "remaining": 0.8, "sli": 0.998, "burn_rates": {"5m": 0.1, "1h": 0.1, "6h": 0.3, "3d": 0.2}},
            {"name": "availability", "kind": "availability", "target": 0.999, "period": "30d", "events": None,
             "bad": None, "remaining": None, "sli": None, "burn_rates": {"5m": None, "1h": None}},
        ],
        "alerts": [
            {"name": "drift", "severity": "ticket", "status": "firing",
             "summary": "amount drifted under v2: psi 0.31 >= 0.1 & rising", "started_at": iso(DRIFT_FROM),
             "resolved_at": None, "endpoint": endpoint, "key": "fraud/drift/amount", "labels": {"column": "amount"}},
        ],
    }  # fmt: skip


class Page(HTMLParser):
    """Every tag with its attributes, every script's text, and the visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        elif self._in is None:
            self.text.append(data)

    @property
    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if a.get("id")}

    @property
    def figures(self) -> dict[str, dict[str, Any]]:
        return {a["data-plot"]: json.loads(text) for a, text in self.scripts if a.get("data-plot")}

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def page() -> Page:
    return Page(render_html(make_report()))


def traces(page: Page, div_id: str) -> dict[str, dict[str, Any]]:
    return {t.get("name", t["type"]): t for t in page.figures[div_id]["data"]}


def test_the_report_opens_with_no_network(page: Page) -> None:
    assert page.scripts and all("src" not in attrs for attrs, _ in page.scripts)
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not (value or "").lower().startswith(("http://", "https://", "//")), (tag, name, value)
    assert not [a for tag, a in page.tags if tag == "link"]  # no stylesheet or font to fetch
    bundles = [text for _, text in page.scripts if "plotly.js v" in text]
    assert len(bundles) == 1 and len(bundles[0]) > 1_000_000
    assert "Plotly.newPlot" in page.scripts[-1][1]  # the loader runs after every figure's data


def test_each_section_and_version_has_its_figure(page: Page) -> None:
    expected = {f"plot-{kind}-v{v}" for kind in ("drift", "drift-share", "predictions", "performance")
                for v in (1, 2)} | {"plot-slo"}  # fmt: skip
    assert expected <= page.ids
    assert set(page.figures) == expected  # every figure's data is handed to the div with its id


def test_the_drift_heatmap_scores_one_at_the_threshold(page: Page) -> None:
    heatmap = page.figures["plot-drift-v2"]["data"][0]
    assert heatmap["type"] == "heatmap" and len(heatmap["x"]) == 12
    assert heatmap["y"] == ["amount", "merchant", "age", "(model output)"]
    amount, merchant, age, _ = heatmap["z"]
    assert all(z >= 1 for z in amount[DRIFT_FROM - 12 :]) and all(z < 1 for z in amount[: DRIFT_FROM - 12])
    assert merchant[0] == pytest.approx(0.4) and age[0] == pytest.approx(0.05 / 0.4)  # threshold / p-value
    assert "drifted" in heatmap["text"][0][-1] and "ks" in heatmap["text"][2][0]
    empty = page.figures["plot-drift-v1"]["data"][0]
    assert all(row[EMPTY] is None for row in empty["z"])
    assert "no value in the window" in empty["text"][0][EMPTY]

    share = page.figures["plot-drift-share-v2"]["data"][0]
    assert share["y"] == [0.0] * (DRIFT_FROM - 12) + [0.25] * (WINDOWS - DRIFT_FROM)
    assert page.figures["plot-drift-share-v1"]["data"][0]["y"][EMPTY] is None  # undecided, not "no drift"


def test_prediction_bars_compare_reference_and_current(page: Page) -> None:
    bars = traces(page, "plot-predictions-v2")
    assert set(bars) == {"reference", "current"} and bars["current"]["y"] == [0.5, 0.3, 0.12, 0.08]
    assert bars["reference"]["x"] == bars["current"]["x"] == [0.5, 1.5, 2.5, 3.5]  # numbers, not categories
    axis = page.figures["plot-predictions-v2"]["layout"]["xaxis"]
    assert axis["tickvals"] == [0, 1, 2, 3, 4] and axis["ticktext"] == ["0", "0.25", "0.5", "0.75", "1"]


def test_prediction_bins_whose_edges_print_alike_stay_apart() -> None:
    """Deciles of skewed scores: edges that agree to 3 significant figures no longer merge two bins."""
    edges = [0.0, 0.001231, 0.001234, 0.00124, 0.0013, 0.002, 0.01, 0.1, 1.0]
    report = {**make_report(), "predictions": [{"version": 1, "edges": edges, "reference": [0.125] * 8,
                                                "current": [0.1] * 6 + [0.2, 0.2]}]}  # fmt: skip
    figure = Page(render_html(report)).figures["plot-predictions"]
    for bars in figure["data"]:
        assert len(bars["x"]) == len(set(bars["x"])) == 8
    labels = figure["layout"]["xaxis"]["ticktext"]
    assert len(set(labels)) == 9 and labels[1:3] == ["0.001231", "0.001234"]


def axis_of(trace: dict[str, Any]) -> str:
    return trace.get("yaxis", "y")


def test_performance_keeps_each_scale_on_its_own_axis(page: Page) -> None:
    """Counts of rows (hundreds), coverage and 0-1 metrics never share an axis, so no metric is flattened."""
    for div in ("plot-performance-v1", "plot-performance-v2"):
        figure = page.figures[div]
        by_axis: dict[str, list[dict[str, Any]]] = {}
        for trace in figure["data"]:
            by_axis.setdefault(axis_of(trace), []).append(trace)
        for axis, members in by_axis.items():
            names = {t["name"] for t in members}
            counts = {"predictions", "labelled", "positives (labelled)"}
            assert names <= counts or not names & counts, (div, axis, names)
            assert names == {"label coverage"} or "label coverage" not in names, (div, axis, names)
            values = [v for t in members for v in t["y"] if v is not None]
            if max(values) <= 1:  # a 0-1 axis holds nothing beyond 1
                continue
            assert all(float(v).is_integer() for v in values), (div, axis, names)  # counts only, no share
        layout = figure["layout"]
        quality = next(a for a, m in by_axis.items() if any(t["name"].startswith("roc_auc") for t in m))
        assert layout["yaxis" + quality[1:]]["range"] == [0, 1.02]
        for trace in figure["data"]:
            assert not trace["name"].startswith(("rows (", "threshold", "positives (realised"))


def test_performance_draws_realised_solid_estimated_dashed(page: Page) -> None:
    v1 = traces(page, "plot-performance-v1")
    for metric in ("roc_auc", "precision", "recall"):
        assert v1[f"{metric} (realised)"]["line"]["dash"] == "solid"
        assert v1[f"{metric} (estimated)"]["line"]["dash"] == "dash"
        assert v1[f"{metric} (realised)"]["line"]["color"] == v1[f"{metric} (estimated)"]["line"]["color"]
    auc = v1["roc_auc (realised)"]["y"]
    assert auc[0] == pytest.approx(0.9) and auc[LABELS_UNTIL:] == [None] * (WINDOWS - LABELS_UNTIL)
    assert v1["positives (labelled)"]["y"][0] == 310 and v1["label coverage"]["y"][0] == 0.667
    v2 = traces(page, "plot-performance-v2")  # no labels yet: estimates only
    assert "roc_auc (realised)" not in v2 and "roc_auc (estimated)" in v2 and "label coverage" in v2


def test_no_legend_repeats_a_name_or_a_style_and_x_stays_in_the_range(page: Page) -> None:
    report = make_report()
    since, until = (report[k][:19].replace("T", " ") for k in ("since", "until"))
    for div, figure in page.figures.items():
        shown = [t for t in figure["data"] if t.get("showlegend", True) and t.get("name")]
        names = [t["name"] for t in shown]
        assert len(names) == len(set(names)), (div, names)
        styles = [(t.get("marker", {}).get("color") or t.get("line", {}).get("color"),
                   t.get("line", {}).get("dash", "solid")) for t in shown if t["type"] == "scatter"]  # fmt: skip
        assert len(styles) == len(set(styles)), (div, styles)
        for trace in figure["data"]:
            categories = [x for x in trace.get("x") or [] if isinstance(x, str)]
            assert len(categories) == len(set(categories)), (div, trace.get("name"))
            if div.startswith(("plot-drift", "plot-performance")):
                assert all(since <= x < until for x in categories), (div, categories[:2], since, until)


def test_slo_budgets_are_a_bar_and_a_table(page: Page) -> None:
    bar = page.figures["plot-slo"]["data"][0]
    assert bar["x"] == ["latency", "availability"] and bar["y"] == [0.8, None]
    assert "burn 6h" in page.visible and "80.0%" in page.visible and "0.9980" in page.visible


def test_user_text_is_escaped_not_markup() -> None:
    report = make_report(endpoint="<img onerror=x>")
    report["drift"][0]["columns"][0]["column"] = "<script>alert(1)</script>"
    text = render_html(report)
    page = Page(text)
    assert not [t for t, _ in page.tags if t == "img"]
    opened = sum(1 for t, _ in page.tags if t == "script")
    assert opened == len(page.scripts) == 11  # the bundle, 9 figures, the loader: none injected
    assert "Monitoring report: <img onerror=x>" in page.visible and "&lt;img onerror=x&gt;" in text
    assert "amount drifted under v2: psi 0.31 >= 0.1 & rising" in page.visible
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.figures["plot-drift-v1"]["data"][0]["y"]


def test_empty_sections_say_so() -> None:
    report = {**make_report(), "drift": [], "predictions": [], "performance": [], "slos": [], "alerts": []}
    page = Page(render_html(report))
    assert page.visible.count("No data") == 5 and not page.figures
    assert "0 windows, 0 with drift, 0 open alerts" in page.visible


def test_counts_are_plural_only_when_they_should_be(page: Page) -> None:
    assert "24 windows, 6 with drift, 1 open alert" in page.visible
    report = make_report()
    report["alerts"] += [{**report["alerts"][0], "key": "fraud/drift/x1"}]
    assert "2 open alerts" in Page(render_html(report)).visible


def test_one_version_and_regression_metrics() -> None:
    report = make_report()
    for section in ("drift", "predictions", "performance"):
        report[section] = [e for e in report[section] if e["version"] == 1]
    for entry in report["performance"]:
        entry["realised"] = entry["realised"] and {"rmse": 3.2, "mae": 2.1}
        entry["estimated"] = None
    page = Page(render_html(report))
    assert set(page.figures) == {"plot-drift", "plot-drift-share", "plot-predictions", "plot-performance",
                                 "plot-slo"}  # fmt: skip
    assert set(traces(page, "plot-performance")) == {"rmse (realised)", "mae (realised)", "predictions",
                                                     "labelled", "label coverage"}  # fmt: skip


def test_summary_text_names_drift_performance_budgets_and_alerts() -> None:
    lines = summary_text(make_report()).splitlines()
    assert lines[0] == "fraud: 2026-12-02 00:00 → 2026-12-03 00:00 UTC, 1h windows"
    assert "drift: 6 of 24 windows drifted (amount)" in lines
    realised = "realised roc_auc 0.917 (2026-12-02 17:00)"  # the last labelled window
    assert f"performance v1: {realised}; estimated roc_auc 0.89 (2026-12-02 23:00)" in lines
    assert "performance v2: estimated roc_auc 0.89 (2026-12-02 23:00)" in lines
    assert "SLO latency: 80.0% of budget left, SLI 0.9980 (target 0.9900)" in lines
    assert lines[-2] == "alerts: 1 open"
    assert lines[-1] == "  [ticket] drift: amount drifted under v2: psi 0.31 >= 0.1 & rising"


def test_write_html_replaces_the_file_whole_and_leaves_no_temp_file(tmp_path) -> None:
    target = tmp_path / "fraud.html"
    target.write_text("old report")
    report = make_report()
    assert write_html(report, target) == target
    assert target.read_text(encoding="utf-8") == render_html(report)
    assert [p.name for p in tmp_path.iterdir()] == ["fraud.html"]

    broken = copy.deepcopy(report)
    del broken["drift"][0]["columns"][0]["column"]
    with pytest.raises(KeyError):
        write_html(broken, target)
    assert target.read_text(encoding="utf-8") == render_html(report)  # the old file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["fraud.html"]


def test_a_report_into_a_missing_folder_names_the_folder(tmp_path) -> None:
    from mloop.errors import MalformedInput

    with pytest.raises(MalformedInput, match=r"the folder .*missing does not exist"):
        write_html(make_report(), tmp_path / "missing" / "fraud.html")  # it was a FileNotFoundError: exit 2
    assert list(tmp_path.iterdir()) == []


def test_a_window_without_predictions_is_a_gap_in_each_versions_plot_not_a_version() -> None:
    report = make_report()
    report["drift"] = [drift_window(h, 1) for h in range(3)] + [
        {"start": iso(3), "end": iso(4), "version": 0, "model": None, "rows": 0, "empty": True, "columns": [],
         "drifted": [], "note": "no predictions in this window: drift cannot be decided"}
    ]  # fmt: skip
    page = Page(render_html(report))
    heatmap = page.figures["plot-drift"]["data"][0]
    assert len(heatmap["x"]) == 4 and all(row[3] is None for row in heatmap["z"])
    assert page.figures["plot-drift-share"]["data"][0]["y"][3] is None


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_html_makes_a_file_others_may_read_as_the_umask_allows(tmp_path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        target = write_html(make_report(), tmp_path / "report.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode

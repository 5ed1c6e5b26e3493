"""The report in a real browser: Debian's headless Chromium, driven by Playwright, opens report.html of a
small monitored endpoint, draws every plotly chart with no JavaScript error, and the screenshot shows it.

The browser: tests/browser.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mloop import Project
from mloop.monitoring.report import write_html
from tests.browser import chromium
from tests.monitoring.stream import START, label, records, register, write

pytestmark = pytest.mark.slow
FIGURES = 5  # drift, drift share, predictions, performance, SLO budgets: one version


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three hours of a monitored endpoint in 15-minute windows: x1 shifts in the last, labels arrive for
    the first two, one latency SLO."""
    root = tmp_path_factory.mktemp("project")
    settings = {"window": "15m", "endpoints": {"fraud": {"slos": [{"kind": "latency", "target": 0.99,
                                                                   "threshold_ms": 50}]}}}  # fmt: skip
    with Project.open(root, env={}, monitoring=settings) as project:
        model = register(project)
        recs, truth = records(model, [0, 1, 2], 600, seed=4, shift_from=START + timedelta(hours=2))
        write(project, recs, "a")
        label(project, dict(list(truth.items())[:1200]))
        report = project.monitoring.report("fraud", since=START - timedelta(days=1))
    return write_html(report, root / "report.html")


def test_every_chart_renders_with_size_and_no_script_error(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(report_file.as_uri())
    page.wait_for_function(
        "document.querySelectorAll('div.plot .main-svg').length >= 5", timeout=30_000
    )  # plotly adds its SVG once a figure is drawn
    plots = page.query_selector_all("div.plot")
    assert len(plots) == FIGURES
    for plot in plots:
        box = plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200, (plot.get_attribute("id"), box)
        assert plot.query_selector(".main-svg") is not None, plot.get_attribute("id")
    performance = page.query_selector("#plot-performance")
    assert (
        performance is not None and len(performance.query_selector_all("[class^=legend]")) >= 3
    )  # one a panel
    assert len(page.query_selector_all("#plot-predictions .bars .point")) == 20  # 10 bins, two bars each
    shot = report_file.with_suffix(".png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("MLOOP_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["MLOOP_KEEP_SCREENSHOT"])
    assert errors == []
    page.close()

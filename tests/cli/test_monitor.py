"""``mloop monitor``: drift, performance, slo, alerts, check and report over a real prediction log."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from mloop import Project
from tests.cli.conftest import Run
from tests.monitoring.stream import START, records, register, write


@pytest.fixture
def logged(cli: Run) -> Run:
    root: Path = cli.root  # type: ignore[attr-defined]
    settings = {"monitoring": {"window": "1h", "endpoints": {"fraud": {
        "slos": [{"kind": "latency", "target": 0.99, "threshold_ms": 50}]}}}}  # fmt: skip
    (root / "mloop.yaml").write_text(yaml.safe_dump(settings))
    with Project.open(root, env={}) as project:
        model = register(project)
        recs, _ = records(model, [0, 1, 2], 1200, seed=11, shift_from=START + timedelta(hours=2))
        write(project, recs, "a")
    return cli


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        self.sources += [str(v) for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.slow
def test_drift_and_performance_tables_and_json(logged: Run) -> None:
    since = START.isoformat()
    table = logged("monitor", "drift", "fraud", "--since", since)
    assert table.code == 0, table.err
    assert "x1" in table.out and "no data: undecided" in table.out
    found = logged("monitor", "drift", "fraud", "--since", since, "--json").json()
    assert [e["drifted"] for e in found[:3]][2][:1] == ["x1"] and found[0]["drifted"] == []
    perf = logged("monitor", "performance", "fraud", "--since", since, "--json").json()
    assert perf[0]["labelled"] == 0 and perf[0]["estimated"]["roc_auc"] > 0.7
    assert logged("monitor", "performance", "fraud", "--since", since).code == 0


@pytest.mark.slow
def test_slo_check_alerts_and_report(logged: Run, tmp_path: Path) -> None:
    slo = logged("monitor", "slo", "fraud", "--json").json()
    assert [s["name"] for s in slo] == ["latency"]
    checked = logged("monitor", "check", "fraud")
    assert checked.code == 0 and "alert(s) opened" in checked.out
    listed = logged("monitor", "alerts", "fraud", "--json").json()
    assert [a["key"] for a in listed] == ["fraud/drift/v1"]
    target = tmp_path / "report.html"
    done = logged("monitor", "report", "fraud", "--since", START.isoformat(), "--out", str(target))
    assert done.code == 0, done.err
    tags = _Tags()
    tags.feed(target.read_text(encoding="utf-8"))
    assert {"plot-drift", "plot-drift-share", "plot-predictions", "plot-performance"} <= tags.ids
    assert tags.sources == []  # nothing to fetch: plotly.js is inline
    data = logged("monitor", "report", "fraud", "--since", START.isoformat(), "--json").json()
    assert {"drift", "predictions", "performance", "slos", "alerts"} <= set(data)


def test_an_unknown_endpoint_has_no_data_not_no_drift(cli: Run) -> None:
    found = cli("monitor", "drift", "nothing", "--since", "3h", "--json").json()
    assert len(found) == 3 and all(e["empty"] for e in found)

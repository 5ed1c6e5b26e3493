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
    rows = [line for line in table.out.splitlines() if f"{START:%Y-%m-%d}T" in line]
    assert len(rows) == 3 and "x1" in rows[0] and "02:00" in rows[0]  # the drifted window first
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
    assert checked.code == 0 and "1 alert opened" in checked.out
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


def test_an_unknown_endpoint_is_an_error_that_names_the_known_ones(logged: Run) -> None:
    for command in (("drift",), ("performance",), ("report",), ("slo",), ("alerts",)):
        done = logged("monitor", *command, "fruad")
        assert done.code != 0 and "No endpoint 'fruad'" in done.err and "known: fraud" in done.err, done.err


@pytest.fixture
def gappy(cli: Run) -> Run:
    """5-second windows, as the demo's project has, and traffic at hours 0, 1 and 5 (none in 2 to 4)."""
    root: Path = cli.root  # type: ignore[attr-defined]
    (root / "mloop.yaml").write_text(yaml.safe_dump({"monitoring": {"window": "5s"}}))
    with Project.open(root, env={}) as project:
        recs, _ = records(register(project), [0, 1, 5], 120, seed=5)
        write(project, recs, "a")
    return cli


@pytest.mark.slow
def test_the_documented_commands_work_with_5_second_windows(gappy: Run, tmp_path: Path) -> None:
    """6 hours of 5 s windows is 4,315 from the first prediction: coarsened, said on stderr; --window picks; no-data rows folded."""
    since = (START - timedelta(days=7)).isoformat()
    table = gappy("monitor", "drift", "fraud", "--since", since)
    assert table.code == 0, table.err
    said = " ".join(table.err.split())
    assert "holds 4,315 windows of 5s: read in 30s windows instead (pass --window" in said
    assert "without data hidden; --all to show" in table.out
    hourly = gappy("monitor", "drift", "fraud", "--since", since, "--window", "1h")
    assert hourly.code == 0 and hourly.err == "" and "3 windows without data hidden" in hourly.out
    everything = gappy("monitor", "drift", "fraud", "--since", since, "--window", "1h", "--all")
    assert "no data: undecided" in everything.out and "hidden" not in everything.out
    assert len(gappy("monitor", "drift", "fraud", "--since", since, "--window", "1h", "--json").json()) == 6
    target = tmp_path / "report.html"
    report = gappy("monitor", "report", "fraud", "--since", since, "--window", "1h", "--out", str(target))
    assert report.code == 0, report.err
    assert "1h windows" in report.out and "6 windows" in target.read_text(encoding="utf-8")

"""``mloop demo --case recsys --fast`` end to end, its outcome read from what the project keeps: the event
log (the loop's trigger, gate, A/B test and promotion), the prediction log (which version answered whom)
and the summary.

The challenger that ships is v2 when the first retrain comes after the shift, v3 when a busy machine
makes the trigger fire on the shift's first round and that retrain's gate refuses it (docs/recsys.md):
the tests name it from the A/B test's start, not by number."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from mloop import Project
from mloop.predictions.files import read_predictions
from mloop.predictions.log import predictions_folder

pytest.importorskip("faiss")
pytest.importorskip("torch")

from mloop.examples.recsys.demo import run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recsys-demo")]  # one demo run for the module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any], str]]:
    folder = tmp_path_factory.mktemp("recsys") / "shop"
    console = Console(file=io.StringIO(), width=120)
    summary = run(folder, fast=True, console=console)
    yield folder, summary, console.file.getvalue()  # type: ignore[attr-defined]


def _timeline(folder: Path) -> list[dict[str, Any]]:
    with Project.open(folder, env={}) as project:
        return project.loop.timeline("recs-towers")


def test_the_shift_triggers_a_retrain_whose_challenger_goes_to_an_ab_test(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, _ = demo
    timeline = _timeline(folder)
    actions = [e["action"] for e in timeline]
    assert "loop.trigger" in actions and "ctr" in timeline[actions.index("loop.trigger")]["reason"]
    daily = summary["ctr_by_day"]
    before = [c for (day, v), c in daily.items() if v == 1 and day < summary["shift_day"]]
    after = [c for (day, v), c in daily.items() if v == 1 and day >= summary["shift_day"]]
    assert sum(before) / len(before) > sum(after) / len(after)  # the shift took v1's click-through rate down
    started = next(e for e in timeline if e["action"] == "loop.ab" and str(e.get("started")) == "True")
    challenger, champion = int(started["challenger"]), int(started["champion"])
    assert champion == 1 and challenger > 1
    gate = next(
        e for e in reversed(timeline) if e["action"] == "loop.gate" and int(e["challenger"]) == challenger
    )
    assert str(gate["passed"]) == "True"
    assert float(gate["challenger_value"]) >= float(gate["champion_value"]) + 0.1  # the FAST gate's min_gain
    with Project.open(folder, env={}) as project:
        assert project.models.index_stamp("towers", challenger) is not None  # served with its own index
    looks = [
        e
        for e in timeline
        if e["action"] in ("loop.ab", "loop.promote", "loop.rollback") and "arms" in e.get("numbers", {})
    ]
    assert looks and {a["version"] for a in looks[-1]["numbers"]["arms"]} == {champion, challenger}
    assert summary["ab"] == looks[-1]["numbers"]  # the summary shows what the loop decided on


def test_the_ab_test_ships_the_challenger(demo: tuple[Path, dict[str, Any], str]) -> None:
    folder, summary, printed = demo
    timeline = _timeline(folder)
    started = next(e for e in timeline if e["action"] == "loop.ab" and str(e.get("started")) == "True")
    challenger = int(started["challenger"])
    promoted = [e for e in timeline if e["action"] == "loop.promote"]
    assert len(promoted) == 1 and str(promoted[0].get("ab")) == "True"  # promoted by the A/B test, once
    assert int(promoted[0]["champion"]) == challenger == summary["shipped"]
    decision = promoted[0]["numbers"]
    assert decision["decision"] == "ship" and decision["p_value"] <= decision["alpha"]
    arms = {a["version"]: a["mean"] for a in decision["arms"]}
    assert arms[challenger] > arms[1] and decision["lift_low"] > 0  # the lift's always-valid interval
    assert not [e for e in timeline if e["action"] == "loop.rollback"]
    with Project.open(folder, env={}) as project:
        assert project.models.get("towers", alias="champion").version == challenger
        after = read_predictions(
            predictions_folder(project.settings), "recs-towers", pd.Timestamp(promoted[0]["ts"])
        )
    latest = after[after["revision"] == after["revision"].max()]  # the promotion's revision, once served
    assert len(latest) and set(latest["version"]) == {challenger}  # the challenger alone serves afterwards
    assert f"ship: shipped v{challenger}" in printed


def test_the_prediction_log_shows_the_split_sticky_by_user(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, _, _ = demo
    timeline = _timeline(folder)
    started = next(e for e in timeline if e["action"] == "loop.ab" and str(e.get("started")) == "True")
    with Project.open(folder, env={}) as project:
        during = read_predictions(
            predictions_folder(project.settings), "recs-towers", pd.Timestamp(started["ts"])
        )
    split = during.groupby("revision")["version"].nunique().idxmax()  # the A/B split's revision
    during = during[during["revision"] == split]
    assert set(during["version"]) == {int(started["champion"]), int(started["challenger"])}
    assert (during.groupby("user_id")["version"].nunique() == 1).all()  # sticky by user
    assert during["request_id"].str.endswith("/retrieve").all()  # the pipeline's stage rows


def test_the_summary_and_the_html_report(demo: tuple[Path, dict[str, Any], str]) -> None:
    folder, summary, printed = demo
    assert summary["offline"]["recall@100"] > 0.2 and summary["offline"]["ndcg@10"] > 0.2
    assert set(summary["stage_p99_ms"]) == {"retrieve", "rank", "top"}
    assert "A/B decision" in printed and "towers v1 recall@100" in printed
    page = (folder / "report.html").read_text()
    assert 'id="plot-ctr"' in page and "Plotly.newPlot" in page and "loop.trigger" in page
    assert "<script src=" not in page  # plotly.js is inline: the page opens without a network

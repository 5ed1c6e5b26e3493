"""``mloop demo --case recsys --fast`` end to end, its outcome read from what the project keeps: the event
log (the loop's trigger, gate, A/B and promotion), the prediction log (which version answered whom) and
the feedback joined to it (the arms' click-through rates)."""

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


def test_the_shift_retrains_and_the_ab_test_ships_the_challenger(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, summary, _ = demo
    timeline = _timeline(folder)
    actions = [e["action"] for e in timeline]
    assert "loop.trigger" in actions and "ctr" in timeline[actions.index("loop.trigger")]["reason"]
    promoted = [e for e in timeline if e["action"] == "loop.promote"]
    assert len(promoted) == 1, actions
    shipped = promoted[0]
    assert str(shipped["ab"]) == "True" and shipped["numbers"]["decision"] == "ship"
    started = next(e for e in timeline if e["action"] == "loop.ab" and str(e.get("started")) == "True")
    challenger, champion = int(started["challenger"]), int(started["champion"])
    assert int(shipped["champion"]) == challenger and int(shipped["previous"]) == champion == 1
    gate = next(
        e for e in reversed(timeline) if e["action"] == "loop.gate" and int(e["challenger"]) == challenger
    )
    assert str(gate["passed"]) == "True"
    arms = {int(a["version"]): a for a in shipped["numbers"]["arms"]}
    assert arms[challenger]["mean"] > arms[champion]["mean"] and shipped["numbers"]["p_value"] < 0.05
    with Project.open(folder, env={}) as project:
        assert project.models.get("towers", alias="champion").version == challenger
    assert summary["shipped"] == challenger


def test_the_prediction_log_shows_a_sticky_split_then_the_challenger_alone(
    demo: tuple[Path, dict[str, Any], str],
) -> None:
    folder, _, _ = demo
    timeline = _timeline(folder)
    started = next(e for e in timeline if e["action"] == "loop.ab" and str(e.get("started")) == "True")
    shipped = next(e for e in timeline if e["action"] == "loop.promote")
    begin, end = pd.Timestamp(started["ts"]), pd.Timestamp(shipped["ts"])
    with Project.open(folder, env={}) as project:
        logged = read_predictions(predictions_folder(project.settings), "recs-towers", begin.to_pydatetime())
    during = logged[logged["ts"] < end]
    split = during.groupby("revision")["version"].nunique().idxmax()  # the A/B split's revision
    during = during[during["revision"] == split]
    assert set(during["version"]) == {int(started["champion"]), int(started["challenger"])}
    assert (during.groupby("user_id")["version"].nunique() == 1).all()  # sticky by user
    assert during["request_id"].str.endswith("/retrieve").all()  # the pipeline's stage rows
    after = logged[logged["revision"] > split]  # the promotion's revision: the challenger alone
    assert len(after) and set(after["version"]) == {int(shipped["champion"])}


def test_the_summary_and_the_html_report(demo: tuple[Path, dict[str, Any], str]) -> None:
    folder, summary, printed = demo
    assert summary["offline"]["recall@100"] > 0.2 and summary["offline"]["ndcg@10"] > 0.2
    assert set(summary["stage_p99_ms"]) == {"retrieve", "rank", "top"}
    assert "A/B decision" in printed and "ship" in printed
    page = (folder / "report.html").read_text()
    assert 'id="plot-ctr"' in page and "Plotly.newPlot" in page and "loop.promote" in page
    assert "<script src=" not in page  # plotly.js is inline: the page opens without a network

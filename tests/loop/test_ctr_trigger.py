"""``OnPerformance(metric="ctr")``: a recommender's loop retrains when the champion's click-through rate,
read from click feedback, falls below a floor; for a pipeline stage the labels are those of the pipeline's
request, as the A/B report reads them. Checked on a prediction log written as the server writes it."""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop import Project
from mloop._time import utcnow
from mloop.errors import MalformedInput
from mloop.loop.triggers import check
from mloop.predictions.log import predictions_folder
from tests.monitoring.ab_log import label, serve


@pytest.fixture
def towers(tmp_path: Path) -> Iterator[Project]:
    with Project.open(tmp_path, env={}) as project:
        x = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
        project.models.register("towers", LogisticRegression().fit(x, x["a"] > 0), input_example=x.head(5))
        yield project


def _served(project: Project, clicked: list[bool], start: float) -> None:
    """A pipeline ``recs`` whose stage ``retrieve`` (endpoint recs-towers) answered each request with v1;
    the pipeline's requests labelled clicked or not."""
    folder = Path(str(predictions_folder(project.settings)))
    rids = serve(folder, "recs", "recs", [0] * len(clicked), start)
    serve(folder, "recs-towers", "towers", [1] * len(clicked), start, rids=rids, suffix="/retrieve")
    label(folder, "recs", [(rid, 0, c) for rid, c in zip(rids, clicked, strict=True)])


@pytest.mark.parametrize(("rate", "fires"), [(0.05, True), (0.3, False)])
def test_the_champions_click_through_rate_below_the_floor_fires(
    towers: Project, rate: float, fires: bool
) -> None:
    now = utcnow()
    clicked = [bool(c) for c in np.random.default_rng(1).random(300) < rate]
    _served(towers, clicked, (now - timedelta(minutes=30)).timestamp())
    trigger = ml.OnPerformance(metric="ctr", below=0.1, window="1h", min_labels=200)
    policy = types.SimpleNamespace(endpoint="recs-towers")
    champion = towers.models.get("towers", version=1)
    fired = check(trigger, towers, policy, champion, None, now)
    assert (fired is not None) == fires
    if fired is not None:
        assert fired.numbers["labelled"] == 300 and fired.numbers["value"] == pytest.approx(np.mean(clicked))
        assert "realised ctr" in fired.reason


def test_too_few_labels_or_an_older_window_do_not_fire(towers: Project) -> None:
    now = utcnow()
    _served(towers, [False] * 300, (now - timedelta(hours=3)).timestamp())  # all outside the window
    _served(towers, [False] * 50, (now - timedelta(minutes=5)).timestamp())  # too few inside it
    trigger = ml.OnPerformance(metric="ctr", below=0.1, window="1h", min_labels=100)
    champion = towers.models.get("towers", version=1)
    assert check(trigger, towers, types.SimpleNamespace(endpoint="recs-towers"), champion, None, now) is None


def test_an_unknown_metric_is_still_refused() -> None:
    with pytest.raises(MalformedInput, match="Unknown metric"):
        ml.OnPerformance(metric="clicks")

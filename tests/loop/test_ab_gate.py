"""The loop's online gate, ``Gate(ab_metric="ctr")``: after the offline gate the challenger goes into a
sticky A/B split with the champion, and the sequential test on live clicks ships it on a real lift and
keeps the champion when there is none; every step read back from the event log. Training is replaced by
a report of a challenger already registered (the loop's training path has its own tests)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop as ml
from mloop import Project
from mloop._time import utcnow
from mloop.errors import ConfigError
from mloop.loop import controller as controller_module
from mloop.loop.controller import LoopController
from mloop.loop.policy import policies_from_settings
from mloop.predictions.log import predictions_folder
from tests.monitoring.ab_log import label, serve


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """Model ``shop`` v1 (champion, serving with sticky key user_id) and v2 (what the retrain made)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": rng.integers(0, 50, 60), "x": rng.normal(size=60)})
    model = LogisticRegression().fit(frame, frame["x"] > 0)
    with Project.open(tmp_path, env={}) as project:
        for _ in (1, 2):
            project.models.register("shop", model, input_example=frame.head(5))
        project.models.set_alias("shop", "champion", 1)
        project.deploy("shop", "shop", version=1, sticky_key="user_id")
        report = {"stage": "trained", "checks": [], "metric": "roc_auc", "challenger": 2, "challenger_value": 0.8,
                  "champion_value": 0.8}  # fmt: skip
        monkeypatch.setattr(controller_module, "retrain", lambda *args: dict(report))
        yield project


def _controller(project: Project, **gate: Any) -> LoopController:
    policy = ml.LoopPolicy(
        "shop", types.SimpleNamespace(name="shop"), triggers=[ml.Schedule("* * * * *")],
        gate=ml.Gate(metric="auc", max_latency_ms=None, ab_metric="ctr", ab_mde=0.3, **gate),
        rollout=ml.Canary(min_requests=20, compare=None), rollback=None,
    )  # fmt: skip
    return LoopController(project, [policy], train="inprocess")


def _clicks(project: Project, start: float, n: int, ctr: dict[int, float], seed: int) -> None:
    """``n`` requests split evenly between the arms from ``start`` (epoch s), each clicked with its arm's rate."""
    rng = np.random.default_rng(seed)
    folder = Path(str(predictions_folder(project.settings)))
    versions = rng.permutation(np.resize(sorted(ctr), n))
    revision = project.deployments.get("shop").revision  # the A/B step's, as the server logs it
    rids = serve(folder, "shop", "shop", versions.tolist(), start, revision=revision)
    clicked = rng.random(n) < np.array([ctr[int(v)] for v in versions])
    label(folder, "shop", [(rid, 0, bool(c)) for rid, c in zip(rids, clicked, strict=True)])


def _actions(project: Project) -> list[str]:
    return [e["action"] for e in project.loop.timeline("shop", alerts=False)]


def _start(project: Project, **gate: Any) -> tuple[LoopController, Any]:
    now = utcnow() + timedelta(minutes=2)  # the schedule "every minute" is due since v1 was registered
    controller = _controller(project, **gate)
    (first,) = controller.tick(now)
    assert first["decision"] == "ab" and "50% of the traffic in an A/B test against v1" in first["reason"]
    live = project.deployments.get("shop")
    assert sorted((r.version, r.weight) for r in live.routes) == [(1, 0.5), (2, 0.5)]
    assert live.sticky_key == "user_id"  # kept from the deployment: a user stays in one arm
    return controller, now


def test_a_real_lift_in_clicks_ships_the_challenger(shop: Project) -> None:
    controller, now = _start(shop)
    after = now.timestamp() + 1
    _clicks(shop, after, 150, {1: 0.1, 2: 0.3}, seed=1)  # under 100 outcomes an arm: no look yet
    (waiting,) = controller.tick(now + timedelta(minutes=1))
    assert waiting["decision"] == "ab" and "need more data" in waiting["reason"]
    assert controller.tick(now + timedelta(minutes=2))[0]["decision"] == "ab"  # nothing new: no new event
    _clicks(shop, after + 200, 1000, {1: 0.1, 2: 0.3}, seed=2)
    (shipped,) = controller.tick(now + timedelta(minutes=3))
    assert shipped["decision"] == "promote" and shipped["reason"].startswith("A/B: ship: v2 is above v1")
    assert shop.models.get("shop", alias="champion").version == 2
    assert shop.models.get("shop", alias="previous").version == 1
    assert [(r.version, r.weight) for r in shop.deployments.get("shop").routes] == [(2, 1.0)]
    assert _actions(shop) == ["loop.trigger", "loop.gate", "loop.ab", "loop.ab", "loop.promote"]
    timeline = shop.loop.timeline("shop", alerts=False)
    look = timeline[3]["numbers"]
    assert look["decision"] == "need more data" and look["outcomes"] == 150 and look["control"] == 1
    numbers = timeline[-1]["numbers"]
    assert numbers["p_value"] <= 0.05 and numbers["lift_low"] > 0 and numbers["decision"] == "ship"
    assert shop.loop.state("shop").phase == "idle"


def test_no_lift_keeps_the_champion_at_the_maximum_sample(shop: Project) -> None:
    controller, now = _start(shop, ab_max_samples=300)
    _clicks(shop, now.timestamp() + 1, 700, {1: 0.2, 2: 0.2}, seed=3)
    (kept,) = controller.tick(now + timedelta(minutes=1))
    assert kept["decision"] == "rollback" and "maximum sample reached without significance" in kept["reason"]
    assert [(r.version, r.weight) for r in shop.deployments.get("shop").routes] == [(1, 1.0)]
    assert shop.models.get("shop", alias="champion").version == 1
    with pytest.raises(ml.NotFound):
        shop.models.get("shop", alias="challenger")
    assert _actions(shop)[-1] == "loop.rollback" and shop.loop.state("shop").phase == "idle"


def test_a_failing_challenger_is_rolled_back_by_the_canary_safety_checks(shop: Project) -> None:
    controller, now = _start(shop)
    serve(
        Path(str(predictions_folder(shop.settings))),
        "shop",
        "shop",
        [2] * 5,
        now.timestamp() + 1,
        status="error",
        revision=shop.deployments.get("shop").revision,
    )
    (back,) = controller.tick(now + timedelta(minutes=1))
    assert back["decision"] == "rollback" and "5 failed requests" in back["reason"]
    assert [(r.version, r.weight) for r in shop.deployments.get("shop").routes] == [(1, 1.0)]


def test_the_gate_reads_its_ab_settings_from_mloop_yaml_and_refuses_bad_ones() -> None:
    spec = {
        "endpoint": "shop",
        "pipeline": "x:y",
        "gate": {"ab_metric": "ctr", "ab_share": 0.2, "ab_mde": 0.05},
    }
    (policy,) = policies_from_settings([spec])
    assert (policy.gate.ab_metric, policy.gate.ab_share, policy.gate.ab_mde) == ("ctr", 0.2, 0.05)
    with pytest.raises(ConfigError, match="ab_metric='revenue'.*'ctr' or 'mean'"):
        policies_from_settings([{**spec, "gate": {"ab_metric": "revenue"}}])
    with pytest.raises(ConfigError, match=r"ab_share=1.5"):
        policies_from_settings([{**spec, "gate": {"ab_metric": "ctr", "ab_share": 1.5}}])

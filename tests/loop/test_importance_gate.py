"""The loop's gate reports how a challenger's reliance on each feature moved against the champion's, and
``Gate(max_importance_shift=)`` fails a challenger whose reliance moved too far, naming the feature."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

import mloop as ml
from mloop import Project
from mloop.loop.controller import LoopController
from mloop.loop.policy import policies_from_settings
from mloop.loop.retrain import _importance_shift, decide
from tests.training.fraud import setup


def _fit(weight: float, rng: np.random.Generator) -> tuple[Any, pd.DataFrame]:
    frame = pd.DataFrame({"amount": rng.normal(size=500), "hour": rng.normal(size=500)})
    model = lightgbm.LGBMRegressor(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1)
    return model.fit(frame, weight * frame["amount"] + frame["hour"]), frame


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, pd.DataFrame]]:
    """v1 leans on ``hour``, v2 on ``amount`` (three times its weight): loaded from a registry."""
    rng = np.random.default_rng(0)
    with Project.open(tmp_path_factory.mktemp("gate"), env={}) as project:
        for weight in (0.5, 3.0):
            model, frame = _fit(weight, rng)
            project.models.register("scores", model, input_example=frame.head(20))
        yield project.models.load("scores", 2), project.models.load("scores", 1), frame


def _report(**extra: Any) -> dict[str, Any]:
    return {"stage": "trained", "checks": [], "metric": "rmse", "challenger_value": 0.5, "champion_value": 0.5,
            **extra}  # fmt: skip


def test_the_report_lists_each_feature_largest_move_first_in_words(versions) -> None:  # type: ignore[no-untyped-def]
    new, old, holdout = versions
    found = _importance_shift(new, old, holdout, seed=0)
    assert [s["feature"] for s in found["shifts"]] == ["amount", "hour"] and found["rows"] == 500
    amount = found["shifts"][0]
    assert amount["after"] > amount["before"] + 0.3 and amount["change"] == pytest.approx(
        -found["shifts"][1]["change"]
    )
    assert amount["sentence"].startswith(f"v2 relies {amount['relative']:.0%} more on `amount` (share ")
    passed, checks = decide(ml.Gate(metric="rmse", max_latency_ms=None), _report(importance_shift=found))
    assert passed and not [c for c in checks if c["name"].startswith("importance")]  # default: report only


def test_a_shift_over_the_limit_fails_the_gate_naming_the_feature(versions) -> None:  # type: ignore[no-untyped-def]
    new, old, holdout = versions
    found = _importance_shift(new, old, holdout, seed=0)
    move = abs(found["largest"]["change"])
    passed, checks = decide(ml.Gate(metric="rmse", max_latency_ms=None, max_importance_shift=0.3),
                            _report(importance_shift=found))  # fmt: skip
    (check,) = [c for c in checks if c["name"].startswith("importance")]
    assert not passed and check["name"] == "importance_shift:amount" and check["value"] == round(move, 4)
    assert check["limit"] == 0.3 and "more on `amount`" in check["sentence"]
    loose = decide(ml.Gate(metric="rmse", max_latency_ms=None, max_importance_shift=min(1.0, move + 0.01)),
                   _report(importance_shift=found))  # fmt: skip
    assert loose[0]


def test_a_model_that_cannot_be_explained_is_reported_and_never_fails_the_gate(versions) -> None:  # type: ignore[no-untyped-def]
    new, old, holdout = versions
    found = _importance_shift(new, old, holdout.drop(columns=["hour"]), seed=0)
    assert "reads inputs the new holdout lacks" in found["note"]
    gate = ml.Gate(metric="rmse", max_latency_ms=None, max_importance_shift=0.01)
    assert decide(gate, _report(importance_shift=found))[0]
    assert decide(gate, _report(importance_shift={"note": "not computed: No explainer for 'pytorch'"}))[0]


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "0.3", True])
def test_max_importance_shift_must_be_a_share(bad: Any) -> None:
    with pytest.raises(ml.MalformedInput, match=r"max_importance_shift=.*a number in \(0, 1\] like 0.3"):
        ml.Gate(max_importance_shift=bad)
    assert ml.Gate(max_importance_shift=1).max_importance_shift == 1


def test_the_controller_records_the_shift_and_names_the_feature_when_it_fails(tmp_path: Path) -> None:
    with Project.open(tmp_path, env={}) as project:
        pipeline, frame = setup(project, tmp_path, rows=2_000)
        small = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1)
        pipeline = ml.TrainingPipeline(**{**pipeline.__dict__, "model": small})
        pipeline.run(project)
        project.models.set_alias("fraud", "champion", 1)
        project.deploy("fraud", "fraud", version=1)
        later = frame.tail(30).assign(ts=frame["ts"].max() + pd.Timedelta(days=1))
        grown = ml.Label(pd.concat([frame, later], ignore_index=True), column="is_fraud", timestamp="ts")
        gate = ml.Gate(metric="auc", min_gain=-1.0, max_latency_ms=None, max_importance_shift=0.001)
        policy = ml.LoopPolicy("fraud", ml.TrainingPipeline(**{**pipeline.__dict__, "label": grown}),
                               triggers=[ml.OnNewData(rows=1)], gate=gate, rollback=None)  # fmt: skip
        (decision,) = LoopController(project, [policy], train="inprocess").tick()
        event = next(e for e in project.loop.timeline("fraud", alerts=False) if e["action"] == "loop.gate")
        card = project.models.card("fraud", 2, format="json")
    assert decision["decision"] == "gate_failed"
    shifts = event["importance_shift"]["shifts"]
    largest = shifts[0]["feature"]
    assert f"importance_shift:{largest}" in decision["reason"] and "v2 relies" in decision["reason"]
    assert isinstance(card, dict)  # the gate's "after" is the challenger's card, on the same holdout rows
    assert {s["feature"]: s["after"] for s in shifts} == pytest.approx(card["importance"]["shares"])


def test_mloop_yaml_takes_the_limit_and_names_a_bad_one() -> None:
    spec = {"endpoint": "fraud", "pipeline": "pkg.mod:pipe", "gate": {"max_importance_shift": 0.3}}
    (policy,) = policies_from_settings([spec])
    assert policy.gate.max_importance_shift == 0.3
    with pytest.raises(ml.ConfigError, match=r"loop.policies entry 1 .*max_importance_shift=2"):
        policies_from_settings([{**spec, "gate": {"max_importance_shift": 2}}])

"""The gate's paired bootstrap of a metric's gain, and the gate decision that uses it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mloop as ml
from mloop.errors import MalformedInput
from mloop.loop.retrain import decide
from mloop.metrics.bootstrap import paired_gain


def _scored(rows: int, seed: int, skill: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.2).astype(float)
    return y, y * skill + rng.normal(0, 1, rows)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(rows=st.integers(60, 400), seed=st.integers(0, 10_000))
def test_a_model_against_itself_gains_nothing_with_certainty(rows: int, seed: int) -> None:
    y, s = _scored(rows, seed, 1.0)
    got = paired_gain("roc_auc", "binary", y, s, s, resamples=50)
    assert got["gain"] == got["low"] == got["high"] == 0.0 and got["resamples"] > 0


@pytest.mark.slow
def test_a_clearly_better_model_has_a_positive_lower_bound_and_a_coin_flip_does_not() -> None:
    y, strong = _scored(600, 1, 2.5)
    _, weak = _scored(600, 1, 0.5)
    better = paired_gain("roc_auc", "binary", y, strong, weak)
    assert better["low"] > 0.1 and better["low"] <= better["gain"] <= better["high"]
    rng = np.random.default_rng(2)
    noisy = strong + rng.normal(0, 0.3, len(strong))  # the same model, jittered: no real gain
    same = paired_gain("roc_auc", "binary", y, noisy, strong)
    assert same["low"] < 0 < same["high"]


def test_error_metrics_gain_when_the_error_falls() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 1, 500)
    close, far = truth + rng.normal(0, 0.1, 500), truth + rng.normal(0, 1.0, 500)
    got = paired_gain("rmse", "regression", truth, close, far, lower_is_better=True)
    assert got["gain"] > 0.5 and got["low"] > 0.5
    assert paired_gain("r2", "regression", truth, close, far)["low"] > 0.5  # the generic path


def test_the_gate_fails_a_gain_inside_the_noise_and_names_the_bound() -> None:
    report = {"stage": "trained", "metric": "roc_auc", "challenger_value": 0.86, "champion_value": 0.85,
              "gain_interval": {"gain": 0.01, "low": -0.02, "high": 0.04, "resamples": 500}}  # fmt: skip
    passed, checks = decide(ml.Gate(confidence=0.9, max_latency_ms=None), report)
    by_name = {c["name"]: c for c in checks}
    assert not passed and by_name["roc_auc_gain"]["passed"] and not by_name["roc_auc_gain_low"]["passed"]
    assert by_name["roc_auc_gain_low"]["value"] == -0.02 and by_name["roc_auc_gain_low"]["confidence"] == 0.9
    sure = report | {"gain_interval": {"gain": 0.01, "low": 0.004, "high": 0.02, "resamples": 500}}
    assert decide(ml.Gate(confidence=0.9, max_latency_ms=None), sure)[0]
    assert decide(ml.Gate(max_latency_ms=None), report)[0]  # without confidence, the point gain decides
    with pytest.raises(MalformedInput, match="between 0.5 and 1"):
        ml.Gate(confidence=1.5)

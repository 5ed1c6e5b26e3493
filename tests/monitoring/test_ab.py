"""A/B analysis: the sequential test keeps its false-positive rate under repeated looks where a peeked
t-test does not, has power on a real lift, and the reader finds arms and outcomes of plain and stage
endpoints in a real prediction log with feedback; ``project.ab.report`` and ``mloop ab report``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from mloop.errors import MalformedInput
from mloop.metrics.sequential import msprt, sample_size
from mloop.monitoring.ab import analyse, outcomes
from tests.monitoring.ab_log import label, serve

ALPHA = 0.05
EXPERIMENTS = 300
LOOK_EVERY = 100  # outcomes between two looks of the peeking analyst


def _experiment(
    rng: np.random.Generator, n: int, control: float, treatment: float
) -> tuple[np.ndarray, np.ndarray]:
    treated = rng.random(2 * n) < 0.5
    clicks = (rng.random(2 * n) < np.where(treated, treatment, control)).astype(np.float64)
    return treated, clicks


def _peeked_t_test(treated: np.ndarray, clicks: np.ndarray) -> bool:
    """The fixed-horizon two-sample test (normal approximation of the t-test, thousands of outcomes)
    run at every look: does any look reject?"""
    looks = np.arange(LOOK_EVERY, len(clicks) + 1, LOOK_EVERY) - 1
    n = [np.cumsum(~treated)[looks], np.cumsum(treated)[looks]]
    s = [np.cumsum(np.where(~treated, clicks, 0))[looks], np.cumsum(np.where(treated, clicks, 0))[looks]]
    pa, pb = s[0] / np.maximum(n[0], 1), s[1] / np.maximum(n[1], 1)
    se = np.sqrt(pa * (1 - pa) / np.maximum(n[0], 1) + pb * (1 - pb) / np.maximum(n[1], 1))
    z = np.abs(pb - pa) / np.where(se > 0, se, np.inf)
    return bool(np.any(2 * norm.sf(z) <= ALPHA))


def test_a_and_a_stays_under_alpha_however_often_one_looks_while_a_peeked_t_test_does_not() -> None:
    rng = np.random.default_rng(7)
    sequential = peeked = 0
    for _ in range(EXPERIMENTS):
        treated, clicks = _experiment(rng, 2000, 0.10, 0.10)
        sequential += msprt(treated, clicks, binary=True, alpha=ALPHA, mde=0.3).p_value <= ALPHA
        peeked += _peeked_t_test(treated, clicks)
    # the always-valid p-value is the minimum over every arrival: a superset of looks every 100 outcomes
    assert sequential / EXPERIMENTS <= ALPHA
    assert peeked / EXPERIMENTS > 2 * ALPHA  # 40 peeks at a fixed-horizon test: about 0.2 here


def test_a_real_lift_is_found_within_the_stated_sample() -> None:
    """CTR 0.10 against 0.13 (a 30% lift): the fixed-horizon plan needs 1,772 per arm; the sequential
    test, free to look at any time, reaches power 0.8 within 4,000 per arm (about 2.3 times)."""
    assert sample_size(0.10, 0.30, alpha=ALPHA, power=0.8, binary=True) == 1772
    rng = np.random.default_rng(3)
    found = [
        msprt(*_experiment(rng, 4000, 0.10, 0.13), binary=True, alpha=ALPHA, mde=0.3)
        for _ in range(EXPERIMENTS)
    ]
    power = np.mean([r.p_value <= ALPHA and r.lift > 0 for r in found])
    assert power >= 0.8
    covered = np.mean([r.low is not None and r.high is not None and r.low <= 0.03 <= r.high for r in found])
    assert covered >= 1 - ALPHA  # the always-valid interval holds the true lift


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(5.0, 50.0), st.floats(0.0, 0.5))
def test_a_numeric_outcome_interval_moves_with_the_lift(seed: int, mean: float, lift: float) -> None:
    rng = np.random.default_rng(seed)
    treated = rng.random(1200) < 0.5
    values = rng.normal(mean, 5.0, 1200) + np.where(treated, lift * mean, 0.0)
    result = msprt(treated, values, binary=False, alpha=ALPHA, mde=0.1)
    assert result.low is not None and result.high is not None and result.low <= result.lift <= result.high
    shifted = msprt(treated, values + np.where(treated, 3.0, 0.0), binary=False, alpha=ALPHA, mde=0.1)
    assert shifted.lift == pytest.approx(result.lift + 3.0)
    assert 0 <= result.p_value <= 1 and result.looks > 0
    if lift * mean >= 5.0:  # a lift of one standard deviation over 600 outcomes an arm is plain to see
        assert result.p_value <= ALPHA


def test_bad_parameters_say_what_to_give() -> None:
    with pytest.raises(MalformedInput, match="alpha must be in"):
        msprt([True, False], [1.0, 0.0], binary=True, alpha=1.5)
    with pytest.raises(MalformedInput, match="mde"):
        sample_size(0.1, 0.0, binary=True)
    with pytest.raises(MalformedInput, match="standard deviation"):
        sample_size(10.0, 0.1, binary=False)


# ---- the reader ---------------------------------------------------------------------------------------

START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_plain_endpoint_arms_are_versions_and_unlabelled_rows_await(tmp_path: Path) -> None:
    folder = tmp_path / "_predictions"
    rids = serve(folder, "shop", "m", [1, 2, 1, 2, 1, 2], START.timestamp())
    label(folder, "shop", [(rids[0], 0, True), (rids[1], 0, 1), (rids[2], 0, "false"), (rids[3], 0, 0),
                           (rids[4], 0, "maybe")])  # fmt: skip
    units = outcomes(folder, "shop", START - timedelta(hours=1), metric="ctr")
    by = units.groupby("version")
    assert by["outcome"].sum().to_dict() == {1: 1.0, 2: 1.0}
    report = analyse(units, "shop", control=1)
    one, two = report.arm(1), report.arm(2)
    assert one is not None and two is not None
    assert (one.n, one.unusable, two.n, two.awaiting) == (2, 1, 2, 1)  # "maybe" is not a click
    assert report.decision == "need more data" and "starts at 100" in report.reason
    zero = outcomes(folder, "shop", START - timedelta(hours=1), missing="no_click", wait=timedelta(hours=1),
                    now=START + timedelta(hours=2))  # fmt: skip
    assert (
        int(zero["outcome"].notna().sum()) == 5
        and zero.loc[zero["request_id"] == rids[5], "outcome"].item() == 0
    )
    with pytest.raises(MalformedInput, match="'ctr'"):
        outcomes(folder, "shop", START, metric="revenue")


def test_a_stage_arm_is_judged_on_the_clicks_of_its_pipeline_request(tmp_path: Path) -> None:
    folder = tmp_path / "_predictions"
    versions = [1, 2, 2, 1]
    rids = serve(folder, "recs", "pipeline", [0] * 4, START.timestamp(), rows=2)  # two users per request
    serve(folder, "retrieve", "towers", versions, START.timestamp(), rids=rids, suffix="/retrieve")
    label(
        folder, "recs", [(rids[0], 0, 1), (rids[0], 1, 0), (rids[1], 0, 1), (rids[1], 1, 1), (rids[2], 1, 0)]
    )
    units = outcomes(folder, "retrieve", START - timedelta(hours=1))
    assert len(units) == 8 and set(units["request_id"]) == set(rids)  # one unit per pipeline row
    report = analyse(units, "retrieve")
    one, two = report.arm(1), report.arm(2)
    assert one is not None and two is not None
    assert (one.n, one.mean, one.awaiting) == (2, 0.5, 2)  # rids[0] labelled, rids[3] awaiting
    assert (two.n, two.mean, two.awaiting) == (3, 2 / 3, 1)

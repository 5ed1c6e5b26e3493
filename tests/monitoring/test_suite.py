"""The drift suite: default methods by kind and size, decisions, and windows that cannot be decided."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.errors import MalformedInput
from mloop.metrics.profile import build_profile
from mloop.monitoring.suite import PREDICTION, compare, default_method

COUNTRIES = ["fr", "de", "es", "it", "nl"]
WEIGHTS = [0.4, 0.25, 0.15, 0.12, 0.08]


def frame(n: int, seed: int, shift: float = 0.0, countries: list[float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.lognormal(3.0 + shift, 0.8, n),
        "age": rng.normal(40 + 10 * shift, 10, n),
        "country": rng.choice(COUNTRIES, n, p=countries or WEIGHTS),
    })  # fmt: skip


@pytest.fixture(scope="module")
def profile() -> dict:
    reference = frame(50_000, seed=1)
    score = 1 / (1 + np.exp(-(reference.age - 40) / 10))
    return build_profile(reference, prediction=score.to_numpy())


def test_a_million_unshifted_rows_are_not_flagged(profile: dict) -> None:
    current = frame(1_000_000, seed=2)
    report = compare(profile, current)
    assert {c.method for c in report.columns} == {"psi", "jensen_shannon"}
    assert report.drifted == [] and report.undecided == []


def test_a_trivial_shift_in_a_million_rows_is_no_alarm_but_a_real_one_is(profile: dict) -> None:
    trivial = compare(profile, frame(1_000_000, seed=3, shift=0.01))
    assert trivial.drifted == []
    real = compare(profile, frame(200_000, seed=4, shift=0.5, countries=[0.1, 0.1, 0.1, 0.1, 0.6]))
    assert {c.column for c in real.drifted} == {"amount", "age", "country"}
    assert real.column("age").statistic > 0.2


def test_small_windows_are_tested_and_a_shift_is_flagged(profile: dict) -> None:
    calm = compare(profile, frame(500, seed=5))
    assert {c.method for c in calm.columns} == {"ks", "chi2"}
    assert calm.drifted == []
    shifted = compare(profile, frame(500, seed=6, shift=0.5))
    assert {c.column for c in shifted.drifted} >= {"amount", "age"}
    assert shifted.column("age").p_value < 1e-6


def test_the_prediction_is_compared_too(profile: dict) -> None:
    current = frame(20_000, seed=7, shift=0.5)
    score = 1 / (1 + np.exp(-(current.age - 40) / 10))
    report = compare(profile, current, prediction=score)
    assert report.column(PREDICTION).drifted is True


def test_a_window_without_values_is_undecided_never_calm(profile: dict) -> None:
    current = frame(100, seed=8)
    current["age"] = np.nan
    report = compare(profile, current)
    age = report.column("age")
    assert age.drifted is None and age.rows == 0 and "no value" in age.note


def test_a_column_the_profile_lacks_is_reported_with_the_fix(profile: dict) -> None:
    current = frame(100, seed=9).assign(device="ios")
    device = compare(profile, current).column("device")
    assert device.drifted is None and "not in the reference profile" in device.note
    with pytest.raises(MalformedInput, match="no column 'channel'"):
        compare(profile, current, columns=["channel"])


def test_methods_and_thresholds_can_be_chosen(profile: dict) -> None:
    current = frame(5_000, seed=10, shift=0.05)
    report = compare(profile, current, methods={"age": "wasserstein", "country": "hellinger"},
                     thresholds={"wasserstein": 0.01})  # fmt: skip
    assert report.column("age").method == "wasserstein" and report.column("age").threshold == 0.01
    assert report.column("age").drifted is True  # a 0.05 sd shift over a 0.01 threshold
    assert report.column("country").method == "hellinger"
    with pytest.raises(MalformedInput, match="Unknown drift method 'kl'"):
        compare(profile, current, methods={"age": "kl"})
    with pytest.raises(MalformedInput, match="compares numbers"):
        compare(profile, current, methods={"country": "ks"})


def test_default_methods_follow_the_table() -> None:
    assert [default_method("numeric", 1_000), default_method("numeric", 1_001)] == ["ks", "psi"]
    assert [default_method("categorical", 10), default_method("categorical", 10**6)] == [
        "chi2",
        "jensen_shannon",
    ]


@pytest.mark.slow
def test_bonferroni_divides_the_tests_threshold_by_the_columns_tested(profile: dict) -> None:
    alarms = {"none": 0, "bonferroni": 0}
    for seed in range(150):  # unshifted windows of 300 rows: every alarm is a false one
        window = frame(300, seed=100 + seed)
        score = 1 / (1 + np.exp(-(window.age - 40) / 10))
        for correction in alarms:
            report = compare(profile, window, prediction=score.to_numpy(), correction=correction)  # type: ignore[arg-type]
            alarms[correction] += bool(report.drifted)
            if correction == "bonferroni":
                tested = [c for c in report.columns if c.p_value is not None]
                assert len(tested) == 4 and {c.threshold for c in tested} == {0.05 / 4}
                assert all(c.drifted == (c.p_value < 0.05 / 4) for c in tested)
    assert alarms["bonferroni"] <= 0.08 * 150 < alarms["none"]
    with pytest.raises(MalformedInput, match="Unknown correction 'holm'"):
        compare(profile, frame(10, seed=1), correction="holm")  # type: ignore[arg-type]


def test_effect_sizes_are_not_corrected(profile: dict) -> None:
    window = frame(200_000, seed=4, shift=0.5)
    plain, corrected = compare(profile, window), compare(profile, window, correction="bonferroni")
    assert plain.columns == corrected.columns

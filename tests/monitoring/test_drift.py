"""Drift statistics equal scipy's (to 1e-9) or a hand-computed case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mloop.monitoring import drift


def shares(k: int) -> st.SearchStrategy[list[float]]:
    return st.lists(st.floats(0, 1000), min_size=k, max_size=k).filter(lambda v: sum(v) > 0)


def test_psi_by_hand_and_with_an_empty_bin() -> None:
    assert drift.psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert math.isfinite(drift.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))  # an empty reference bin
    assert drift.psi([0.2, 0.8], [0.2, 0.8]) == 0


def test_psi_is_vectorised_over_columns() -> None:
    e = np.array([[0.5, 0.5], [0.1, 0.9]])
    a = np.array([[0.4, 0.6], [0.1, 0.9]])
    np.testing.assert_allclose(drift.psi(e, a), [drift.psi(e[0], a[0]), 0.0])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda k: st.tuples(shares(k), shares(k))))
def test_jensen_shannon_equals_scipy(pair: tuple[list[float], list[float]]) -> None:
    p, q = pair
    assert drift.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda k: st.tuples(shares(k), shares(k))))
def test_hellinger_equals_its_definition(pair: tuple[list[float], list[float]]) -> None:
    p, q = (np.asarray(v) / sum(v) for v in pair)
    expected = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)
    assert drift.hellinger(pair[0], pair[1]) == pytest.approx(expected, abs=1e-9)
    assert 0 <= drift.hellinger(pair[0], pair[1]) <= 1


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 12).flatmap(
    lambda k: st.tuples(shares(k), st.lists(st.integers(0, 10_000), min_size=k, max_size=k))))  # fmt: skip
def test_chi_square_equals_scipy(case: tuple[list[float], list[int]]) -> None:
    expected, counts = case
    if sum(counts) == 0:
        assert math.isnan(drift.chi_square(expected, counts)[0])
        return
    e = np.maximum(np.asarray(expected) / sum(expected), drift.EPS)
    e = e / e.sum()
    want = stats.chisquare(counts, e * sum(counts))
    got = drift.chi_square(expected, counts)
    assert got[0] == pytest.approx(want.statistic, rel=1e-9, abs=1e-9)
    assert got[1] == pytest.approx(want.pvalue, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 2_000), st.booleans(),
       st.floats(-1, 1), st.floats(0.5, 2))  # fmt: skip
def test_ks_equals_scipy_small_samples(
    seed: int, m: int, n: int, ties: bool, shift: float, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=m), rng.normal(shift, scale, size=n)
    if ties:
        ref, cur = ref.round(1), cur.round(1)
    want = stats.ks_2samp(ref, cur)
    got = drift.ks(ref, cur)
    assert got == pytest.approx((want.statistic, want.pvalue), abs=1e-9)


@pytest.mark.parametrize(("ties", "shift"), [(False, 0.0), (False, 0.05), (True, 0.0), (True, 0.3)])
def test_ks_equals_scipy_on_a_large_current_window_without_sorting_it(ties: bool, shift: float) -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=5_000), rng.normal(shift, 1.0, size=200_000)
    if ties:
        ref, cur = ref.round(2), cur.round(2)
    want = stats.ks_2samp(ref, cur)
    got = drift.ks(ref, cur)
    assert got[0] == pytest.approx(want.statistic, abs=1e-9)
    assert got[1] == pytest.approx(want.pvalue, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 3_000))
def test_wasserstein_equals_scipy(seed: int, m: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=m), rng.normal(0.3, 1.5, size=n)
    assert drift.wasserstein(ref, cur) == pytest.approx(stats.wasserstein_distance(ref, cur), abs=1e-9)
    spread = np.std(ref)
    if spread > 0:
        assert drift.normed_wasserstein(ref, cur) == pytest.approx(drift.wasserstein(ref, cur) / spread)


def test_non_finite_values_are_left_out_and_empty_windows_are_nan() -> None:
    ref = np.array([1.0, 2.0, 3.0, np.nan])
    assert drift.ks(ref, [1.0, np.inf, 2.0]) == pytest.approx(stats.ks_2samp([1, 2, 3], [1, 2]))
    assert all(math.isnan(v) for v in drift.ks(ref, [np.nan]))
    assert math.isnan(drift.wasserstein(ref, []))


def test_shapes_that_do_not_match_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="bin them alike"):
        drift.psi([0.5, 0.5], [0.3, 0.3, 0.4])
    with pytest.raises(ValueError, match="not negative"):
        drift.psi([0.5, 0.5], [-1.0, 2.0])

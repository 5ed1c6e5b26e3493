"""Embedding drift: caught on shifted windows, quiet on random splits of one sample, equal to an
independent computation (scikit-learn's AUC, an MMD by hand, scipy's Wasserstein per component)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from mloop.metrics import embedding_drift as ed
from mloop.metrics.embedding_drift import (
    EmbeddingDrift,
    as_matrix,
    component_share,
    domain_classifier,
    embedding_drift,
    mmd,
)

FAST = {"domain_classifier": {}, "mmd": {"permutations": 100}, "component_share": {}}


def split(data: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(data))
    half = len(data) // 2
    return data[order[:half]], data[order[half:]]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().images.astype(np.float32)  # (1797, 8, 8), values 0..16


def test_doctests() -> None:
    assert doctest.testmod(ed).failed == 0


@pytest.mark.parametrize("method", list(ed.METHODS))
@pytest.mark.parametrize("shift", ["mean", "noise", "rotated_subset"])
def test_a_shifted_window_is_caught(method: str, shift: str, digits: np.ndarray) -> None:
    reference, current = split(digits, seed=1)
    rng = np.random.default_rng(2)
    if shift == "mean":
        current = current + 2.0  # an eighth of the pixel range, on every pixel
    elif shift == "noise":
        current = current + rng.normal(0, 4.0, size=current.shape).astype(np.float32)
    else:  # half of the images turned by 90 degrees: the mix of the rest is unchanged
        turned = rng.random(len(current)) < 0.5
        current = current.copy()
        current[turned] = np.rot90(current[turned], axes=(1, 2))
    result = embedding_drift(reference, current, method, **FAST[method])
    assert result.drifted, result


def test_a_random_split_is_quiet_for_the_classifier_and_the_share() -> None:
    """A statistical test alarms on some random splits by design; over 40 fixed seeds each method may
    alarm on at most 2 (5%): a rate, not a promise about one seed (AUC > 0.55 on 500 rows a side is a
    3-sigma event under no drift)."""
    alarms = {"domain_classifier": 0, "component_share": 0}
    for seed in range(40):
        data = np.random.default_rng(seed).normal(size=(1000, 16))
        reference, current = split(data, seed)
        alarms["domain_classifier"] += domain_classifier(reference, current, seed=seed).drifted
        alarms["component_share"] += component_share(reference, current, seed=seed).drifted
    assert all(count <= 2 for count in alarms.values()), alarms


def test_the_wasserstein_share_is_quiet_from_a_thousand_rows_a_side() -> None:
    for seed in range(5):
        reference, current = split(np.random.default_rng(seed).normal(size=(2000, 16)), seed)
        assert not component_share(reference, current, test="wasserstein", seed=seed).drifted


def test_mmd_false_alarms_stay_near_its_alpha() -> None:
    # p < 0.01 by construction on about 1 split in 100: over 20 fixed seeds, at most 1 (P(>= 2) ~ 1.7%,
    # and the seeds are fixed, so the test is deterministic)
    alarms = 0
    for seed in range(20):
        data = np.random.default_rng(seed).normal(size=(400, 16))
        reference, current = split(data, seed)
        alarms += mmd(reference, current, permutations=100, seed=seed).drifted
    assert alarms <= 1


def test_digits_split_at_random_is_quiet(digits: np.ndarray) -> None:
    reference, current = split(digits, seed=3)
    for method, options in FAST.items():
        assert not embedding_drift(reference, current, method, **options).drifted, method


def test_the_auc_is_scikit_learns_on_the_out_of_fold_scores() -> None:
    rng = np.random.default_rng(4)
    reference, current = rng.normal(size=(300, 5)), rng.normal(0.3, size=(250, 5))
    result = domain_classifier(reference, current, seed=7)
    z = (np.vstack([reference, current]) - reference.mean(axis=0)) / reference.std(axis=0)
    x = np.hstack([z, z * z - 1])
    y = np.r_[np.zeros(300), np.ones(250)]
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=7)
    scores = cross_val_predict(LogisticRegression(max_iter=200), x, y, cv=folds, method="decision_function")
    assert result.statistic == pytest.approx(roc_auc_score(y, scores))
    assert (result.reference_rows, result.current_rows, result.method) == (300, 250, "domain_classifier")
    assert result.threshold == 0.55 and result.drifted == (result.statistic > 0.55)


def test_separable_rows_give_an_auc_of_one() -> None:
    rng = np.random.default_rng(5)
    result = domain_classifier(rng.normal(size=(200, 3)), rng.normal(10, size=(200, 3)))
    assert result.statistic == pytest.approx(1.0) and result.drifted


def hand_mmd(x: list[float], y: list[float]) -> float:
    pooled = x + y
    distances = [abs(a - b) for i, a in enumerate(pooled) for b in pooled[i + 1 :]]
    width = float(np.median(distances))

    def k(a: float, b: float) -> float:
        return math.exp(-((a - b) ** 2) / (2 * width**2))

    n, m = len(x), len(y)
    xx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / (n * (n - 1))
    yy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2 * xy


def test_mmd_on_a_tiny_case_equals_the_formula_by_hand() -> None:
    x, y = [0.0, 1.0, 2.0], [0.5, 3.0, 4.0, 6.0]
    result = mmd(np.array(x)[:, None], np.array(y)[:, None], permutations=50, seed=3)
    assert result.statistic == pytest.approx(hand_mmd(x, y))
    # the p-value: the share of relabellings (the same seeded draws) at least as extreme, plus one
    rng = np.random.default_rng(3)
    pooled = np.array(x + y)
    permuted = []
    for _ in range(50):
        chosen = np.zeros(len(pooled), dtype=bool)
        chosen[rng.permutation(len(pooled))[: len(x)]] = True
        permuted.append(hand_mmd(list(pooled[chosen]), list(pooled[~chosen])))
    expected = (1 + sum(v >= hand_mmd(x, y) - 1e-12 for v in permuted)) / 51
    assert result.p_value == pytest.approx(expected)
    assert result.detail["bandwidth"] == pytest.approx(np.median([abs(a - b) for i, a in enumerate(x + y)
                                                                  for b in (x + y)[i + 1 :]]))  # fmt: skip


def test_component_share_counts_scipys_wasserstein_per_component() -> None:
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(2000, 10))
    current = rng.normal(size=(3000, 10))
    current[:, :3] += 0.5  # three components moved by half a standard deviation
    result = component_share(reference, current, test="wasserstein")
    distances = [stats.wasserstein_distance(reference[:, j], current[:, j]) / reference[:, j].std()
                 for j in range(10)]  # fmt: skip
    assert result.detail["drifted_components"] == sum(d >= 0.1 for d in distances) == 3
    assert result.statistic == pytest.approx(0.3) and result.drifted
    ks = component_share(reference, current)
    assert ks.detail["drifted_components"] == sum(
        stats.ks_2samp(reference[:, j], current[:, j], method="asymp").pvalue < 0.05 for j in range(10)
    )


def test_large_windows_are_subsampled_to_the_bounded_size() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(3000, 4)).astype(np.float32)
    current = rng.normal(size=(20_000, 4)).astype(np.float32)
    assert mmd(reference, current, permutations=20).current_rows == ed.MMD_ROWS
    found = domain_classifier(reference, current, max_rows=500)
    assert (found.reference_rows, found.current_rows) == (500, 500)


def test_results_are_reproducible_for_a_seed() -> None:
    rng = np.random.default_rng(8)
    reference, current = rng.normal(size=(3000, 6)), rng.normal(0.05, size=(3000, 6))
    for method in ed.METHODS:
        assert embedding_drift(reference, current, method, seed=1) == embedding_drift(
            reference, current, method, seed=1
        )


def test_rows_may_be_a_list_of_per_row_arrays_of_any_shape() -> None:
    images = [np.full((1, 2, 2), i, dtype=np.float32) for i in range(3)]
    assert as_matrix(images).shape == (3, 4)
    assert as_matrix(np.zeros((5, 3, 2))).shape == (5, 6)
    assert as_matrix(np.arange(4.0)).shape == (4, 1)


def test_bad_input_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mmd(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        domain_classifier(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 current rows"):
        component_share(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="methods: domain_classifier, mmd, component_share"):
        embedding_drift(np.zeros((5, 3)), np.zeros((5, 3)), "energy")


def test_results_are_plain_data() -> None:
    result = EmbeddingDrift("mmd", 0.1, 0.01, True, 10, 10, 0.005, {"bandwidth": 1.0})
    assert result.to_dict()["p_value"] == 0.005

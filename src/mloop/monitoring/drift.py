"""Drift statistics: how far the current data of a column is from its reference.

Frequency-based statistics take the reference as a vector of shares (a profile's bin ``frequencies`` or
category ``shares``, see :mod:`mloop.metrics.profile`) and the current data as counts or shares in the
same bins, and work on many columns at once: pass ``(columns, bins)`` arrays. Sample-based statistics
(Kolmogorov-Smirnov, Wasserstein) take the profile's bounded reference ``sample`` and the current values,
and memory does not grow with the reference. Kolmogorov-Smirnov never sorts the current values: they are
counted against the sorted sample, O(n log m) for n current rows and a sample of m.

- :func:`psi`: population stability index, ``sum((a - e) * ln(a / e))``; empty bins are given a share of
  ``eps`` (and the vector renormalised) so one empty bin does not make it infinite.
- :func:`jensen_shannon`: the Jensen-Shannon *distance* in base 2 (0 to 1), as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
- :func:`hellinger`: the Hellinger distance (0 to 1), ``sqrt(sum((sqrt(p) - sqrt(q)) ** 2) / 2)``.
- :func:`chi_square`: Pearson's statistic and p-value of the current counts against the reference shares,
  as ``scipy.stats.chisquare(counts, shares * counts.sum())`` (empty reference bins get ``eps``).
- :func:`ks`: the two-sample Kolmogorov-Smirnov statistic and p-value, as ``scipy.stats.ks_2samp`` (its
  ``auto`` method: exact up to 10,000 values on either side, Smirnov's asymptotic distribution beyond).
- :func:`wasserstein`: the first Wasserstein distance between the sample and the current values, as
  ``scipy.stats.wasserstein_distance``, and :func:`normed_wasserstein` divided by the reference's standard
  deviation (a unit-free effect size).

>>> psi([0.5, 0.5], [0.4, 0.6]).round(4)
np.float64(0.0203)
>>> jensen_shannon([[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [0.0, 1.0]])
array([0., 1.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-4  # the share an empty bin is given by PSI and chi-square
MAX_EXACT = 10_000  # scipy's ks_2samp: exact p-values up to this many values on either side


def _stats() -> Any:
    """``scipy.stats``, imported on first use: it costs a CLI command half a second to import."""
    from scipy import stats

    return stats


def _shares(values: Any, eps: float | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] < 1:
        raise ValueError(f"Expected shares as a (bins,) or (columns, bins) array, got shape {array.shape}.")
    if (array < 0).any() or not np.isfinite(array).all():
        raise ValueError("Shares and counts must be finite and not negative.")
    total = array.sum(axis=-1, keepdims=True)
    out = np.divide(array, total, out=np.zeros_like(array), where=total > 0)
    if eps is not None:
        out = np.maximum(out, eps)
        out = out / out.sum(axis=-1, keepdims=True)
    return out


def _pair(expected: Any, actual: Any, eps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    e, a = _shares(expected, eps), _shares(actual, eps)
    if e.shape != a.shape:
        raise ValueError(f"The reference has shape {e.shape} and the current data {a.shape}: bin them alike.")
    return e, a


def psi(expected: Any, actual: Any, eps: float = EPS) -> Any:
    """Population stability index of ``actual`` against ``expected`` (shares or counts), per row."""
    e, a = _pair(expected, actual, eps)
    return np.sum((a - e) * np.log(a / e), axis=-1)


def jensen_shannon(p: Any, q: Any) -> Any:
    """Jensen-Shannon distance in base 2, per row; 0 for identical shares, 1 for disjoint ones."""
    p, q = _pair(p, q)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0)
        right = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = np.maximum((left.sum(axis=-1) + right.sum(axis=-1)) / 2, 0.0)
    return np.sqrt(divergence)


def hellinger(p: Any, q: Any) -> Any:
    """Hellinger distance per row, in [0, 1]."""
    p, q = _pair(p, q)
    return np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1) / 2)  # no cancellation near 0


def chi_square(expected: Any, counts: Any, eps: float = EPS) -> tuple[float, float]:
    """Pearson's chi-square statistic and p-value of ``counts`` (current, per category) against the
    reference ``expected`` shares: ``scipy.stats.chisquare`` with expected frequencies scaled to the
    current total. NaN for a current window with no value."""
    observed = np.asarray(counts, dtype=np.float64)
    shares = _shares(expected, eps)
    if shares.shape != observed.shape or observed.ndim != 1:
        raise ValueError("chi_square compares one column: expected and counts of the same length.")
    total = observed.sum()
    if total <= 0:
        return float("nan"), float("nan")
    frequencies = shares * total
    statistic = float(np.sum((observed - frequencies) ** 2 / frequencies))
    return statistic, float(_stats().chi2.sf(statistic, len(observed) - 1))


def _finite(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _cdf_differences(sample: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over the distinct sample values u: F_ref - F_cur at each u and just before it (where current
    values between two sample values reach), computed by counting the current values against u."""
    ordered = np.sort(sample)
    distinct = np.unique(ordered)
    n1, n2 = len(ordered), len(current)
    f_ref = np.searchsorted(ordered, distinct, side="right") / n1
    below = np.zeros(len(distinct) + 1, dtype=np.int64)  # below[j]: current values < distinct[j]
    at_most = np.zeros(len(distinct) + 1, dtype=np.int64)  # at_most[j]: current values <= distinct[j]
    np.cumsum(np.bincount(np.searchsorted(distinct, current, side="right"), minlength=len(distinct) + 1),
              out=below)  # fmt: skip
    np.cumsum(np.bincount(np.searchsorted(distinct, current, side="left"), minlength=len(distinct) + 1),
              out=at_most)  # fmt: skip
    at = f_ref - at_most[: len(distinct)] / n2
    before = np.concatenate([[0.0], f_ref[:-1]]) - below[: len(distinct)] / n2
    return at, before


def ks(sample: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value of ``current`` against the reference
    ``sample`` (non-finite values are left out), equal to ``scipy.stats.ks_2samp``."""
    reference, values = _finite(sample), _finite(current)
    if not len(reference) or not len(values):
        return float("nan"), float("nan")
    n1, n2 = len(reference), len(values)
    if max(n1, n2) <= MAX_EXACT:  # small: scipy's exact p-value, on data that is cheap to sort
        result = _stats().ks_2samp(reference, values)
        return float(result.statistic), float(result.pvalue)
    at, before = _cdf_differences(reference, values)
    high = float(at.max())
    low = float(np.clip(-min(at.min(), before.min()), 0, 1))
    d = low if low > high else high
    m, n = sorted([float(n1), float(n2)], reverse=True)
    p = float(np.clip(_stats().kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, p


def wasserstein(sample: Any, current: Any) -> float:
    """First Wasserstein distance between the reference ``sample`` and ``current``, equal to
    ``scipy.stats.wasserstein_distance`` (the area between the two CDFs)."""
    reference, values = _finite(sample), _finite(current)
    if not len(reference) or not len(values):
        return float("nan")
    return float(_stats().wasserstein_distance(reference, values))


def normed_wasserstein(sample: Any, current: Any) -> float:
    """:func:`wasserstein` divided by the reference sample's standard deviation (0 when it is constant
    and the current data equals it, infinite when it is constant and the current data is not)."""
    reference = _finite(sample)
    distance = wasserstein(reference, current)
    spread = float(np.std(reference)) if len(reference) else float("nan")
    if spread == 0:
        return 0.0 if distance == 0 else float("inf")
    return distance / spread


__all__ = ["chi_square", "hellinger", "jensen_shannon", "ks", "normed_wasserstein", "psi", "wasserstein"]

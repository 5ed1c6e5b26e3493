"""Drift of embeddings and images: a reference array ``(n, d)`` against a current one ``(m, d)``.

An image or any tensor is flattened to ``d = prod(shape)`` components first (:func:`as_matrix`). Three
methods, as Evidently offers them for embeddings, each on bounded random subsamples (a seeded
``numpy.random.default_rng``) so that the cost does not grow with the window:

- :func:`domain_classifier`: can a classifier tell the reference rows from the current ones? A logistic
  regression on the standardised components and their squares (the squares let a linear model see a
  change of spread, e.g. added noise, not only of location), scored by the ROC AUC of its out-of-fold
  predictions (stratified 2-fold: every row is scored by a model that did not see it). Drift when the AUC
  exceeds ``0.55`` (Evidently's default). With 2,000 rows a side the AUC of two samples of one
  distribution has a standard deviation of about 0.009, so 0.55 is more than 5 of them: a false alarm is
  rare, while a shift a classifier can exploit at all moves it well past.
- :func:`mmd`: the unbiased squared maximum mean discrepancy with a Gaussian (RBF) kernel whose width is
  the median distance between the pooled rows (the median heuristic), and its permutation-test p-value
  (``permutations`` relabellings of the pooled rows, one matrix product for all of them). Drift when
  ``p < 0.01``: a window is tested every hour, and 0.05 would be a false alarm a day per column.
- :func:`component_share`: each component compared alone, drift when the share of drifted components
  exceeds 0.2, as Evidently's ``ratio`` method. A component drifts when its two-sample Kolmogorov-Smirnov
  p-value is below 0.05 (by default), or with ``test="wasserstein"`` when its normed Wasserstein
  distance reaches 0.1 (Evidently's default). Not Evidently's default here: a fixed distance is noisy on
  small windows (two samples of 600 rows of one 16-dimensional Gaussian: a share above 0.2 in 23% of
  splits; 0% at 1,000 rows), while a test's false positives stay at 5% of the components at any size.

Each returns an :class:`EmbeddingDrift`.

>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=(500, 8))
>>> domain_classifier(reference, rng.normal(size=(500, 8))).drifted
False
>>> mmd(reference, rng.normal(1.0, size=(500, 8))).drifted
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

AUC_THRESHOLD = 0.55
MMD_ALPHA = 0.01
COMPONENT_THRESHOLDS = {"ks": 0.05, "wasserstein": 0.1}
SHARE_THRESHOLD = 0.2
CLASSIFIER_ROWS = 2_000  # rows a side the domain classifier fits and scores
MMD_ROWS = 1_000  # rows a side of the kernel matrix: (2 * MMD_ROWS)^2 entries
SHARE_ROWS = 5_000  # current rows the per-component tests use
PERMUTATIONS = 200
EXACT_KS_ROWS = 500


@dataclass(frozen=True)
class EmbeddingDrift:
    """One method's verdict. ``statistic`` is the ROC AUC, the MMD² or the share of drifted components;
    ``threshold`` what it is compared with (for MMD, the p-value's)."""

    method: str  # domain_classifier | mmd | component_share
    statistic: float
    threshold: float
    drifted: bool
    reference_rows: int  # rows used, after subsampling
    current_rows: int
    p_value: float | None = None  # mmd only
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stats() -> Any:
    """``scipy.stats``, imported on first use: it costs a CLI command half a second to import."""
    from scipy import stats

    return stats


def as_matrix(values: Any) -> np.ndarray:
    """``(rows, d)`` float64 from an array of any rank (rows first) or a sequence of per-row arrays."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        array = values
    else:
        rows = list(values)
        array = np.stack([np.asarray(v) for v in rows]) if rows else np.empty((0, 0))
    if array.ndim == 1:
        array = array[:, None]
    return np.ascontiguousarray(array.reshape(len(array), -1), dtype=np.float64)


def domain_classifier(
    reference: Any, current: Any, *, threshold: float = AUC_THRESHOLD, max_rows: int = CLASSIFIER_ROWS,
    seed: int = 0,
) -> EmbeddingDrift:  # fmt: skip
    """ROC AUC of a classifier telling ``current`` rows from ``reference`` rows (see the module)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    ref, cur = _pair(reference, current, max_rows, max_rows, rng)
    x = _quadratic_features(ref, np.vstack([ref, cur]))
    y = np.concatenate([np.zeros(len(ref)), np.ones(len(cur))])
    scores = np.empty(len(y))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    # One BLAS thread: the matrices are small, and threads spinning for work cost 30x the fit on a busy
    # 2-core machine (1 s instead of 30 ms for 2,000 rows a side of 128 components).
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        # An unconverged fit still scores rows it never saw: its AUC is as valid a test, only weaker.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in folds.split(x, y):
            model = LogisticRegression(C=1.0, max_iter=200)
            model.fit(x[train], y[train])
            scores[test] = model.decision_function(x[test])
    auc = float(roc_auc_score(y, scores))
    return EmbeddingDrift("domain_classifier", auc, threshold, auc > threshold, len(ref), len(cur))


def mmd(
    reference: Any, current: Any, *, alpha: float = MMD_ALPHA, permutations: int = PERMUTATIONS,
    max_rows: int = MMD_ROWS, seed: int = 0,
) -> EmbeddingDrift:  # fmt: skip
    """Unbiased MMD² (RBF kernel, median-heuristic width) and its permutation p-value (see the module)."""
    if permutations < 1:
        raise ValueError(f"mmd's permutations must be at least 1; got {permutations}.")
    rng = np.random.default_rng(seed)
    ref, cur = _pair(reference, current, max_rows, max_rows, rng)
    with threadpool_limits(1, user_api="blas"):  # as the domain classifier: faster on a busy machine
        return _mmd(ref, cur, alpha, permutations, rng)


def _mmd(ref: np.ndarray, cur: np.ndarray, alpha: float, permutations: int, rng: np.random.Generator
         ) -> EmbeddingDrift:  # fmt: skip
    pooled = np.vstack([ref, cur])
    squared = _squared_distances(pooled)
    width = _median_width(squared)
    kernel = np.exp(-squared / (2 * width * width))
    n, m = len(ref), len(cur)
    membership = np.zeros((len(pooled), permutations + 1))
    membership[:n, 0] = 1.0  # column 0: the observed split; the others: random relabellings
    for b in range(1, permutations + 1):
        membership[rng.permutation(len(pooled))[:n], b] = 1.0
    values = _unbiased_mmd2(kernel, membership, n, m)
    observed = float(values[0])
    p_value = float((1 + np.count_nonzero(values[1:] >= observed)) / (1 + permutations))
    return EmbeddingDrift("mmd", observed, alpha, p_value < alpha, n, m, p_value,
                          {"bandwidth": width, "permutations": permutations})  # fmt: skip


def component_share(
    reference: Any, current: Any, *, test: Literal["ks", "wasserstein"] = "ks",
    component_threshold: float | None = None, threshold: float = SHARE_THRESHOLD,
    max_rows: int = SHARE_ROWS, seed: int = 0,
) -> EmbeddingDrift:  # fmt: skip
    """Share of the components that drifted alone (see the module); drift when it exceeds ``threshold``."""
    if test not in COMPONENT_THRESHOLDS:
        raise ValueError(
            f"component_share's test must be one of {', '.join(COMPONENT_THRESHOLDS)}; got {test!r}."
        )
    cut = COMPONENT_THRESHOLDS[test] if component_threshold is None else component_threshold
    rng = np.random.default_rng(seed)
    ref, cur = _pair(reference, current, max_rows, max_rows, rng)
    drifted = np.zeros(ref.shape[1], dtype=bool)
    # scipy's exact p-value costs ~10 ms a component at 2,000 x 5,000 rows; Smirnov's asymptotic
    # distribution is within 1e-3 of it from a few hundred rows a side
    mode = "exact" if max(len(ref), len(cur)) <= EXACT_KS_ROWS else "asymp"
    for j in range(ref.shape[1]):
        if test == "ks":
            drifted[j] = _stats().ks_2samp(ref[:, j], cur[:, j], method=mode).pvalue < cut
        else:
            drifted[j] = _normed_wasserstein(ref[:, j], cur[:, j]) >= cut
    share = float(drifted.mean()) if len(drifted) else 0.0
    detail = {"test": test, "component_threshold": cut, "components": len(drifted),
              "drifted_components": int(drifted.sum())}  # fmt: skip
    return EmbeddingDrift("component_share", share, threshold, share > threshold, len(ref), len(cur),
                          detail=detail)  # fmt: skip


METHODS: dict[str, Callable[..., EmbeddingDrift]] = {
    "domain_classifier": domain_classifier,
    "mmd": mmd,
    "component_share": component_share,
}


def embedding_drift(reference: Any, current: Any, method: str = "domain_classifier", **options: Any
                    ) -> EmbeddingDrift:  # fmt: skip
    """The :data:`METHODS` entry ``method`` with its ``options`` (threshold, max_rows, seed...)."""
    if method not in METHODS:
        raise ValueError(f"Unknown embedding drift method {method!r}; methods: {', '.join(METHODS)}.")
    return METHODS[method](reference, current, **options)


# -- helpers ------------------------------------------------------------------------------------------


def _pair(
    reference: Any, current: Any, ref_rows: int, cur_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    ref = _subsample(reference, ref_rows, rng)
    cur = _subsample(current, cur_rows, rng)
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(
            f"The reference rows have {ref.shape[1]} components and the current ones {cur.shape[1]}: "
            "compare tensors of the same shape (flattened, d = prod(shape))."
        )
    for name, part in (("reference", ref), ("current", cur)):
        if len(part) < 2:
            raise ValueError(f"Embedding drift needs at least 2 {name} rows; got {len(part)}.")
        if not np.isfinite(part).all():
            raise ValueError(f"The {name} rows hold NaN or infinite values; drop or fix those rows first.")
    return ref, cur


def _subsample(values: Any, rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``rows`` rows drawn without replacement, converted after drawing (so a 100k-row float32
    window costs a copy of the drawn rows only)."""
    if rows < 2:
        raise ValueError(f"max_rows must be at least 2; got {rows}.")
    if isinstance(values, np.ndarray) and values.dtype != object:
        n = len(values)
        picked = values if n <= rows else values[np.sort(rng.choice(n, size=rows, replace=False))]
        return as_matrix(picked)
    listed = list(values)
    if len(listed) > rows:
        listed = [listed[i] for i in np.sort(rng.choice(len(listed), size=rows, replace=False))]
    return as_matrix(listed)


def _quadratic_features(reference: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mean = reference.mean(axis=0)
    spread = reference.std(axis=0)
    spread[spread == 0] = 1.0
    z = (rows - mean) / spread
    return np.hstack([z, z * z - 1.0])


def _squared_distances(x: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", x, x)
    squared = norms[:, None] + norms[None, :] - 2.0 * (x @ x.T)
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, 0.0)
    return squared


def _median_width(squared: np.ndarray) -> float:
    """The median distance between distinct pooled rows (1.0 when they all coincide)."""
    upper = squared[np.triu_indices(len(squared), k=1)]
    width = math.sqrt(float(np.median(upper))) if len(upper) else 0.0
    return width if width > 0 else 1.0


def _unbiased_mmd2(kernel: np.ndarray, membership: np.ndarray, n: int, m: int) -> np.ndarray:
    """MMD²_u for each column of ``membership`` (1 = a reference row), all in one matrix product:
    with z the indicator, sum(Kxx) = z'Kz, sum(Kxy) = z'K(1 - z), sum(Kyy) = 1'K1 - 2 sum(Kxy) - sum(Kxx)."""
    product = kernel @ membership
    xx = np.einsum("ij,ij->j", membership, product)
    xy = product.sum(axis=0) - xx
    yy = float(kernel.sum()) - 2 * xy - xx
    diagonal = np.diag(kernel)
    diag_x = diagonal @ membership
    diag_y = float(diagonal.sum()) - diag_x
    return (xx - diag_x) / (n * (n - 1)) + (yy - diag_y) / (m * (m - 1)) - 2 * xy / (n * m)


def _normed_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    distance = float(_stats().wasserstein_distance(reference, current))
    spread = float(np.std(reference))
    if spread == 0:
        return 0.0 if distance == 0 else math.inf
    return distance / spread


__all__ = [
    "AUC_THRESHOLD", "METHODS", "MMD_ALPHA", "SHARE_THRESHOLD", "EmbeddingDrift", "as_matrix",
    "component_share", "domain_classifier", "embedding_drift", "mmd",
]  # fmt: skip

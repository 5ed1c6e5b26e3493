"""The background sample: the rows of training inputs that a linear model's and the fallback's attributions
are measured against (``base_value`` is the model's expected output over them).

A caller may pass one, ``background=train_frame.sample(100)``. Otherwise the registry keeps one with each
version registered from a DataFrame input example (a pipeline gives 200 training rows): not the rows
themselves, which would put training records beyond the reach of erasure, but their **summary**
(:func:`summarize`): k-means clusters of the rows, each standing as its mean (the most common value for a
text column) with a weight, the share of rows in it (shap's own ``shap.kmeans`` advice for KernelSHAP's
background; a linear model's weighted mean is the rows' mean exactly). Each centroid averages at least
:data:`MIN_PER_CLUSTER` rows, so no single record is kept. The fallback evaluates every coalition on every
background row, so it keeps at most :data:`ROWS` of them (drawn with a fixed seed).

>>> background_rows(pd.DataFrame({"a": range(500), "b": 0}), ["a", "b"]).shape
(50, 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.explain.attributions import ExplainError

ROWS = 50
WEIGHT = "__weight__"  # the column of a summary's weights (the share of the rows each centroid stands for)
MIN_PER_CLUSTER = 5


def summarize(frame: pd.DataFrame, *, clusters: int = ROWS, seed: int = 0) -> pd.DataFrame | None:
    """``frame``'s rows summarised as at most ``clusters`` weighted centroids (column :data:`WEIGHT`), each
    of at least :data:`MIN_PER_CLUSTER` rows; None when there are too few rows or a column holds tensors."""
    if len(frame) < MIN_PER_CLUSTER or any(frame[c].map(np.ndim).gt(0).any() for c in frame.columns
                                           if frame[c].dtype == object):  # fmt: skip
        return None
    from sklearn.cluster import KMeans

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool]
    k = max(1, min(clusters, len(frame) // MIN_PER_CLUSTER))
    if numeric and k > 1:
        values = frame[numeric].astype(float)
        scaled = ((values - values.mean()) / values.std(ddof=0).replace(0, 1)).fillna(0.0).to_numpy()
        labels = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=seed).fit_predict(scaled)
        labels = _merge_small(labels, scaled)
    else:
        labels = np.zeros(len(frame), dtype=int)
    groups = pd.Series(labels, index=frame.index)
    out = (
        frame[numeric].astype(float).groupby(groups).mean()
        if numeric
        else pd.DataFrame(index=np.unique(labels))
    )
    for c in frame.columns:
        if c not in numeric:
            out[c] = frame[c].groupby(groups).agg(_mode)
    out = out[list(frame.columns)].reset_index(drop=True)
    out[WEIGHT] = groups.value_counts(sort=False).sort_index().to_numpy() / len(frame)
    return out


def split_weights(background: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A background without its :data:`WEIGHT` column, and the weights (None for plain rows)."""
    if WEIGHT not in background.columns:
        return background, None
    weights = background[WEIGHT].to_numpy(dtype=float)
    return background.drop(columns=[WEIGHT]), weights / weights.sum()


def _merge_small(labels: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """Clusters of fewer than MIN_PER_CLUSTER rows joined to the nearest large one: no centroid is one record."""
    counts = np.bincount(labels)
    large = [c for c in range(len(counts)) if counts[c] >= MIN_PER_CLUSTER]
    if not large:
        return np.zeros_like(labels)
    centres = np.stack([scaled[labels == c].mean(axis=0) for c in large])
    out = labels.copy()
    for i in np.flatnonzero(counts[labels] < MIN_PER_CLUSTER):
        out[i] = large[int(np.argmin(((centres - scaled[i]) ** 2).sum(axis=1)))]
    return out


def _mode(values: pd.Series) -> object:
    found = values.dropna()
    return found.mode().iloc[0] if len(found) else None


def require_background(background: pd.DataFrame | None, method: str) -> pd.DataFrame:
    """``background``, or :class:`ExplainError` saying how to pass one."""
    if background is None:
        raise ExplainError(
            f"{method} measures attributions against a background sample of the training inputs, and none "
            "was given: pass background=train_frame.sample(100, random_state=0) (rows with the model's input "
            "columns)."
        )
    return background


def background_rows(background: pd.DataFrame, features: list[str], *, rows: int = ROWS, seed: int = 0
                    ) -> pd.DataFrame:  # fmt: skip
    """``background``'s columns ``features`` (in that order), at most ``rows`` of them."""
    missing = [f for f in features if f not in background.columns]  # (a summary keeps its WEIGHT column)
    if missing:
        raise ExplainError(
            f"The background lacks the model's input columns {', '.join(missing)}: pass rows of the "
            "training inputs with every column the model takes."
        )
    out = background[features + ([WEIGHT] if WEIGHT in background.columns else [])]
    if len(out) > rows:
        picked = np.sort(np.random.default_rng(seed).choice(len(out), size=rows, replace=False))
        out = out.iloc[picked]
    return out


def background_bytes(example: object, *, clusters: int = ROWS, seed: int = 0) -> bytes | None:
    """The Parquet bytes of :func:`summarize` of a DataFrame ``example`` (None for anything else, or when
    it cannot be summarised): what the registry keeps with a version."""
    if not isinstance(example, pd.DataFrame) or example.empty:
        return None
    summary = summarize(example, clusters=clusters, seed=seed)
    if summary is None:
        return None
    import io

    buffer = io.BytesIO()
    try:
        summary.to_parquet(buffer, index=False)
    except (ValueError, TypeError, ImportError):  # a column Parquet cannot hold: no background
        return None
    return buffer.getvalue()


def read_background(data: bytes) -> pd.DataFrame:
    """What :func:`background_bytes` wrote."""
    import io

    return pd.read_parquet(io.BytesIO(data))
